"""Build student submissions for tests: the released notebook, filled in the way a student would.

A submission starts from the student notebook in ``exercises/`` (what students download) and
puts an answer into each solution cell: the reference answer from ``solutions/`` (the text
between ``### BEGIN SOLUTION`` and ``### END SOLUTION``), or a replacement given by the test.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)


@dataclass(frozen=True)
class Answer:
    """A student's answer to some solution cells of one assignment.

    ``replace`` maps a solution cell's grade_id to ``(old, new)`` text edits applied to the
    reference answer (each ``old`` must occur: a mistake that edits nothing is a test bug);
    ``source`` maps a grade_id to a whole new cell source. Cells not named get the reference answer.
    """

    name: str
    why: str
    replace: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)


def notebook_paths(assignment: str) -> tuple[Path, Path]:
    solution = next((REPO / "solutions" / assignment).glob("*.ipynb"))
    return solution, REPO / "exercises" / assignment / solution.name


def reference_answers(assignment: str) -> dict[str, str]:
    """grade_id -> the solution cell as a student who got everything right would write it."""
    solution, _ = notebook_paths(assignment)
    nb = nbformat.read(solution, as_version=4)
    return {
        cell.metadata["nbgrader"]["grade_id"]: _MARKER.sub("", cell.source)
        for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }


def build_submission(assignment: str, answer: Answer | None) -> nbformat.NotebookNode:
    """The released notebook with ``answer`` filled in (``None``: untouched, as released)."""
    _, released = notebook_paths(assignment)
    nb = nbformat.read(released, as_version=4)
    if answer is None:
        return nb
    reference = reference_answers(assignment)
    unknown = (set(answer.replace) | set(answer.source)) - set(reference)
    assert not unknown, f"{answer.name}: no solution cell called {sorted(unknown)}"
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id not in reference:
            continue
        text = answer.source.get(grade_id, reference[grade_id])
        for old, new in answer.replace.get(grade_id, []):
            assert old in text, f"{answer.name}: {old!r} does not occur in the answer to {grade_id}"
            text = text.replace(old, new)
        cell.source = text
    return copy.deepcopy(nb)
