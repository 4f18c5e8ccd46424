"""The one CSV writer (:func:`autograder.results.write_table`): the grades file ``grade`` writes and
the table ``export`` writes have the same columns and rows; only how points are written differs."""

from __future__ import annotations

import csv
import io

from autograder.export import export
from autograder.grade import write_grades
from autograder.results import COLUMNS, SubmissionResult, result_path, short_points, write_table

RESULTS = [
    SubmissionResult("zoe", "04_self_attention", 7.5, 15.0, "flagged: reads environment variables; touches sys.modules"),
    SubmissionResult("ada", "05_cross_attention", 0.0, 12.0, "error: not a readable notebook"),
    SubmissionResult("ada", "04_self_attention", 15.0, 15.0, "graded"),
]


def _table(points=str):
    buffer = io.StringIO(newline="")
    write_table(buffer, RESULTS, points=points)
    return buffer.getvalue()


def test_rows_are_sorted_by_student_then_assignment_and_statuses_are_quoted_when_needed():
    assert _table() == (
        "student_id,assignment,score,max_score,status\r\n"
        "ada,04_self_attention,15.0,15.0,graded\r\n"
        "ada,05_cross_attention,0.0,12.0,error: not a readable notebook\r\n"
        "zoe,04_self_attention,7.5,15.0,flagged: reads environment variables; touches sys.modules\r\n")
    assert next(csv.reader(io.StringIO(_table(short_points)))) == COLUMNS
    assert _table(short_points).splitlines()[1] == "ada,04_self_attention,15,15,graded"


def test_grade_and_export_write_the_same_table_with_their_own_points(tmp_path):
    for result in RESULTS:
        result.save(result_path(tmp_path, result.assignment, result.student_id))
    grades = write_grades(tmp_path, "04_self_attention", [r for r in RESULTS if r.assignment == "04_self_attention"])
    assert grades.read_text(encoding="utf-8").splitlines() == [
        ",".join(COLUMNS), "ada,04_self_attention,15.0,15.0,graded",
        "zoe,04_self_attention,7.5,15.0,flagged: reads environment variables; touches sys.modules"]
    exported = export(tmp_path, tmp_path / "all.csv").read_bytes().decode("utf-8")
    assert exported == _table(short_points), "export writes every stored result, points as 15 and 7.5"
