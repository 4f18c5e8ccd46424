"""The Canvas round trip: the gradebook exported from Canvas comes back with one assignment's
column filled in, every other cell as it was, and the unmatched students and submissions named."""

from __future__ import annotations

import csv
import io
import shutil

import pytest

from autograder.cli import main as cli
from autograder.export import fill_canvas_gradebook
from autograder.results import SubmissionResult, result_path
from submissions import REPO

GRADEBOOK = REPO / "examples" / "canvas" / "gradebook.csv"
ASSIGNMENT = "04_self_attention"
COLUMN = "Exercise 4: Self-attention (88123)"


def _results(course, scores, assignment=ASSIGNMENT):
    for student, (score, status) in scores.items():
        SubmissionResult(student, assignment, score, 15.0, status).save(result_path(course, assignment, student))


def _table(path):
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


# The sample class's results (examples/submissions), plus one submission whose id is in no row.
SAMPLE = {"ada": (15.0, "graded"), "ben": (4.0, "graded"), "cleo": (15.0, "graded"),
          "dan": (4.0, "flagged: replaces library functions: torch.allclose"), "eve": (0.0, "error: not a readable notebook"),
          "zed": (15.0, "graded")}


def test_gradebook_column_is_filled_and_everything_else_kept(tmp_path):
    course = tmp_path / "course"
    _results(course, SAMPLE)
    out = tmp_path / "import.csv"
    report = fill_canvas_gradebook(course, GRADEBOOK, out)

    before, after = _table(GRADEBOOK), _table(out)
    assert after[0] == before[0], "the header must come back unchanged"
    target = before[0].index(COLUMN)
    assert report.column == COLUMN
    assert len(after) == len(before), "every row (Points Possible, test student, students) must be kept"
    for old, new in zip(before, after):
        assert old[:target] + old[target + 1:] == new[:target] + new[target + 1:], (
            f"only the assignment's column may change; row {old[0]!r} became {new}")
    filled = {row[0]: row[target] for row in after[2:]}
    assert filled == {"Lovelace, Ada": "15", "Bitdiddle, Ben": "4", "Patra, Cleo": "15", "Dan, Dan": "4",
                      "Evans, Eve": "0", "Frank, Fay": "", "Student, Test": ""}, filled
    assert after[1][target] == "15.00", "the Points Possible row is Canvas's, kept as it was"


def test_unmatched_students_and_submissions_are_reported(tmp_path):
    course = tmp_path / "course"
    _results(course, SAMPLE)
    report = fill_canvas_gradebook(course, GRADEBOOK, tmp_path / "import.csv")
    assert report.no_submission == ["Frank, Fay"], "the test student is not a missing submission"
    assert report.no_student == ["zed"]
    assert report.rule["ada"] == "SIS Login ID" and report.rule["eve"] == "SIS Login ID"
    assert set(report.to_review) == {"dan", "eve"}, "flagged and error rows are named for review"
    assert report.notes == []


@pytest.mark.parametrize("student,rule", [("S0002", "SIS User ID"), ("1002", "ID"),
                                          ("bitdiddleben", "Student (Canvas download name)"),
                                          ("BEN@UNI.EXAMPLE", "SIS Login ID")])
def test_every_documented_id_finds_its_row(tmp_path, student, rule):
    course = tmp_path / "course"
    _results(course, {student: (12.5, "graded")})
    report = fill_canvas_gradebook(course, GRADEBOOK, tmp_path / "import.csv")
    assert report.filled == {student: "Bitdiddle, Ben"} and report.rule[student] == rule, (report.filled, report.rule)
    row = next(r for r in _table(tmp_path / "import.csv") if r[0] == "Bitdiddle, Ben")
    assert row[_table(GRADEBOOK)[0].index(COLUMN)] == "12.5"


def test_an_id_that_matches_two_rows_fills_neither(tmp_path):
    gradebook = tmp_path / "gradebook.csv"
    text = GRADEBOOK.read_text(encoding="utf-8").replace("eve,CS", "ada,CS")  # Eve's login is now "ada"
    gradebook.write_text(text, encoding="utf-8")
    course = tmp_path / "course"
    _results(course, {"ada": (15.0, "graded")})
    report = fill_canvas_gradebook(course, gradebook, tmp_path / "import.csv")
    assert report.filled == {} and report.ambiguous == {"ada": ["Lovelace, Ada", "Evans, Eve"]}


