"""``grade``: autograde every collected submission of one assignment and write a grades CSV.

Steps: put the solution notebook into the course directory's ``source/``; let nbgrader record
its cells and points in the gradebook (generate_assignment); run nbgrader's autograde over
``submitted/``, which restores the locked test cells (hidden tests included) before executing;
read the scores back from the gradebook into ``grades/ASSIGNMENT.csv``.
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from autograder.collect import collect
from autograder.course import REPO_ROOT, check_assignment, install_source, run_nbgrader


@dataclass
class GradeRow:
    student_id: str
    assignment: str
    score: float
    max_score: float
    status: str


def grade(
    assignment: str,
    course_dir: Path,
    submissions: list[Path] | None = None,
    timeout: int = 120,
    repo: Path = REPO_ROOT,
) -> Path:
    """Autograde ``course_dir/submitted/*/ASSIGNMENT`` and return the path of the grades CSV.

    Args:
        assignment: assignment name (a folder of ``solutions/``).
        course_dir: the instructor's course directory (created if missing).
        submissions: optional files or folders to :func:`~autograder.collect.collect` first.
        timeout: seconds each notebook cell may run.
        repo: repository root holding ``solutions/``.
    """
    check_assignment(assignment, repo)
    course_dir = Path(course_dir).resolve()
    course_dir.mkdir(parents=True, exist_ok=True)
    install_source(assignment, course_dir, repo)
    run_nbgrader(["generate_assignment", assignment, "--force"], course_dir)
    if submissions:
        collect(assignment, submissions, course_dir, repo)
    students = sorted(p.parent.name for p in (course_dir / "submitted").glob(f"*/{assignment}") if p.is_dir())
    if students:
        # nbgrader exits non-zero when any one notebook failed; the others are graded all the
        # same, and the failure shows up below as that student's status.
        run_nbgrader(
            ["autograde", assignment, "--create", "--force", f"--Execute.timeout={timeout}"],
            course_dir,
            check=False,
        )
    rows = [_row(course_dir, assignment, student) for student in students]
    return _write_csv(course_dir / "grades" / f"{assignment}.csv", rows)


def _row(course_dir: Path, assignment: str, student: str) -> GradeRow:
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        max_score = gradebook.find_assignment(assignment).max_score
        executed = course_dir / "autograded" / student / assignment
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            submission = None
        if submission is None or not any(executed.glob("*.ipynb")):
            # e.g. a file that is not a notebook: nbgrader logs it and moves on
            return GradeRow(student, assignment, 0.0, float(max_score),
                            "error: the submission could not be read or executed as a notebook")
        return GradeRow(student, assignment, float(submission.score), float(max_score), "graded")


def _write_csv(path: Path, rows: list[GradeRow]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([f.name for f in fields(GradeRow)])
        writer.writerows(astuple(row) for row in rows)
    return path
