"""``grade_one``'s sequence of steps, with execution replaced by a stand-in (no kernel): what it
stores, when it reuses a stored result, and how an unreadable file ends."""

from __future__ import annotations

import copy
import importlib

import nbformat
import pytest

from autograder import guard
from autograder.execute import Execution
from autograder.limits import Limits
from autograder.notebook import GUARD, role
from autograder.results import SubmissionResult, result_path

grading = importlib.import_module("autograder.grade")  # the package's `grade` attribute is the function
LIMITS = Limits(cell_seconds=5)


def _cell(source, **nbgrader):
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": nbgrader})


def _source():
    return nbformat.v4.new_notebook(cells=[
        _cell("import torch", grade=False, solution=False, grade_id="setup"),
        _cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", solution=True, grade_id="f"),
        _cell("assert f(2) == 4", grade=True, grade_id="test_a", points=2),
        _cell("assert f(3) == 6", grade=True, grade_id="test_b", points=3),
    ])


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A course with one source notebook; ``ran`` records what execution was given, and the stand-in
    fails test_b, prints a tamper report and hits the output limit."""
    source_path = tmp_path / "source" / "a" / "a.ipynb"
    source_path.parent.mkdir(parents=True)
    nbformat.write(_source(), source_path)
    ran = []

    def execute(nb, limits, threads=None, sandbox=None):
        ran.append(nb)
        executed = copy.deepcopy(nb)
        for cell in executed.cells:
            cell.execution_count = 1
            if cell.source == "assert f(3) == 6":
                cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="f(3) gave 5", traceback=[])]
            if cell.source == "import torch":
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (limits.output_bytes + 1))]
            if role(cell) == GUARD and cell.source == guard.CHECK_CELL:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{guard.MARKER} torch.allclose\n")]
        return Execution(executed, 1.234, None)

    monkeypatch.setattr(grading, "execute", execute)
    return tmp_path, source_path, ran


def _submit(folder, text):
    path = folder / "submitted" / "kim" / "a" / "kim_a.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_grade_one_runs_the_steps_in_order_and_stores_the_result(course):
    folder, source_path, ran = course
    released = _source()
    released.cells[1].source = "def f(x):\n    return x + x + (x == 3)"
    submission = _submit(folder, nbformat.writes(released))
    result = grading.grade_one("kim", "a", submission, source_path, folder, LIMITS, isolation=None)
    (sent,) = ran
    assert [role(c) for c in sent.cells] == [None, GUARD, None, GUARD, None, GUARD, None], "guard cells are in place"
    assert sent.cells[2].source == released.cells[1].source, "the answer went into the source's solution cell"
    assert [(t.grade_id, t.points) for t in result.tests] == [("test_a", 2.0), ("test_b", 0.0)]
    assert (result.score, result.max_score, result.seconds) == (2.0, 5.0, 1.23)
    assert result.status == ("error: output limit: the notebook printed more than 1000000 bytes"
                             " (not isolated: graded with --no-sandbox)"), result.status
    assert SubmissionResult.load(result_path(folder, "a", "kim")) == result
    assert (folder / "autograded" / "kim" / "a" / "kim_a.ipynb").exists(), "the executed copy is kept for the instructor"
    again = grading.grade_one("kim", "a", submission, source_path, folder, LIMITS, isolation=None)
    assert again == result and len(ran) == 1, "an unchanged submission is not run again"
    grading.grade_one("kim", "a", submission, source_path, folder, Limits(cell_seconds=6), isolation=None)
    assert len(ran) == 2, "other limits: graded again"


def test_an_unreadable_submission_is_an_error_and_never_executed(course):
    folder, source_path, ran = course
    result = grading.grade_one("kim", "a", _submit(folder, "{cut short"), source_path, folder, LIMITS)
    assert not ran and result.status.startswith("error: not a readable notebook"), result.status
    assert (result.score, result.max_score, result.tests) == (0.0, 5.0, [])