def test_byte_order_mark_and_line_endings_survive(tmp_path):
    gradebook = tmp_path / "gradebook.csv"
    gradebook.write_bytes(b"\xef\xbb\xbf" + GRADEBOOK.read_bytes().replace(b"\n", b"\r\n"))
    course = tmp_path / "course"
    _results(course, {"ada": (15.0, "graded")})
    fill_canvas_gradebook(course, gradebook, tmp_path / "import.csv")
    out = (tmp_path / "import.csv").read_bytes()
    assert out.startswith(b"\xef\xbb\xbf") and out.count(b"\r\n") == gradebook.read_bytes().count(b"\r\n")
    assert out.replace(b"Gradebook", b"") != gradebook.read_bytes()  # something was filled in
    assert out.replace(b",15,", b",,") == gradebook.read_bytes(), "only Ada's cell may differ"


def test_points_possible_that_disagree_are_noted(tmp_path):
    course = tmp_path / "course"
    SubmissionResult("ada", ASSIGNMENT, 10.0, 20.0, "graded").save(result_path(course, ASSIGNMENT, "ada"))
    report = fill_canvas_gradebook(course, GRADEBOOK, tmp_path / "import.csv")
    assert report.notes and "15 points possible, the grader 20" in report.notes[0], report.notes


def test_the_column_can_be_named_and_a_wrong_name_is_explained(tmp_path, capsys):
    course = tmp_path / "course"
    _results(course, {"ada": (3.0, "graded")}, assignment="03_positional_encoding")
    report = fill_canvas_gradebook(course, GRADEBOOK, tmp_path / "a.csv", column="Exercise 3: Positional encoding")
    assert report.column == "Exercise 3: Positional encoding (88122)"
    assert cli(["export", "--course-dir", str(course), "--format", "canvas", "--roster", str(GRADEBOOK),
                "--output", str(tmp_path / "b.csv"), "--column", "Quiz 9"]) == 2
    error = capsys.readouterr().err
    assert "Quiz 9" in error and COLUMN in error, f"the error should list the assignment columns, got: {error}"


def test_command_line_prints_what_the_instructor_must_check(tmp_path, capsys):
    course = tmp_path / "course"
    _results(course, SAMPLE)
    out = tmp_path / "import.csv"
    assert cli(["export", "--course-dir", str(course), "--format", "canvas", "--roster", str(GRADEBOOK),
                "--output", str(out)]) == 0
    printed = capsys.readouterr().err
    for expected in (f"filled column '{COLUMN}' for 5 students", "no submission: Frank, Fay",
                     "no student in the gradebook for submission 'zed'", "review dan (Dan, Dan): flagged",
                     f"exported to {out}"):
        assert expected in printed, f"expected {expected!r} in:\n{printed}"
    assert cli(["export", "--course-dir", str(course), "--format", "canvas", "--roster", str(GRADEBOOK),
                "--output", str(GRADEBOOK)]) == 2, "the Canvas export itself must never be overwritten"


def test_guide_shows_what_the_round_trip_prints_for_the_sample_class(tmp_path, capsys, monkeypatch):
    from test_examples import EXAMPLES, GUIDE, guide_outputs

    course = tmp_path / "course"
    rows = csv.DictReader((EXAMPLES / ASSIGNMENT / "expected_grades.csv").read_text(encoding="utf-8").splitlines())
    _results(course, {r["student_id"]: (float(r["score"]), r["status"]) for r in rows})  # what grade wrote
    shutil.copy(GRADEBOOK, tmp_path / "gradebook.csv")
    monkeypatch.chdir(tmp_path)
    assert cli(["export", "--course-dir", str(course), "--format", "canvas", "--roster", "gradebook.csv",
                "--output", "canvas_import.csv"]) == 0
    printed = capsys.readouterr().err
    assert printed in guide_outputs(), f"update the Canvas output in {GUIDE.name} to:\n{printed}"
