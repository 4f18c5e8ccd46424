"""The instructor guide's worked example: the sample class in examples/ grades as the guide shows."""

import csv
import re
import shutil

import pytest

from autograder import collect, feedback, grade
from autograder.cli import main as cli
from autograder.grade import summarize
from notebooks import REPO

EXAMPLES = REPO / "examples" / "submissions"
GUIDE = REPO / "book" / "instructor_guide.md"


def guide_outputs() -> list[str]:
    """The command outputs the instructor guide shows (its ```text blocks)."""
    return re.findall(r"```text\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)


def test_guide_shows_what_collect_prints(tmp_path, capsys):
    assignment = "04_self_attention"
    course = tmp_path / "course"
    assert cli(["collect", assignment, str(EXAMPLES / assignment), "--course-dir", str(course)]) == 0
    printed = capsys.readouterr().out.replace(str(course), "~/course")
    assert printed in guide_outputs(), f"update the collect output in {GUIDE.name} to:\n{printed}"


@pytest.mark.slow
@pytest.mark.parametrize("folder", sorted(p for p in EXAMPLES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_sample_class_grades_as_documented(folder, tmp_path):
    assignment = folder.name
    inbox = tmp_path / "download"
    shutil.copytree(folder, inbox, ignore=shutil.ignore_patterns("expected_grades.csv"))
    course = tmp_path / "course"
    report = collect(assignment, [inbox], course)
    assert report.older, "the sample class shows a resubmission"
    grades = grade(assignment, course, jobs=2)
    feedback(assignment, course)
    got = {row["student_id"]: row for row in csv.DictReader(grades.open(encoding="utf-8"))}
    expected = {row["student_id"]: row for row in csv.DictReader((folder / "expected_grades.csv").open(encoding="utf-8"))}
    assert set(got) == set(expected)
    for student, row in expected.items():
        assert got[student]["score"] == row["score"], (student, got[student])
        assert got[student]["status"].split(":")[0] == row["status"].split(":")[0], (student, got[student])
    if assignment == "04_self_attention":  # the guide's example
        line = summarize(grades)
        assert any(line in block for block in guide_outputs()), f"update the grade summary in {GUIDE.name} to: {line}"
