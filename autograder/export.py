"""``export``: every stored result as one table, for a spreadsheet or an LMS gradebook import.

``csv``: one row per student and assignment: ``student_id, assignment, score, max_score, status``.
``canvas`` without a roster: Canvas's gradebook layout, ``Student, ID, SIS User ID, Section`` and
one column per assignment named ``ASSIGNMENT (MAX)``, the student id in ``Student`` and
``SIS User ID`` only (Canvas may not match these rows to its students: prefer a roster).

``canvas`` with ``roster`` (:func:`fill_canvas_gradebook`): the round trip. The instructor exports
the gradebook from Canvas (*Grades → Export → Export Entire Gradebook*), and gets it back with one
assignment's column filled in, every other column and row exactly as it was, ready for *Grades →
Import*. A Canvas export looks like::

    Student,ID,SIS User ID,SIS Login ID,Section,Exercise 4: Self-attention (88123),...,Current Score,...
        Points Possible,,,,,15.00,...,(read only),...
    "Lovelace, Ada",1001,S0001,ada@uni.example,Section A,,...

How a student id that ``collect`` saw (the file-name prefix, the folder name or what
``--id-pattern`` found) is matched to a row, case-insensitively, first rule that matches wins:

1. the row's ``SIS Login ID``, or its part before ``@`` (``ada`` matches ``ada@uni.example``);
2. the row's ``SIS User ID``;
3. the row's ``ID`` (Canvas's own user id: what Canvas's *Download Submissions* archive puts in
   each file name, ``lovelaceada_1001_55501_04_self_attention.ipynb``; collect it with
   ``--id-pattern '^[^_]+_(?:LATE_)?(\\d+)_'``);
4. the name Canvas's download gives the file, the ``Student`` column's letters lowercased
   (``Lovelace, Ada`` -> ``lovelaceada``), which is what ``collect`` sees without ``--id-pattern``.

A rule that matches two rows matches none (the id is reported as ambiguous, nothing is filled).
"""

from __future__ import annotations

import csv
import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import AutograderError
from autograder.results import SubmissionResult, load_results, short_points, write_table

FORMATS = ("csv", "canvas")

# Canvas's identity columns; an assignment column is "Name (canvas assignment id)".
_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
_ASSIGNMENT_COLUMN = re.compile(r"^(?P<name>.*\S)\s*\((?P<id>\d+)\)\s*$")
_TEST_STUDENTS = {"student, test", "test student"}  # the "student view" user Canvas adds to every course


