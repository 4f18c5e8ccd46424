"""Assembly (:mod:`autograder.assemble`): the student's answers put into the instructor's notebook.
Everything but the answers and the student's own added cells comes from the source."""

from __future__ import annotations

import nbformat

from autograder.assemble import assemble, find_answers, matches_assignment
from autograder.notebook import STUDENT_EXTRA, role

HIDDEN = "### BEGIN HIDDEN TESTS\nassert f(100) == 200\n### END HIDDEN TESTS"


def _cell(source, **nbgrader):
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": nbgrader} if nbgrader else {})


def _source():
    return nbformat.v4.new_notebook(cells=[
        _cell("import torch", grade=False, solution=False, grade_id="setup", locked=True),
        _cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", solution=True, grade_id="f"),
        _cell(f"assert f(2) == 4\n{HIDDEN}", grade=True, grade_id="test_f", points=2),
        _cell("def g(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION", solution=True, grade_id="g"),
        _cell("assert g(1) == 1", grade=True, grade_id="test_g", points=1),
        _cell("plot_something()"),  # an ungraded demo after the last test
    ])


def _released():
    nb = _source()
    nb.cells[1].source = "def f(x):\n    raise NotImplementedError()"
    nb.cells[2].source = "assert f(2) == 4"
    nb.cells[3].source = "def g(x):\n    raise NotImplementedError()"
    return nb


def test_answers_go_in_and_the_tests_come_from_the_source():
    submission = _released()
    submission.cells[1].source = "def f(x):\n    return x + x"
    submission.cells[2].source = "print('all good')  # a student edited the test"
    submission.cells.insert(3, _cell("def helper():\n    return 0"))  # added between the answers
    answers = find_answers(submission, _source())
    assert answers.by_id == {"f": "def f(x):\n    return x + x", "g": "def g(x):\n    raise NotImplementedError()"}
    assert answers.extra == {"f": [], "g": ["def helper():\n    return 0"], None: []}
    assert answers.student_code()[-1] == "def helper():\n    return 0" and not answers.missing
    graded = assemble(_source(), answers)
    sources = [c.source for c in graded.cells]
    assert sources[2] == f"assert f(2) == 4\n{HIDDEN}", "the test cell, hidden tests included, comes from the source"
    assert role(graded.cells[3]) == STUDENT_EXTRA and sources[3] == "def helper():\n    return 0", (
        f"an added cell goes right before the answer it preceded, got {sources}")
    assert sources[-1] == "assert g(1) == 1", "cells after the last test (demos) are dropped"
    assert len(assemble(_source(), answers, keep_trailing=True).cells) == len(graded.cells) + 1


def test_deleted_answers_fail_and_deleted_tests_come_back():
    submission = _released()
    submission.cells = [c for c in submission.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ("g", "test_f")]
    answers = find_answers(submission, _source())
    assert answers.missing == ["g"]
    graded = assemble(_source(), answers)
    assert graded.cells[3].source.startswith("raise NotImplementedError()"), graded.cells[3].source
    assert [c.metadata["nbgrader"]["grade_id"] for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade")] == [
        "test_f", "test_g"]


def test_answers_without_metadata_are_matched_by_the_name_they_define():
    submission = _released()
    for cell in submission.cells:
        cell.metadata.pop("nbgrader", None)
    submission.cells[3].source = "def g(x):\n    return x * 1"
    answers = find_answers(submission, _source())
    assert answers.by_id["g"] == "def g(x):\n    return x * 1" and answers.matched_by_name == ["f", "g"]
    assert answers.extra == {"f": [], "g": [], None: []}, "copies of the source's own cells are not the student's"


def test_a_notebook_of_another_assignment_shares_little_structure():
    assert matches_assignment(_released(), _source()) == 1.0
    other = nbformat.v4.new_notebook(cells=[_cell("def h(): ...", solution=True, grade_id="h")])
    assert matches_assignment(other, _source()) == 0.0
    no_metadata = nbformat.v4.new_notebook(cells=[_cell("def f(x): ...")])
    assert matches_assignment(no_metadata, _source()) == 0.5, "without metadata: the answers' names it defines"
