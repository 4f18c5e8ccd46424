"""Score an executed notebook: one :class:`~autograder.results.TestResult` per test cell of the source.

A test cell earns its points unless it raised. A failure's message is what students see in
their feedback, so it is scrubbed of every line of the hidden tests and of the solutions.
"""

from __future__ import annotations

import re

from nbformat import NotebookNode

from autograder.notebook import grade_id, is_test, nbgrader_meta
from autograder.results import TestResult

_HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*$", re.MULTILINE | re.DOTALL)
_SOLUTION_BLOCK = re.compile(r"^[ \t]*### BEGIN SOLUTION.*?### END SOLUTION[ \t]*$", re.MULTILINE | re.DOTALL)
_SHORTEST_SECRET = 12  # shorter lines (``else:``, ``return out``) say nothing and would withhold honest text
WITHHELD = "[withheld: this line quoted the grader's hidden tests or the instructor's solution]"


def _lines(text: str) -> set[str]:
    return {" ".join(line.split()) for line in text.splitlines()}


def secret_lines(source: NotebookNode) -> set[str]:
    """Lines of the hidden tests and of the instructor's solutions that students never see.

    Student code shares the kernel with the test that calls it (its frames, ``linecache``, the
    IPython history), so it can read a hidden test's source and raise it as its error message.
    Lines that the released notebook shows anyway (stubs, visible tests) are not secret.
    """
    secret, public = set(), set()
    for cell in source.cells:
        if cell.get("cell_type") != "code":
            continue
        blocks = _HIDDEN_BLOCK.findall(cell.source) + _SOLUTION_BLOCK.findall(cell.source)
        for block in blocks:
            secret |= _lines(block)
        public |= _lines(_SOLUTION_BLOCK.sub("", _HIDDEN_BLOCK.sub("", cell.source)))
    return {line for line in secret - public if len(line) >= _SHORTEST_SECRET}


def scrub(message: str, secrets: set[str]) -> str:
    """``message`` with every line that contains a secret line replaced, and a note when one was."""
    if not secrets:
        return message
    kept, withheld = [], False
    for line in message.splitlines():
        flat = " ".join(line.split())
        if len(flat) >= _SHORTEST_SECRET and any(secret in flat for secret in secrets):
            kept.append(WITHHELD)
            withheld = True
        else:
            kept.append(line)
    return "\n".join(kept) if withheld else message


def score_tests(executed: NotebookNode, source: NotebookNode) -> list[TestResult]:
    """One TestResult per graded cell of ``source``: full points unless its cell raised.

    A failure's message is what students see in their feedback: it is scrubbed of any line of
    the hidden tests or of the solutions (:func:`secret_lines`).

    Only an exception fails a test. Text on stderr (a warning from the student's code, a
    progress bar) does not: nbgrader's own rule, any stderr output fails the cell, would take
    points from correct answers.
    """
    executed_by_id = {grade_id(c): c for c in executed.cells if is_test(c)}
    secrets = secret_lines(source)
    tests = []
    for cell in source.cells:
        if not is_test(cell):
            continue
        meta = nbgrader_meta(cell)
        points = float(meta.get("points", 0))
        ran = executed_by_id.get(meta["grade_id"])
        if ran is None:
            tests.append(TestResult(meta["grade_id"], 0.0, points, False, "this test did not run"))
            continue
        errors = [o for o in ran.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            message = f"{errors[0].get('ename', 'Error')}: {errors[0].get('evalue', '')}"
            tests.append(TestResult(meta["grade_id"], 0.0, points, False, scrub(message, secrets)[:4000]))
        elif ran.get("execution_count") is None and not ran.get("outputs"):
            tests.append(TestResult(meta["grade_id"], 0.0, points, False, "this test did not run"))
        else:
            tests.append(TestResult(meta["grade_id"], points, points, True))
    return tests
