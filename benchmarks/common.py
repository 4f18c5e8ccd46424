"""What every benchmark here shares: the device and thread flags, a machine line, side-by-side timing.

Timings on a shared machine are noisy, so :func:`time_side_by_side` runs the candidates in
turn, round after round, and keeps each one's best round: another process slowing the machine
down for a while slows every candidate alike, and the best round is the one least disturbed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

try:
    import llm_foundations  # noqa: F401
except ImportError:  # run from a checkout where the course is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_foundations import get_device  # noqa: E402
from llm_foundations.timing import synchronize, time_calls  # noqa: E402,F401 - the benchmarks import synchronize from here


def add_common_arguments(parser: argparse.ArgumentParser, quick_help: str) -> None:
    """``--device``, ``--threads``, ``--quick`` and ``--clock``, the flags every benchmark takes."""
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: get_device(), the GPU when there is one)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for PyTorch (default: PyTorch's own choice, one per core)")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall: elapsed time (default); cpu: this process's CPU time, steadier on a busy "
                             "machine with --threads 1 (CPU only: it does not see GPU work)")


def setup(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads``, print the machine line and return the device of ``--device``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else get_device()
    print(machine(device))
    threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    if device.type == "cpu" and threads > 1 and hasattr(os, "getloadavg") and os.getloadavg()[0] > cores - threads + 0.5:
        # PyTorch's threads wait for each other after every operation; when another process holds a
        # core, they wait for the scheduler instead, and a step can take ten times longer.
        print(f"warning: other work is running (load {os.getloadavg()[0]:.1f} on {cores} cores) and PyTorch uses "
              f"{threads} threads: timings will suffer; --threads 1 --clock cpu is steadier")
    return device


def machine(device: torch.device) -> str:
    """One line naming the hardware, the software and how busy the machine was."""
    cpu = _cpu_name() or platform.processor() or platform.machine()
    line = f"machine: {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} PyTorch threads"
    if hasattr(os, "getloadavg"):
        line += f", load {os.getloadavg()[0]:.1f}"
    if device.type == "cuda":
        line += f"; GPU: {torch.cuda.get_device_name(device)}"
    return line + f"; Python {platform.python_version()}, PyTorch {torch.__version__}; device {device}"


def _cpu_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def clock(args: argparse.Namespace) -> Callable[[], float]:
    """The clock ``--clock`` names: ``time.perf_counter`` or ``time.process_time``."""
    return time.process_time if args.clock == "cpu" else time.perf_counter


#: The course's one timer (best of interleaved rounds; waits for the GPU): see llm_foundations.timing.
time_side_by_side = time_calls


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
