"""One call that makes a notebook or a test reproducible."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int = 0) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's (CPU and every GPU) random number generators.

    Args:
        seed: the seed; the course uses 0 unless a cell says otherwise.

    Returns:
        A CPU :class:`torch.Generator` seeded with ``seed``, for code that takes a ``generator``
        argument and should not disturb the global stream.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)
