"""Reading the limits a run hit (:mod:`autograder.limits`) from executed notebooks built by hand."""

from __future__ import annotations

import nbformat
import pytest

from autograder.limits import CELL_TIMEOUT_ERROR, Limits, limits_hit

LIMITS = Limits(cell_seconds=7, memory_mb=99, output_bytes=500)


def _executed(*outputs):
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = list(outputs)
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("y"), cell])


def _error(ename, evalue=""):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])


@pytest.mark.parametrize("outputs,expected", [
    ((), []),
    ((_error("AssertionError", "wrong"),), []),
    ((_error(CELL_TIMEOUT_ERROR),), ["time limit: a cell ran longer than 7 s"]),
    ((_error("KeyboardInterrupt"),), ["time limit: a cell ran longer than 7 s"]),
    ((_error("MemoryError"),), ["memory limit: the code needed more than 99 MiB"]),
    ((_error("RuntimeError", "[enforce fail] DefaultCPUAllocator: can't allocate memory"),),
     ["memory limit: the code needed more than 99 MiB"]),
    ((nbformat.v4.new_output("stream", name="stdout", text="x" * 600),),
     ["output limit: the notebook printed more than 500 bytes"]),
    ((_error(CELL_TIMEOUT_ERROR), _error("MemoryError"), nbformat.v4.new_output("stream", name="stdout", text="x" * 600)),
     ["time limit: a cell ran longer than 7 s", "memory limit: the code needed more than 99 MiB",
      "output limit: the notebook printed more than 500 bytes"]),
])
def test_limits_hit_names_each_limit_once_in_a_fixed_order(outputs, expected):
    assert limits_hit(_executed(*outputs), LIMITS) == expected
