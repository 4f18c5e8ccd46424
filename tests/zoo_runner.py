"""Score many answers to one assignment in a single kernel: the bug zoo's fast path.

Grading one submission for real (:func:`autograder.grade`) starts a worker and a kernel,
imports torch and runs the notebook: about 8 s, most of it the same for every submission.
A chapter's zoo has 20 to 40 answers that differ only in their solution cells, so this runner
starts one kernel, runs the notebook's preamble (setup and imports) once, and then for each
answer puts the kernel's namespace and random state back to what they were after the preamble
and runs the cells the grader would run from there on: the same notebook that
:func:`autograder.assemble.assemble` builds for a real submission, scored by the grader's own
:func:`autograder.score.score_tests`.

What it leaves out is the grader's guard and integrity scan, which no zoo answer touches (they
have tests of their own in ``test_autograder.py``). That the two paths agree is itself tested:
the reference answers and the untouched notebook must score the same test by test here as
through the real grader.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from autograder import assemble, notebook
from autograder.results import TestResult
from autograder.score import score_tests

_SNAPSHOT = """
import random as _zoo_random
import numpy as _zoo_numpy
import torch as _zoo_torch
__zoo_state__ = (dict(globals()), _zoo_torch.get_rng_state(), _zoo_random.getstate(), _zoo_numpy.random.get_state())
"""
_RESTORE = """
_zoo_ns, _zoo_rng = __zoo_state__[0], __zoo_state__[1:]
for _zoo_name in [name for name in globals() if name not in _zoo_ns and not name.startswith(("_zoo_", "__zoo_"))]:
    del globals()[_zoo_name]
globals().update(_zoo_ns)
_zoo_torch.set_rng_state(_zoo_rng[0]); _zoo_random.setstate(_zoo_rng[1]); _zoo_numpy.random.set_state(_zoo_rng[2])
"""


class ZooKernel:
    """One kernel that scores answers to ``source`` (the instructor's notebook) one after another.

    ``skip_for_mistakes``: grade_ids of test cells left out when ``expect_full_marks`` is False
    (slow cells: a mistake only has to lose points somewhere, and skipping a test can only raise
    its score, so a mistake that loses points without them loses points with them).
    """

    def __init__(self, source: nbformat.NotebookNode, workdir: Path, cell_seconds: int = 120,
                 skip_for_mistakes: frozenset[str] = frozenset()):
        self.source = source
        self.skip_for_mistakes = skip_for_mistakes
        first_answer = next(i for i, c in enumerate(source.cells) if notebook.nbgrader_meta(c).get("solution"))
        self.preamble = [c for c in source.cells[:first_answer] if c.cell_type == "code"]
        self.workdir = workdir
        self.client = NotebookClient(
            nbformat.v4.new_notebook(), timeout=cell_seconds, kernel_name="python3", allow_errors=True,
            interrupt_on_timeout=True, resources={"metadata": {"path": str(workdir)}},
        )
        self._kernel = None

    def __enter__(self) -> ZooKernel:
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "AUTOGRADER_EXECUTION": "1", "NBGRADER_EXECUTION": "autograde"}
        self._kernel = self.client.setup_kernel(env=env, cwd=str(self.workdir))
        self._kernel.__enter__()
        for cell in self.preamble:
            ran = self._run(cell)
            errors = [o for o in ran.outputs if o.output_type == "error"]
            assert not errors, f"the notebook's preamble failed: {errors[0].ename}: {errors[0].evalue}"
        self._run(nbformat.v4.new_code_cell(_SNAPSHOT))

    def _stop(self) -> None:
        if self._kernel is not None:
            self._kernel.__exit__(None, None, None)
            self._kernel = None

    def _run(self, cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
        cell = nbformat.from_dict(dict(cell))
        cell.outputs, cell.execution_count = [], None
        self.client.nb.cells = [cell]
        self.client.execute_cell(cell, 0)
        return cell

    def score(self, submission: nbformat.NotebookNode, expect_full_marks: bool = True,
              stop_at_first_loss: bool = False) -> list[TestResult]:
        """Score one submitted notebook as the grader would, test cell by test cell.

        ``stop_at_first_loss``: stop after the first test cell that fails (for a mistake, which
        only has to lose points somewhere: the cells not run score nothing, which can only lower
        a score that is already below full marks).
        """
        answers = assemble.find_answers(submission, self.source)
        graded = assemble.assemble(self.source, answers)
        body_start = next(i for i, c in enumerate(graded.cells)
                          if notebook.nbgrader_meta(c).get("solution")
                          or c.get("metadata", {}).get("autograder", {}).get("role") == "student-extra")
        restored = self._run(nbformat.v4.new_code_cell(_RESTORE))
        errors = [o for o in restored.outputs if o.output_type == "error"]
        assert not errors, f"could not restore the kernel after the preamble: {errors[0].ename}: {errors[0].evalue}"
        executed = []
        for cell in graded.cells[body_start:]:
            skip = not expect_full_marks and notebook.nbgrader_meta(cell).get("grade_id") in self.skip_for_mistakes
            if cell.cell_type != "code" or skip:
                continue
            try:
                executed.append(self._run(cell))
            except DeadKernelError:  # the answer killed the kernel: what did not run scores nothing
                self._stop()
                self._start()
                break
            lost = any(o.output_type == "error" for o in executed[-1].outputs)
            if stop_at_first_loss and lost and float(notebook.nbgrader_meta(cell).get("points", 0) or 0) > 0:
                break
        return score_tests(nbformat.v4.new_notebook(cells=executed), self.source)

    def cpu_seconds(self) -> float:
        """CPU time the kernel has used so far (to find slow answers on a busy machine)."""
        cell = self._run(nbformat.v4.new_code_cell("import time as _zoo_time; print(_zoo_time.process_time())"))
        return float(cell.outputs[0]["text"])
