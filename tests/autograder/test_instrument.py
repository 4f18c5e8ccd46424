"""The grader's side of the guard (:mod:`autograder.instrument`): where its cells go in the notebook
that is executed, and what they said, read back from an executed notebook (built by hand here)."""

from __future__ import annotations

import nbformat

from autograder import guard
from autograder.instrument import guard_report, instrument
from autograder.notebook import GUARD, STUDENT_EXTRA, new_cell, role


def _cell(source, **nbgrader):
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": nbgrader} if nbgrader else {})


def _assembled():
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Exercise"),
        _cell("import torch\nfrom llm_foundations.checks.core import expect_close as close"),
        new_cell("def helper():\n    return 1", STUDENT_EXTRA),
        _cell("def f(x):\n    return 2 * x", solution=True, grade_id="f"),
        _cell("import math", grade=False, grade_id="later_import"),
        _cell("assert f(2) == 4", grade=True, grade_id="t", points=1),
    ])


def test_the_guard_is_installed_before_the_first_student_cell_and_checks_before_every_test():
    nb = instrument(_assembled(), _assembled())
    roles = [(role(c), c.source.splitlines()[0][:20] if c.source else "") for c in nb.cells]
    guards = [i for i, c in enumerate(nb.cells) if role(c) == GUARD]
    assert len(guards) == 2, f"expected an install cell and one check cell, got the roles {roles}"
    install, check = (nb.cells[i] for i in guards)
    assert guards[0] == 2 and role(nb.cells[3]) == STUDENT_EXTRA, (
        f"the install cell must come right before the student's first cell (their added helper), got {roles}")
    assert guards[1] == len(nb.cells) - 2 and nb.cells[-1].metadata["nbgrader"]["grade"], (
        f"a check cell must come right before the test cell, got {roles}")
    assert install.source.startswith(guard.INSTALL_CELL) and check.source == guard.CHECK_CELL
    assert guard.remember_cell(["close", "torch"]) in install.source, (
        "the names the locked cells imported above the first student cell are remembered (sorted); "
        f"got the install cell's last line {install.source.splitlines()[-1]!r}")


def _executed(*guard_outputs, tamper_text=""):
    cells = []
    for outputs in guard_outputs:
        cell = new_cell("guard", GUARD)
        cell.outputs = outputs
        cells.append(cell)
    printed = _cell("print('x')")
    printed.outputs = [nbformat.v4.new_output("stream", name="stdout", text=tamper_text)]
    return nbformat.v4.new_notebook(cells=cells + [printed])


ERROR = nbformat.v4.new_output("error", ename="RuntimeError", evalue="x", traceback=[])


def test_the_guard_report_tells_a_failed_install_from_a_failed_check_and_lists_what_was_put_back():
    assert guard_report(_executed([], [])) == guard_report(nbformat.v4.new_notebook())
    report = guard_report(_executed([ERROR], []))
    assert report.install_failed and not report.check_failed, "the first guard cell is the install cell"
    report = guard_report(_executed([], [], [ERROR]))
    assert not report.install_failed and report.check_failed, "any later guard cell is a check"
    report = guard_report(_executed([], tamper_text=f"ok\n{guard.MARKER} torch.allclose; sys.exit\n"))
    assert report.tampered == ["torch.allclose; sys.exit"], report.tampered
