"""The instructor guide's worked example: the sample class in examples/ grades as the guide shows."""

import csv
import shutil

import pytest

from autograder import collect, feedback, grade
from notebooks import REPO

EXAMPLES = REPO / "examples" / "submissions"


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
