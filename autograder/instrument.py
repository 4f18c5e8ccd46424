"""The grader's side of the guard (:mod:`autograder.guard`, which runs in the kernel).

:func:`instrument` adds the guard's cells to the assembled notebook: the install cell before the
first cell of student code (it also remembers the names the instructor's locked cells imported
above it), and a check cell before every test cell. :func:`guard_report` reads back, from the
executed notebook, what those cells said.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat
from nbformat import NotebookNode

from autograder import guard
from autograder.notebook import GUARD, imported_names, is_student_code, is_test, new_cell, role


def instrument(nb: NotebookNode, source: NotebookNode) -> NotebookNode:
    """Add the guard: install before the first student cell, a check before every test cell."""
    locked_names: list[str] = []
    cells: list[NotebookNode] = []
    installed = False
    for cell in nb.cells:
        is_code = cell.cell_type == "code"
        student = is_student_code(cell)
        if is_code and student and not installed:
            cells.append(new_cell(f"{guard.INSTALL_CELL}\n{guard.remember_cell(sorted(set(locked_names)))}", GUARD))
            installed = True
        if is_code and is_test(cell):
            cells.append(new_cell(guard.CHECK_CELL, GUARD))
        if is_code and not student and not is_test(cell) and not installed:
            locked_names += imported_names(cell.source)
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells, metadata=source.metadata)


@dataclass
class GuardReport:
    """What the guard's cells said in an executed notebook.

    ``install_failed``: the install cell raised, which is the grader's fault (nothing of the
    student's had run yet); ``check_failed``: a check cell raised, so student code got in its way;
    ``tampered``: what the checks had to put back (each report's text)."""

    install_failed: bool = False
    check_failed: bool = False
    tampered: list[str] = field(default_factory=list)


def _failed(cell: NotebookNode) -> bool:
    return any(o.get("output_type") == "error" for o in cell.get("outputs", []))


def tamper_reports(executed: NotebookNode) -> list[str]:
    """The guard's reports of what it put back, in the order it printed them (any cell's output)."""
    return [line[len(guard.MARKER):].strip()
            for cell in executed.cells for output in cell.get("outputs", [])
            for line in str(output.get("text", "")).splitlines() if line.startswith(guard.MARKER)]


def guard_report(executed: NotebookNode) -> GuardReport:
    guard_cells = [cell for cell in executed.cells if role(cell) == GUARD]
    return GuardReport(install_failed=bool(guard_cells) and _failed(guard_cells[0]),
                       check_failed=any(_failed(cell) for cell in guard_cells[1:]),
                       tampered=tamper_reports(executed))
