"""Reading an executed notebook back (:func:`autograder.execute.read_executed`): defensively, since
a kernel ran student code while it was written. No kernel here: the files are written by hand."""

from __future__ import annotations

import nbformat

from autograder.execute import read_executed
from autograder.limits import Limits


def _sent():
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("# t")])


def test_the_cells_that_were_sent_come_back_with_the_workers_problem(tmp_path):
    executed = _sent()
    executed.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    executed.metadata["autograder_problem"] = "the kernel died (memory limit 1 MiB, or the code ended the process)"
    nbformat.write(executed, tmp_path / "out.ipynb")
    notebook, problem = read_executed(tmp_path / "out.ipynb", _sent(), Limits())
    assert problem.startswith("the kernel died") and "autograder_problem" not in notebook.metadata
    assert notebook.cells[0].outputs[0].text == "1\n"


def test_other_cells_or_no_notebook_at_all_are_refused(tmp_path):
    changed = _sent()
    changed.cells[0].source = "x = 2"
    nbformat.write(changed, tmp_path / "changed.ipynb")
    assert read_executed(tmp_path / "changed.ipynb", _sent(), Limits()) == (
        None, "the executed notebook does not hold the cells that were sent")
    (tmp_path / "junk.ipynb").write_text("{not json", encoding="utf-8")
    notebook, problem = read_executed(tmp_path / "junk.ipynb", _sent(), Limits())
    assert notebook is None and problem.startswith("the executed notebook could not be read"), problem
