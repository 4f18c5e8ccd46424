"""Build the notebook that is executed for a grade: the instructor's source notebook, with the
student's answers put into its solution cells.

Everything the student could change to their advantage comes from the source: the setup and
import cells, every test cell (hidden tests included) and the points. What comes from the
submission is only what the student was asked to write: the answers, and any extra code cells
they added between them (helpers their answers may call).

Answers are found by the nbgrader ``grade_id`` in a cell's metadata; when a notebook lost its
metadata (some editors drop it), by the name the answer defines, since every solution cell of
this course defines its grade_id at top level (``def scaled_dot_product_attention``).
"""

from __future__ import annotations

import ast
import copy
import re
import threading
from dataclasses import dataclass, field

import nbformat
from nbformat import NotebookNode


class SubmissionError(ValueError):
    """The submission cannot be graded (not a notebook, not this assignment)."""


def nbgrader_meta(cell: NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


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


def _normalised(source: str) -> str:
    return re.sub(r"\s+", " ", source).strip()


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


def _defined_names(source: str) -> set[str]:
    tree = parse_python(source)
    if tree is None:
        # a half-written answer still names what it defines
        return set(re.findall(r"^(?:def|class)\s+(\w+)", source, flags=re.MULTILINE))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def imported_names(source: str) -> list[str]:
    """Names a cell binds with ``import`` statements (modules and the functions it imports)."""
    tree = parse_python(source)
    if tree is None:
        return []
    return sorted({(alias.asname or alias.name).split(".")[0]
                   for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names})


@dataclass
class Answers:
    """What a submission answered: ``by_id`` maps a solution grade_id to the student's cell source;
    ``extra`` maps a grade_id to the student's added code cells placed before that answer
    (``None`` key: after the last answer)."""

    by_id: dict[str, str] = field(default_factory=dict)
    extra: dict[str | None, list[str]] = field(default_factory=dict)
    matched_by_name: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def find_answers(submission: NotebookNode, source: NotebookNode) -> Answers:
    """Match the submission's cells to the source's solution cells."""
    solution_ids = [nbgrader_meta(c)["grade_id"] for c in source.cells if nbgrader_meta(c).get("solution")]
    fixed = {_normalised(c.source) for c in source.cells if c.cell_type == "code" and not nbgrader_meta(c).get("solution")}
    fixed |= {_normalised(_strip_hidden(c.source)) for c in source.cells if nbgrader_meta(c).get("grade")}
    known_ids = {nbgrader_meta(c).get("grade_id") for c in source.cells} - {None}
    answers = Answers()
    pending: list[str] = []
    for cell in submission.cells:
        if cell.get("cell_type") != "code":
            continue
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in solution_ids and grade_id not in answers.by_id:
            answers.by_id[grade_id] = cell.source
            answers.extra[grade_id] = pending
            pending = []
        elif grade_id in known_ids or _normalised(cell.source) in fixed or not cell.source.strip():
            continue  # a copy of a cell the source provides (restored from the source)
        else:
            names = _defined_names(cell.source)
            match = next((sid for sid in solution_ids if sid in names and sid not in answers.by_id), None)
            if match is not None and not nbgrader_meta(cell):
                answers.by_id[match] = cell.source
                answers.extra[match] = pending
                answers.matched_by_name.append(match)
                pending = []
            else:
                pending.append(cell.source)
    answers.extra[None] = pending
    answers.missing = [sid for sid in solution_ids if sid not in answers.by_id]
    return answers


_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.MULTILINE | re.DOTALL)


def _strip_hidden(source: str) -> str:
    return _HIDDEN.sub("", source)


def assemble(source: NotebookNode, answers: Answers, keep_trailing: bool = False) -> NotebookNode:
    """The notebook to execute: ``source`` with the answers in place of its solution cells.

    Cells after the last graded test cell are ungraded (plots, demos) and are dropped unless
    ``keep_trailing``, which saves their run time on every submission.
    """
    graded = copy.deepcopy(source)
    cells: list[NotebookNode] = []
    for cell in graded.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            grade_id = meta["grade_id"]
            for extra in answers.extra.get(grade_id, []):
                cells.append(nbformat.v4.new_code_cell(extra, metadata={"autograder": {"role": "student-extra"}}))
            if grade_id in answers.by_id:
                cell.source = answers.by_id[grade_id]
            else:
                cell.source = "raise NotImplementedError()  # no answer found in the submission"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    for extra in answers.extra.get(None, []):
        last_answer = max((i for i, c in enumerate(cells) if nbgrader_meta(c).get("solution")), default=len(cells) - 1)
        cells.insert(last_answer + 1, nbformat.v4.new_code_cell(extra, metadata={"autograder": {"role": "student-extra"}}))
    if not keep_trailing:
        last_test = max((i for i, c in enumerate(cells) if nbgrader_meta(c).get("grade")), default=len(cells) - 1)
        cells = cells[: last_test + 1]
    graded.cells = cells
    return graded


def matches_assignment(submission: NotebookNode, source: NotebookNode) -> float:
    """How much of the source's structure the submission shares, from 0 to 1 (for "wrong assignment")."""
    ids = {nbgrader_meta(c).get("grade_id") for c in source.cells} - {None}
    names = {nbgrader_meta(c)["grade_id"] for c in source.cells if nbgrader_meta(c).get("solution")}
    got_ids = {nbgrader_meta(c).get("grade_id") for c in submission.cells} - {None}
    defined = set().union(*(_defined_names(c.source) for c in submission.cells if c.get("cell_type") == "code"))
    if got_ids:
        return len(ids & got_ids) / len(ids)
    return len(names & defined) / max(1, len(names))
