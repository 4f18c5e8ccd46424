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

import copy
import re
from dataclasses import dataclass, field

from nbformat import NotebookNode

from autograder.notebook import (
    STUDENT_EXTRA,
    defined_names,
    grade_id,
    is_solution,
    is_test,
    nbgrader_meta,
    new_cell,
    solution_ids,
)


def _normalised(source: str) -> str:
    return re.sub(r"\s+", " ", source).strip()


@dataclass
class Answers:
    """What a submission answered: ``by_id`` maps a solution grade_id to the student's cell source;
    ``extra`` maps a grade_id to the student's added code cells placed before that answer
    (``None`` key: after the last answer)."""

    by_id: dict[str, str] = field(default_factory=dict)
    extra: dict[str | None, list[str]] = field(default_factory=dict)
    matched_by_name: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def student_code(self) -> list[str]:
        """Every cell the student wrote: the answers, then the added cells."""
        return list(self.by_id.values()) + [source for cells in self.extra.values() for source in cells]


def find_answers(submission: NotebookNode, source: NotebookNode) -> Answers:
    """Match the submission's cells to the source's solution cells."""
    answer_ids = solution_ids(source)
    fixed = {_normalised(c.source) for c in source.cells if c.cell_type == "code" and not is_solution(c)}
    fixed |= {_normalised(_strip_hidden(c.source)) for c in source.cells if is_test(c)}
    known_ids = {grade_id(c) for c in source.cells} - {None}
    answers = Answers()
    pending: list[str] = []
    for cell in submission.cells:
        if cell.get("cell_type") != "code":
            continue
        cell_id = grade_id(cell)
        if cell_id in answer_ids and cell_id not in answers.by_id:
            answers.by_id[cell_id] = cell.source
            answers.extra[cell_id] = pending
            pending = []
        elif cell_id in known_ids or _normalised(cell.source) in fixed or not cell.source.strip():
            continue  # a copy of a cell the source provides (restored from the source)
        else:
            names = defined_names(cell.source)
            match = next((sid for sid in answer_ids if sid in names and sid not in answers.by_id), None)
            if match is not None and not nbgrader_meta(cell):
                answers.by_id[match] = cell.source
                answers.extra[match] = pending
                answers.matched_by_name.append(match)
                pending = []
            else:
                pending.append(cell.source)
    answers.extra[None] = pending
    answers.missing = [sid for sid in answer_ids if sid not in answers.by_id]
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
        if is_solution(cell):
            cell_id = grade_id(cell)
            for extra in answers.extra.get(cell_id, []):
                cells.append(new_cell(extra, STUDENT_EXTRA))
            if cell_id in answers.by_id:
                cell.source = answers.by_id[cell_id]
            else:
                cell.source = "raise NotImplementedError()  # no answer found in the submission"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    for extra in answers.extra.get(None, []):
        last_answer = max((i for i, c in enumerate(cells) if is_solution(c)), default=len(cells) - 1)
        cells.insert(last_answer + 1, new_cell(extra, STUDENT_EXTRA))
    if not keep_trailing:
        last_test = max((i for i, c in enumerate(cells) if is_test(c)), default=len(cells) - 1)
        cells = cells[: last_test + 1]
    graded.cells = cells
    return graded


def matches_assignment(submission: NotebookNode, source: NotebookNode) -> float:
    """How much of the source's structure the submission shares, from 0 to 1 (for "wrong assignment")."""
    ids = {grade_id(c) for c in source.cells} - {None}
    names = set(solution_ids(source))
    got_ids = {grade_id(c) for c in submission.cells} - {None}
    defined = set().union(*(defined_names(c.source) for c in submission.cells if c.get("cell_type") == "code"))
    if got_ids:
        return len(ids & got_ids) / len(ids)
    return len(names & defined) / max(1, len(names))
