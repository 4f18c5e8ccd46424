"""On a machine with a CUDA GPU: every chapter and every exercise solution runs on it.

Skipped where there is no GPU (CI's machines have none). To run it on a GPU machine:
``.venv/bin/python -m pytest tests/test_gpu.py`` (after ``make test`` has set up .venv with a
CUDA build of torch, or with ``pip install torch`` from PyPI in that venv).
"""

from __future__ import annotations

import nbformat
import pytest
import torch
from nbclient import NotebookClient

from notebooks import REPO, chapter_notebooks, read, solution_notebooks

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")]

_PROBE = "import torch\nprint('GPU bytes used:', torch.cuda.max_memory_allocated())"


@pytest.mark.parametrize("path", chapter_notebooks() + solution_notebooks(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_notebook_runs_on_the_gpu(path, tmp_path):
    nb = read(path)
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    used = int(nb.cells[-1].outputs[0]["text"].split(":")[1])
    assert used > 0, f"{path.name} ran, but nothing was put on the GPU: does it use get_device()?"
