"""The guard, in this process: it restores what student code patched (every module of the course
package included) and reports it; and the grader's side of it (:mod:`autograder.instrument`):
where its cells go, and what it said, read back from an executed notebook."""

from __future__ import annotations

import sys

import nbformat

from autograder import guard
from autograder.instrument import guard_report, instrument
from autograder.notebook import GUARD, STUDENT_EXTRA, new_cell, role


def _run_guard_cells(patch):
    namespace: dict = {}
    try:
        exec(guard.INSTALL_CELL, namespace)
        patch()
        exec(guard.CHECK_CELL, namespace)
        return sys.modules[guard.MODULE]._state["tampered"]
    finally:
        sys.modules.pop(guard.MODULE, None)


def test_the_guard_restores_course_functions_and_methods_the_checks_use():
    import llm_foundations.attention as attention
    import llm_foundations.checks.core as testing

    originals = (attention.scaled_dot_product_attention, attention.MultiHeadAttention.forward, testing.expect_close)

    def patch():
        attention.scaled_dot_product_attention = lambda *a, **k: None
        attention.MultiHeadAttention.forward = lambda self, *a, **k: None
        testing.expect_close = lambda *a, **k: None

    tampered = _run_guard_cells(patch)
    assert (attention.scaled_dot_product_attention, attention.MultiHeadAttention.forward, testing.expect_close) == originals
    assert {"llm_foundations.attention.scaled_dot_product_attention", "llm_foundations.checks.core.expect_close",
            "llm_foundations.attention.MultiHeadAttention.forward"} <= set(tampered)


def test_the_guard_reports_nothing_when_nothing_changed():
    assert _run_guard_cells(lambda: None) == []



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
