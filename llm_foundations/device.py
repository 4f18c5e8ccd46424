"""Choosing the device every notebook runs on: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device, or the one asked for.

    Notebooks call this once and move their models and tensors there, so the same notebook
    runs on a Colab GPU and on a laptop CPU without edits.

    Args:
        prefer: ``"cuda"``, ``"mps"`` or ``"cpu"`` to ask for one device. ``None`` picks CUDA when
            available, then MPS, then the CPU.

    Returns:
        The chosen :class:`torch.device`.

    Raises:
        ValueError: ``prefer`` names an unknown device or one that is not available here.
    """
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": _mps_available(),
        "cpu": True,
    }
    if prefer is None:
        for name in ("cuda", "mps", "cpu"):
            if available[name]:
                return torch.device(name)
    if prefer not in available:
        raise ValueError(f"unknown device {prefer!r}; choose one of {sorted(available)}")
    if not available[prefer]:
        raise ValueError(f"device {prefer!r} is not available on this machine")
    return torch.device(prefer)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
