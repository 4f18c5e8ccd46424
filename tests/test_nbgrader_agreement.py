"""Plain nbgrader grades the exercises as the course's grader does.

An instructor may grade with nbgrader's own tools (``nbgrader autograde``, formgrader on
JupyterHub) instead of ``python -m autograder grade``. nbgrader scores a test cell by its
outputs: an error, or any text on stderr, gives 0, and a last expression whose value reads as a
number is taken as partial credit (a number above the cell's points stops nbgrader on the whole
notebook). So every test cell must end without a displayed value, and a whole class graded by
plain nbgrader must get the totals our grader gives.

The full table (every assignment, every zoo answer) is ``tests/plain_nbgrader.py``'s job; here
one chapter is graded for real (about a minute of CPU) and every test cell is checked statically.
"""

from __future__ import annotations

import ast
import csv
import io
import tokenize

import nbformat
import pytest

from autograder import grade
from autograder.limits import Limits
from plain_nbgrader import class_of, course_with, nbgrader_scores
from submissions import REPO, notebook_paths

ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
# Chapter 1 is the cheapest notebook, and the one whose count check once returned an int that
# nbgrader read as 409057935360 points.
GRADED_FOR_REAL = ["01_overview"]


def _functions_returning_none() -> set[str]:
    """``print`` and the course's check functions that never return a value (``expect_raises``)."""
    names = {"print"}
    for path in (REPO / "llm_foundations" / "checks").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not any(
                    isinstance(n, ast.Return) and n.value is not None for n in ast.walk(node)):
                names.add(node.name)
    return names


QUIET_CALLS = _functions_returning_none()


def _ends_quietly(source: str) -> bool:
    """IPython's rule: a cell displays its last statement's value unless it is not an expression
    or the cell's last token (comments aside) is a semicolon; a call that returns None shows nothing."""
    tree = ast.parse(source)
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return True
    last = tree.body[-1].value
    if isinstance(last, ast.Call) and isinstance(last.func, ast.Name) and last.func.id in QUIET_CALLS:
        return True
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type not in (tokenize.ENDMARKER, tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)]
    return bool(tokens) and tokens[-1].string == ";"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_test_cells_display_no_value(assignment):
    solution, _ = notebook_paths(assignment)
    loud = []
    for cell in nbformat.read(solution, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution") and not _ends_quietly(cell.source):
            loud.append(meta["grade_id"])
    assert not loud, (
        f"{assignment}: the test cells {loud} end with an expression whose value the notebook displays. "
        "Plain nbgrader takes a displayed number as that cell's partial credit (and stops on the whole "
        "notebook when it exceeds the cell's points). Hint: end the statement with ';' or assign it.")


@pytest.mark.slow
@pytest.mark.parametrize("assignment", GRADED_FOR_REAL)
def test_plain_nbgrader_agrees_with_our_grader(assignment, tmp_path):
    students = class_of(assignment, zoo=False)
    plain = nbgrader_scores(assignment, course_with(assignment, tmp_path / "nbgrader", students))
    points = {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"])
              for c in nbformat.read(notebook_paths(assignment)[0], as_version=4).cells
              if c.metadata.get("nbgrader", {}).get("grade")}

    assert "reference-answers" in plain, f"{assignment}: nbgrader autograde stopped on the reference answers"
    assert plain["reference-answers"] == points, (
        f"{assignment}: plain nbgrader gave the reference answers {plain['reference-answers']}, expected full "
        f"marks {points}. Hint: a test cell that writes to stderr (a warning) scores 0 under nbgrader.")
    assert sum(plain["untouched"].values()) == 0, f"{assignment}: plain nbgrader gave the untouched notebook {plain['untouched']}"

    grades_csv = grade(assignment, course_with(assignment, tmp_path / "ours", students), limits=Limits(cell_seconds=60), jobs=1)
    with grades_csv.open(encoding="utf-8") as handle:
        ours = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    theirs = {student: sum(cells.values()) for student, cells in plain.items()}
    assert ours == theirs, f"{assignment}: our grader's totals {ours}, plain nbgrader's {theirs}"
