"""One way to time code, for the chapters, the checks and the benchmarks.

A call is timed as the best of several rounds, each round calling it often enough to last a
little while, with the candidates interleaved round by round: the minimum is the estimate least
disturbed by whatever else the machine is doing, and interleaving spreads any slow spell over
all the candidates instead of one. Queued GPU work is waited for before the clock is read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import torch


def synchronize(device: torch.device | str | None) -> None:
    """Wait for ``device``'s queued work, so that a clock read afterwards includes it (CPU: nothing to wait for)."""
    device = torch.device(device) if device is not None else None
    if device is None or device.type == "cpu":
        return
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_calls(
    candidates: Mapping[str, Callable[[], object]], device: torch.device | str | None = None, rounds: int = 5,
    min_seconds: float = 0.05, timer: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Seconds per call of each candidate: the best of ``rounds`` interleaved rounds.

    Args:
        candidates: name -> a function of no arguments to time.
        device: where their work runs (``None`` or the CPU: no synchronisation).
        rounds: how many times each candidate is measured; the fastest round counts.
        min_seconds: about how long one round of one candidate lasts (the number of calls per
            round is fixed once, from a first timed call after a warm-up call).
        timer: the clock, e.g. ``time.perf_counter`` (wall) or ``time.process_time`` (CPU).
    """
    counts = {}
    for name, fn in candidates.items():
        fn()  # warm-up: allocations, kernel selection, lazy initialisation
        synchronize(device)
        started = timer()
        fn()
        synchronize(device)
        counts[name] = max(1, int(min_seconds / max(timer() - started, 1e-9)))
    best = {name: float("inf") for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            synchronize(device)
            started = timer()
            for _ in range(counts[name]):
                fn()
            synchronize(device)
            best[name] = min(best[name], (timer() - started) / counts[name])
    return best


def time_ms(fn: Callable[[], object], device: torch.device | str | None = None, rounds: int = 5,
            min_seconds: float = 0.05) -> float:
    """Milliseconds per call of ``fn()`` (see :func:`time_calls`)."""
    return time_calls({"fn": fn}, device, rounds, min_seconds)["fn"] * 1e3
