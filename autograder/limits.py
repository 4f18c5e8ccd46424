"""The limits a submission runs under, and every way of telling that it ran into one.

:class:`Limits` is what the instructor sets (``grade --timeout --memory-mb ...``). Limits are
enforced in three places: the execution worker's wall clock and address-space limit, nbclient's
cell timeout (:mod:`autograder.execute`) and the sandbox's process and file-size limits
(:mod:`autograder.sandbox`). What a limit does to a run is read back here only:
:func:`limits_hit` reads the executed notebook, and the ``*_message`` functions word what the
execution worker saw itself, so that every limit's status text is written in this one module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nbformat import NotebookNode


@dataclass(frozen=True)
class Limits:
    cell_seconds: int = 120  # one cell
    submission_seconds: int = 600  # the whole notebook, kernel start included
    memory_mb: int = 4096  # address space of the kernel
    output_bytes: int = 1_000_000  # all outputs of the notebook together
    processes: int = 256  # processes and threads the kernel's user may run (sandbox only)
    file_mb: int = 256  # largest file the kernel may write (sandbox only)


# The exception nbclient records in a cell that ran past the cell limit (the kernel reports
# KeyboardInterrupt when nbclient interrupts it).
CELL_TIMEOUT_ERROR = "CellTimeoutError"
_TIMEOUT_ERRORS = (CELL_TIMEOUT_ERROR, "KeyboardInterrupt")
_MEMORY_ERRORS = ("MemoryError", "can't allocate memory", "not enough memory")


def _outputs(executed: NotebookNode):
    return (o for c in executed.cells for o in c.get("outputs", []))


def output_bytes(executed: NotebookNode) -> int:
    return sum(len(json.dumps(o)) for o in _outputs(executed))


def timed_out(executed: NotebookNode) -> bool:
    return any(o.get("ename") in _TIMEOUT_ERRORS for o in _outputs(executed))


def ran_out_of_memory(executed: NotebookNode) -> bool:
    texts = (f"{o.get('ename', '')} {o.get('evalue', '')}" for o in _outputs(executed))
    return any(error in text for text in texts for error in _MEMORY_ERRORS)


def limits_hit(executed: NotebookNode, limits: Limits) -> list[str]:
    """The limits the executed notebook shows it ran into, worded for the status (time, memory, output)."""
    hit = []
    if timed_out(executed):
        hit.append(f"time limit: a cell ran longer than {limits.cell_seconds} s")
    if ran_out_of_memory(executed):
        hit.append(f"memory limit: the code needed more than {limits.memory_mb} MiB")
    if output_bytes(executed) > limits.output_bytes:
        hit.append(f"output limit: the notebook printed more than {limits.output_bytes} bytes")
    return hit


def notebook_time_message(limits: Limits) -> str:
    """The whole notebook ran past ``submission_seconds`` (the worker was killed)."""
    return f"time limit: the notebook ran longer than {limits.submission_seconds} s"


def executed_size_message(max_bytes: int) -> str:
    """The executed notebook came back too large to read."""
    return f"output limit: the executed notebook is larger than {max_bytes // 2**20} MiB"


def cell_timeout_message(cell_seconds: int) -> str:
    """What a cell stopped at the cell limit shows as its error."""
    return f"the cell ran longer than {cell_seconds} s and was stopped"


def kernel_died_message(memory_mb: int) -> str:
    """The kernel ended mid-notebook: the memory limit, or the student's code ended it."""
    return f"the kernel died (memory limit {memory_mb} MiB, or the code ended the process)"
