"""``python -m autograder VERB``: parse the arguments, hand off to the verb's function, report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.collect import collect
from autograder.course import AutograderError
from autograder.grade import grade
from autograder.release import release


def _release(args: argparse.Namespace) -> None:
    for notebook in release(args.assignments):
        print(f"released {notebook}")


def _collect(args: argparse.Namespace) -> None:
    report = collect(args.assignment, args.sources, args.course_dir)
    for student, path in report.collected.items():
        print(f"collected {student}: {path}")
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)


def _grade(args: argparse.Namespace) -> None:
    path = grade(args.assignment, args.course_dir, submissions=args.submissions, timeout=args.timeout)
    print(f"grades written to {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("release", help="regenerate exercises/ from solutions/",
                         description="Regenerate the student notebooks in exercises/ from solutions/.")
    p.add_argument("assignments", nargs="*", help="assignments to release (default: all)")
    p.set_defaults(run=_release)

    p = verbs.add_parser("collect", help="copy submitted notebooks into a course directory",
                         description="Copy submitted notebooks into COURSE_DIR/submitted/STUDENT/ASSIGNMENT/. "
                                     "The student id is the file name up to the first underscore, or the "
                                     "per-student folder name. Originals are never changed.")
    p.add_argument("assignment")
    p.add_argument("sources", nargs="+", type=Path, help=".ipynb files or folders of them")
    p.add_argument("--course-dir", type=Path, required=True)
    p.set_defaults(run=_collect)

    p = verbs.add_parser("grade", help="autograde collected submissions and write a grades CSV",
                         description="Autograde every submission in COURSE_DIR/submitted/*/ASSIGNMENT and "
                                     "write COURSE_DIR/grades/ASSIGNMENT.csv.")
    p.add_argument("assignment")
    p.add_argument("--course-dir", type=Path, required=True)
    p.add_argument("--submissions", type=Path, nargs="*", help="collect these files or folders first")
    p.add_argument("--timeout", type=int, default=120, help="seconds each cell may run (default 120)")
    p.set_defaults(run=_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except AutograderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
