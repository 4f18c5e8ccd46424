"""``export``: every stored result as one table, for a spreadsheet or an LMS gradebook import.

``csv``: one row per student and assignment: ``student_id, assignment, score, max_score, status``.
``canvas``: Canvas's gradebook import layout: ``Student, ID, SIS User ID, Section`` and one
column per assignment named ``ASSIGNMENT (MAX)``; rows need review when a status is not ``graded``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from autograder.results import load_results

FORMATS = ("csv", "canvas")


def export(course_dir: Path, output: Path | None = None, format: str = "csv") -> Path | None:
    """Write the table to ``output`` (stdout when None); return the path written."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    results = load_results(Path(course_dir))
    handle = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        writer = csv.writer(handle)
        if format == "csv":
            writer.writerow(["student_id", "assignment", "score", "max_score", "status"])
            for r in sorted(results, key=lambda r: (r.student_id, r.assignment)):
                writer.writerow([r.student_id, r.assignment, f"{r.score:g}", f"{r.max_score:g}", r.status])
        else:
            assignments = sorted({r.assignment for r in results})
            maxima = {a: max(r.max_score for r in results if r.assignment == a) for a in assignments}
            writer.writerow(["Student", "ID", "SIS User ID", "Section"] + [f"{a} ({maxima[a]:g})" for a in assignments])
            by_student: dict[str, dict[str, str]] = {}
            for r in results:
                by_student.setdefault(r.student_id, {})[r.assignment] = f"{r.score:g}"
            for student in sorted(by_student):
                writer.writerow([student, "", student, ""] + [by_student[student].get(a, "") for a in assignments])
    finally:
        if output:
            handle.close()
    return Path(output) if output else None
