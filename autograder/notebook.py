"""Notebooks as the grader reads them: nbgrader's cell metadata, the grader's cell roles, the code in cells.

nbgrader marks a cell in ``metadata.nbgrader``: ``solution`` (the student writes it), ``grade``
with ``points`` (a test cell), ``grade_id`` (its name). The grader marks the cells it adds to
the notebook it executes in ``metadata.autograder.role``: :data:`STUDENT_EXTRA` for a code cell
the student added between the answers, :data:`GUARD` for the guard's cells
(:mod:`autograder.instrument`). Every other module asks these helpers, never the metadata.
"""

from __future__ import annotations

import ast
import re
import threading

import nbformat
from nbformat import NotebookNode

STUDENT_EXTRA = "student-extra"  # a code cell the student added (a helper their answers may call)
GUARD = "guard"  # a cell of the grader's guard


class SubmissionError(ValueError):
    """The submission cannot be graded (not a notebook, not this assignment)."""


def nbgrader_meta(cell: NotebookNode) -> dict:
    """The cell's nbgrader metadata (empty when it has none, or something that is not a dict)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def role(cell: NotebookNode) -> str | None:
    """The role the grader gave a cell it added (:data:`STUDENT_EXTRA`, :data:`GUARD`), or None."""
    return cell.get("metadata", {}).get("autograder", {}).get("role")


def new_cell(source: str, cell_role: str) -> NotebookNode:
    """A code cell the grader adds, marked with its role."""
    return nbformat.v4.new_code_cell(source, metadata={"autograder": {"role": cell_role}})


def is_solution(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def is_student_code(cell: NotebookNode) -> bool:
    """An answer cell or a cell the student added: code the student wrote."""
    return is_solution(cell) or role(cell) == STUDENT_EXTRA


def grade_id(cell: NotebookNode) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def solution_ids(nb: NotebookNode) -> list[str]:
    """The grade_ids of the notebook's solution cells, in order."""
    return [nbgrader_meta(c)["grade_id"] for c in nb.cells if is_solution(c)]


def max_score(source: NotebookNode) -> float:
    """The points of all the test cells together."""
    return float(sum(nbgrader_meta(c).get("points", 0) for c in source.cells if is_test(c)))


def read_notebook(text: str) -> NotebookNode:
    """Parse a submitted notebook as nbformat 4, whatever minor version or line endings it has."""
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as error:  # noqa: BLE001 - any parse failure means "not a notebook"
        raise SubmissionError(f"not a readable notebook ({type(error).__name__}: {str(error)[:200]})") from None
    if not isinstance(nb.get("cells"), list):
        raise SubmissionError("not a readable notebook (no cells)")
    for cell in nb.cells:
        if isinstance(cell.get("source"), list):  # nbformat 4.0 files may keep lists of lines
            cell["source"] = "".join(cell["source"])
        cell["source"] = cell.get("source", "").replace("\r\n", "\n")
    return nb


# CPython 3.11 keeps the AST constructor's recursion depth in shared state: two grading threads
# parsing at once can fail with "SystemError: AST constructor recursion depth mismatch".
_PARSE_LOCK = threading.Lock()


def parse_python(source: str) -> ast.Module | None:
    """The syntax tree of a cell's code, or None when it is not valid Python (a half-written
    answer, a null byte, nesting too deep to parse). Safe to call from several threads."""
    with _PARSE_LOCK:
        try:
            return ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None


def _bound_by_import(node: ast.Import | ast.ImportFrom) -> set[str]:
    return {(alias.asname or alias.name).split(".")[0] for alias in node.names}


def defined_names(source: str) -> set[str]:
    """Names a cell defines at top level (functions, classes, imports, plain assignments)."""
    tree = parse_python(source)
    if tree is None:
        # a half-written answer still names what it defines
        return set(re.findall(r"^(?:def|class)\s+(\w+)", source, flags=re.MULTILINE))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= _bound_by_import(node)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def imported_names(source: str) -> list[str]:
    """Names a cell binds with ``import`` statements (modules and the functions it imports)."""
    tree = parse_python(source)
    if tree is None:
        return []
    return sorted(set().union(*(_bound_by_import(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))))
