"""Grading throughput: N generated submissions graded with --jobs 1 and --jobs 2, each with and
without the sandbox, side by side; the sandbox's cost; and the grader's overhead per submission
against executing the same notebook with nbclient.

    .venv/bin/python benchmarks/grading.py [--students 100] [--assignment 04_self_attention]

Prints a small table; not a test (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))  # before tests/, whose autograder/ folder holds tests, not the package

from autograder import grade  # noqa: E402
from common import verdict  # noqa: E402
from autograder.assemble import assemble, find_answers  # noqa: E402
from submissions import Answer, build_submission  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--assignment", default="04_self_attention")
    args = parser.parse_args()
    nb = build_submission(args.assignment, Answer("reference", ""))
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()
        for i in range(args.students):
            nbformat.write(nb, inbox / f"student{i:03d}_{args.assignment}.ipynb")

        # the same graded notebook, executed directly: the floor any grader pays
        source = nbformat.read(next((ROOT / "solutions" / args.assignment).glob("*.ipynb")), as_version=4)
        direct = assemble(source, find_answers(nb, source))
        runs = 3
        started = time.perf_counter()
        for _ in range(runs):
            nbclient.NotebookClient(nbformat.from_dict(direct), timeout=120, kernel_name="python3").execute()
        direct_s = (time.perf_counter() - started) / runs

        timings = {}
        for jobs in (1, 2):
            for sandboxed in (False, True):  # side by side, so that both see the same machine
                course = Path(tmp) / f"course{jobs}{sandboxed}"
                started = time.perf_counter()
                grade(args.assignment, course, submissions=[inbox], jobs=jobs, force=True, sandboxed=sandboxed)
                timings[jobs, sandboxed] = time.perf_counter() - started

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{args.students} submissions of {args.assignment}")
    for jobs in (1, 2):
        plain, boxed = timings[jobs, False], timings[jobs, True]
        cost = boxed / plain - 1
        print(f"  --jobs {jobs}: {boxed:7.1f} s sandboxed, {plain:7.1f} s with --no-sandbox: the sandbox costs "
              f"{100 * cost:+.1f}%  {verdict(cost <= 0.10)} (target <= 10%)")
    speedup = timings[1, True] / timings[2, True]
    per_submission = timings[1, True] / args.students
    overhead = per_submission / direct_s - 1
    print(f"  --jobs 2 (sandboxed): speed-up {speedup:.2f}x over --jobs 1  {verdict(speedup >= 1.7)} (target >= 1.7x)")
    print(f"  nbclient alone: {direct_s:.2f} s per notebook; sandboxed grader {per_submission:.2f} s, overhead "
          f"{100 * overhead:.0f}%  {verdict(overhead <= 0.25)} (target <= 25%)")


if __name__ == "__main__":
    main()
