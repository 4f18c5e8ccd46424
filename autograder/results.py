"""What grading one submission produced, stored as JSON next to the course's other files.

``COURSE_DIR/results/ASSIGNMENT/STUDENT.json`` holds one :class:`SubmissionResult`; the grades
table, the feedback pages and the exports are all made from these files, so each step can be
re-run on its own. :func:`write_table` writes both CSV tables (``grade``'s and ``export``'s).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, TextIO


@dataclass
class TestResult:
    grade_id: str
    points: float
    max_points: float
    passed: bool
    message: str = ""  # the failure's "ExceptionName: message", never the test's source


@dataclass
class SubmissionResult:
    student_id: str
    assignment: str
    score: float
    max_score: float
    status: str  # the text of an autograder.status.Status: "graded", "flagged: <reasons>" or "error: <reasons>"
    tests: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    submission_sha256: str = ""
    cache_key: str = ""
    seconds: float = 0.0
    sandboxed: bool = True  # False: graded with --no-sandbox

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)  # never a half-written result

    @classmethod
    def load(cls, path: Path) -> SubmissionResult:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["tests"] = [TestResult(**t) for t in data.get("tests", [])]
        return cls(**data)


def result_path(course_dir: Path, assignment: str, student: str) -> Path:
    return course_dir / "results" / assignment / f"{student}.json"


def load_results(course_dir: Path, assignment: str | None = None) -> list[SubmissionResult]:
    pattern = f"{assignment}/*.json" if assignment else "*/*.json"
    return [SubmissionResult.load(p) for p in sorted((course_dir / "results").glob(pattern))]




COLUMNS = ["student_id", "assignment", "score", "max_score", "status"]


def short_points(points: float) -> str:
    """``15.0`` -> ``15``, ``7.5`` -> ``7.5``: points as a spreadsheet or an LMS import shows them."""
    return f"{points:g}"


def write_table(handle: TextIO, results: list[SubmissionResult], points: Callable[[float], str] = str) -> None:
    """The results as CSV, one row of :data:`COLUMNS` per student and assignment, sorted by both.

    ``points`` writes a score: ``str`` (``15.0``) in the grades file ``grade`` writes, which the
    instructor guide and the examples' ``expected_grades.csv`` show; :func:`short_points` in ``export``.
    """
    writer = csv.writer(handle)
    writer.writerow(COLUMNS)
    for r in sorted(results, key=lambda r: (r.student_id, r.assignment)):
        writer.writerow([r.student_id, r.assignment, points(r.score), points(r.max_score), r.status])
