"""Two defences inside and after the kernel, on their own: the guard that restores what student code
patched (every module of the course package included), and the scrubbing of failure messages."""

from __future__ import annotations

import sys

import nbformat

from autograder import guard
from autograder.results import WITHHELD, scrub, secret_lines, score_tests


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


def _source():
    test = nbformat.v4.new_code_cell(
        "assert f(2) == 4, 'visible check of f'\n### BEGIN HIDDEN TESTS\nassert f(31337) == 62674, 'hidden case'\n"
        "### END HIDDEN TESTS", metadata={"nbgrader": {"grade": True, "grade_id": "t", "points": 2}})
    answer = nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x * 2  # the instructor's way\n"
                                       "    ### END SOLUTION", metadata={"nbgrader": {"solution": True, "grade_id": "f"}})
    return nbformat.v4.new_notebook(cells=[answer, test])


def test_secret_lines_are_hidden_tests_and_solutions_but_not_what_students_see():
    secrets = secret_lines(_source())
    assert "assert f(31337) == 62674, 'hidden case'" in secrets
    assert "return x * 2 # the instructor's way" in secrets
    assert not any("visible check" in s for s in secrets), "a visible test is no secret"


def test_a_message_quoting_a_hidden_test_is_withheld_and_says_so():
    secrets = secret_lines(_source())
    message = "AssertionError: caller was:\n    assert   f(31337) == 62674, 'hidden case'\nand more"
    scrubbed = scrub(message, secrets)
    assert "31337" not in scrubbed and WITHHELD in scrubbed and scrubbed.endswith("and more")
    honest = "AssertionError: f(3) returned 5, expected 6: hint: did you add instead of multiply?"
    assert scrub(honest, secrets) == honest


def test_scored_messages_are_scrubbed():
    source = _source()
    executed = nbformat.from_dict(nbformat.v4.new_notebook(cells=[c.copy() for c in source.cells]))
    executed.cells[1].outputs = [nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="assert f(31337) == 62674, 'hidden case'", traceback=[])]
    executed.cells[1].execution_count = 1
    (result,) = score_tests(executed, source)
    assert not result.passed and "31337" not in result.message and WITHHELD in result.message
