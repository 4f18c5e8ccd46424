"""Scoring an executed notebook (:mod:`autograder.score`): points per test cell, and failure
messages scrubbed of the hidden tests' and the solutions' lines. No kernel: the executed
notebooks are built by hand."""

from __future__ import annotations

import nbformat

from autograder.score import WITHHELD, score_tests, scrub, secret_lines


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


def _ran(source, *outputs, count=1):
    executed = nbformat.from_dict(nbformat.v4.new_notebook(cells=[c.copy() for c in source.cells]))
    executed.cells[1].outputs = list(outputs)
    executed.cells[1].execution_count = count
    return executed


def test_a_test_cell_that_ran_without_an_exception_earns_its_points_even_if_it_warned():
    warning = nbformat.v4.new_output("stream", name="stderr", text="UserWarning: careful\n")
    (result,) = score_tests(_ran(_source(), warning), _source())
    assert (result.grade_id, result.points, result.max_points, result.passed) == ("t", 2.0, 2.0, True), (
        f"text on stderr must not fail a test (nbgrader's rule would), got {result}")


def test_an_exception_fails_the_test_with_its_message():
    error = nbformat.v4.new_output("error", ename="AssertionError", evalue="f(2) returned 5, expected 4", traceback=[])
    (result,) = score_tests(_ran(_source(), error), _source())
    assert (result.points, result.passed, result.message) == (0.0, False, "AssertionError: f(2) returned 5, expected 4")


def test_a_test_that_did_not_run_or_is_missing_earns_nothing_and_says_so():
    (result,) = score_tests(_ran(_source(), count=None), _source())
    assert (result.points, result.message) == (0.0, "this test did not run"), result
    executed = _ran(_source())
    executed.cells = executed.cells[:1]  # the executed notebook lost the test cell
    (result,) = score_tests(executed, _source())
    assert (result.points, result.max_points, result.message) == (0.0, 2.0, "this test did not run"), result