def export(course_dir: Path, output: Path | None = None, format: str = "csv", roster: Path | None = None,
           assignment: str | None = None, column: str | None = None) -> Path | None:
    """Write the table to ``output`` (stdout when None); return the path written.

    With ``format="canvas"`` and a ``roster`` (a gradebook CSV exported from Canvas), the gradebook
    comes back with ``assignment``'s column filled in: see :func:`fill_canvas_gradebook`, which also
    says who was not matched.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if roster is not None:
        if format != "canvas":
            raise ValueError("--roster is a Canvas gradebook: use it with --format canvas")
        report = fill_canvas_gradebook(course_dir, roster, output, assignment, column)
        return report.output
    results = load_results(Path(course_dir))
    handle = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        if format == "csv":
            write_table(handle, results, points=short_points)
        else:
            writer = csv.writer(handle)
            assignments = sorted({r.assignment for r in results})
            maxima = {a: max(r.max_score for r in results if r.assignment == a) for a in assignments}
            writer.writerow(["Student", "ID", "SIS User ID", "Section"] + [f"{a} ({short_points(maxima[a])})" for a in assignments])
            by_student: dict[str, dict[str, str]] = {}
            for r in results:
                by_student.setdefault(r.student_id, {})[r.assignment] = short_points(r.score)
            for student in sorted(by_student):
                writer.writerow([student, "", student, ""] + [by_student[student].get(a, "") for a in assignments])
    finally:
        if output:
            handle.close()
    return Path(output) if output else None


@dataclass
class CanvasReport:
    """What :func:`fill_canvas_gradebook` did."""

    output: Path | None
    column: str
    filled: dict[str, str] = field(default_factory=dict)  # student id -> the row's Student name
    rule: dict[str, str] = field(default_factory=dict)  # student id -> the column that matched it
    no_submission: list[str] = field(default_factory=list)  # roster students (Student column) with no result
    no_student: list[str] = field(default_factory=list)  # graded ids that match no row
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # id -> the rows it matched
    to_review: dict[str, str] = field(default_factory=dict)  # id -> status, when not "graded"
    notes: list[str] = field(default_factory=list)  # e.g. Canvas's points possible differ from the grader's

    def lines(self) -> list[str]:
        """What the command line prints."""
        out = [f"filled column {self.column!r} for {len(self.filled)} students"]
        for student, status in sorted(self.to_review.items()):
            out.append(f"review {student} ({self.filled.get(student, '?')}): {status}")
        for name in self.no_submission:
            out.append(f"no submission: {name} (cell left as it was)")
        for student in self.no_student:
            out.append(f"no student in the gradebook for submission {student!r} (not written anywhere)")
        for student, rows in sorted(self.ambiguous.items()):
            out.append(f"ambiguous: {student!r} matches {', '.join(rows)} (not written; use collect --id-pattern)")
        return out + [f"note: {note}" for note in self.notes]


def _key(value: str) -> str:
    return value.strip().casefold()


def _download_name(student: str) -> str:
    """The name Canvas's *Download Submissions* gives a student's files: ``Lovelace, Ada`` -> ``lovelaceada``."""
    return "".join(ch for ch in student.casefold() if ch.isalpha())


def _rules(row: dict[str, str]) -> list[tuple[str, set[str]]]:
    login = row.get("SIS Login ID", "") or ""
    return [
        ("SIS Login ID", {k for k in (_key(login), _key(login.split("@", 1)[0])) if k}),
        ("SIS User ID", {_key(row.get("SIS User ID", "") or "")} - {""}),
        ("ID", {_key(row.get("ID", "") or "")} - {""}),
        ("Student (Canvas download name)", {_download_name(row.get("Student", "") or "")} - {""}),
    ]


def match_students(student_ids: list[str], rows: list[dict[str, str]]) -> tuple[dict[str, int], dict[str, str], dict[str, list[int]]]:
    """(id -> row index, id -> the rule that matched, id -> the rows of an ambiguous rule); see the module docstring."""
    keys = [_rules(row) for row in rows]
    matched, rule_of, ambiguous = {}, {}, {}
    for student in student_ids:
        wanted = _key(student)
        for position, (rule, _) in enumerate(keys[0] if keys else []):
            hits = [i for i, row_keys in enumerate(keys) if wanted in row_keys[position][1]]
            if len(hits) == 1:
                matched[student], rule_of[student] = hits[0], rule
                break
            if len(hits) > 1:
                ambiguous[student] = hits
                break
    return matched, rule_of, ambiguous


def _find_column(header: list[str], assignment: str, column: str | None) -> int:
    names = {i: (_ASSIGNMENT_COLUMN.match(h).group("name") if _ASSIGNMENT_COLUMN.match(h) else h.strip())
             for i, h in enumerate(header)}
    candidates = [i for i, h in enumerate(header) if i >= len(_IDENTITY) and _ASSIGNMENT_COLUMN.match(h)]
    listing = "; ".join(header[i] for i in candidates) or "none"
    if column is not None:
        exact = [i for i in range(len(header)) if header[i].strip() == column.strip() or names[i] == column.strip()]
        if len(exact) != 1:
            raise AutograderError(f"--column {column!r} is not one column of the gradebook; its assignment columns: {listing}")
        return exact[0]

    def flat(text: str) -> str:
        return re.sub(r"[^0-9a-z]", "", text.casefold())

    topic = flat(re.sub(r"^\d+_", "", assignment))
    found = [i for i in candidates if flat(assignment) in flat(names[i]) or (topic and topic in flat(names[i]))]
    if len(found) != 1:
        which = "no" if not found else "more than one"
        raise AutograderError(f"{which} column of the gradebook looks like assignment {assignment}: name it with "
                              f"--column (its assignment columns: {listing})")
    return found[0]


def fill_canvas_gradebook(course_dir: Path, roster: Path, output: Path | None = None, assignment: str | None = None,
                          column: str | None = None) -> CanvasReport:
    """Fill ``assignment``'s column of a gradebook exported from Canvas with the stored scores.

    Args:
        course_dir: the course directory holding the results.
        roster: the gradebook CSV downloaded from Canvas.
        output: where to write the filled gradebook (stdout when None); never the roster itself.
        assignment: the assignment whose scores to fill in (needed when results hold several).
        column: the gradebook column to fill (``Name (id)`` or just ``Name``); by default the one
            assignment column whose name contains the assignment's name or topic.

    Every other cell, row (``Points Possible``, the test student) and column (totals, other
    assignments) is written back unchanged; students without a result keep what their cell held.
    """
    course_dir, roster = Path(course_dir), Path(roster)
    if output is not None and Path(output).resolve() == roster.resolve():
        raise AutograderError("write the filled gradebook to a new file (--output), not over the Canvas export")
    results = load_results(course_dir, assignment)
    if assignment is None:
        kinds = sorted({r.assignment for r in results})
        if len(kinds) != 1:
            raise AutograderError(f"name the assignment to fill in with --assignment (results hold: {', '.join(kinds) or 'none'})")
        assignment = kinds[0]
    if not results:
        raise AutograderError(f"no results for {assignment} in {course_dir}: run grade first")
    raw = roster.read_bytes()
    text = raw.decode("utf-8-sig")
    newline = "\r\n" if "\r\n" in text else "\n"
    table = list(csv.reader(io.StringIO(text, newline="")))
    if not table or table[0][:1] != ["Student"] or "ID" not in table[0]:
        raise AutograderError(f"{roster} is not a Canvas gradebook export (its first column must be 'Student', "
                              f"then 'ID', 'SIS User ID', ...; got {table[0][:5] if table else 'an empty file'})")
    header = table[0]
    target = _find_column(header, assignment, column)

    def is_student(cells: list[str]) -> bool:
        name = cells[0].strip() if cells else ""
        return bool(name) and name != "Points Possible" and len(cells) > 1 and cells[1].strip() != ""

    student_rows = [i for i in range(1, len(table)) if is_student(table[i])]
    rows = [dict(zip(header, table[i])) for i in student_rows]
    by_id: dict[str, SubmissionResult] = {r.student_id: r for r in results}
    matched, rule_of, ambiguous = match_students(sorted(by_id), rows)
    report = CanvasReport(Path(output) if output else None, header[target])
    for student, index in matched.items():
        cells = table[student_rows[index]]
        cells.extend([""] * (len(header) - len(cells)))
        cells[target] = short_points(by_id[student].score)
        report.filled[student] = cells[0]
        report.rule[student] = rule_of[student]
        if by_id[student].status != "graded":
            report.to_review[student] = by_id[student].status
    maximum = max(r.max_score for r in results)
    for cells in table[1:]:
        if cells and cells[0].strip() == "Points Possible" and len(cells) > target:
            try:
                possible = float(cells[target])
            except ValueError:
                continue
            if possible != maximum:
                report.notes.append(f"Canvas gives {header[target]!r} {possible:g} points possible, the grader "
                                    f"{maximum:g}: the scores are the grader's points (change one of the two)")
    taken = set(matched.values())
    report.no_submission = [rows[i]["Student"] for i in range(len(rows))
                            if i not in taken and _key(rows[i]["Student"]) not in _TEST_STUDENTS]
    report.no_student = sorted(set(by_id) - set(matched) - set(ambiguous))
    report.ambiguous = {s: [rows[i]["Student"] for i in hits] for s, hits in ambiguous.items()}
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=newline).writerows(table)
    data = ("\ufeff" if raw.startswith(b"\xef\xbb\xbf") else "") + buffer.getvalue()
    if output:
        Path(output).write_bytes(data.encode("utf-8"))
    else:
        sys.stdout.write(data)
    return report
