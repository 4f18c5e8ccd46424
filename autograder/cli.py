"""``python -m autograder VERB``: parse the arguments, hand off to the verb's function, report.

Verbs, in the order a course uses them: release, collect, grade, feedback, export; and similarity
(alike answers) and gradescope (an autograder archive for Gradescope).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.collect import collect
from autograder.course import AutograderError
from autograder.limits import Limits
from autograder.export import FORMATS, export, fill_canvas_gradebook
from autograder.feedback import feedback
from autograder.grade import grade, summarize
from autograder.release import release
from autograder.sandbox import SandboxUnavailable


def _release(args: argparse.Namespace) -> None:
    for notebook in release(args.assignments):
        print(f"released {notebook}")


def _collect(args: argparse.Namespace) -> None:
    report = collect(args.assignment, args.sources, args.course_dir, id_pattern=args.id_pattern)
    for student, path in report.collected.items():
        print(f"collected {student}: {path}")
    for student, path in report.older:
        print(f"kept older submission of {student}: {path}")
    for origin, reason in report.skipped:
        print(f"skipped {origin}: {reason}")
    print(f"{len(report.collected)} students collected, {len(report.older)} older versions kept, "
          f"{len(report.skipped)} files skipped (see {args.course_dir / 'collected' / (args.assignment + '.csv')})")


def _grade(args: argparse.Namespace) -> None:
    limits = Limits(cell_seconds=args.timeout, submission_seconds=args.submission_timeout,
                    memory_mb=args.memory_mb, output_bytes=args.output_bytes, processes=args.processes,
                    file_mb=args.file_mb)
    path = grade(args.assignment, args.course_dir, submissions=args.submissions, jobs=args.jobs,
                 limits=limits, force=args.force, progress=True, sandboxed=not args.no_sandbox)
    print(summarize(path))
    print(f"grades written to {path}")


def _feedback(args: argparse.Namespace) -> None:
    pages = feedback(args.assignment, args.course_dir)
    print(f"{len(pages)} feedback pages written under {args.course_dir / 'feedback'}")


def _export(args: argparse.Namespace) -> None:
    if args.roster is not None:
        if args.format != "canvas":
            raise ValueError("--roster is a Canvas gradebook: use it with --format canvas")
        report = fill_canvas_gradebook(args.course_dir, args.roster, args.output, args.assignment, args.column)
        for line in report.lines():
            print(line, file=sys.stderr)
        if report.output:
            print(f"exported to {report.output}: import it in Canvas (Grades, Import)", file=sys.stderr)
        return
    path = export(args.course_dir, args.output, args.format)
    if path:
        print(f"exported to {path}", file=sys.stderr)


def _similarity(args: argparse.Namespace) -> None:
    from autograder.similarity import similarity

    report = similarity(args.assignment, args.course_dir, threshold=args.threshold, noise=args.noise)
    for line in report.lines():
        print(line)


def _gradescope(args: argparse.Namespace) -> None:
    from autograder.gradescope import build

    limits = Limits(cell_seconds=args.timeout, submission_seconds=args.submission_timeout, memory_mb=args.memory_mb)
    path = build(args.assignment, args.output, limits=limits, allow_unsandboxed=args.allow_unsandboxed)
    print(f"wrote {path}: upload it in Gradescope (the assignment's Configure Autograder, Zip file). It holds the "
          f"solution notebook with the hidden tests: keep it private.")


def _time_and_memory_arguments(p: argparse.ArgumentParser, memory: str) -> None:
    """The limits ``grade`` and ``gradescope`` share, with :class:`~autograder.limits.Limits`'s defaults."""
    default = Limits()
    p.add_argument("--timeout", type=int, default=default.cell_seconds,
                   help=f"seconds one cell may run (default {default.cell_seconds})")
    p.add_argument("--submission-timeout", type=int, default=default.submission_seconds,
                   help=f"seconds one notebook may run (default {default.submission_seconds})")
    p.add_argument("--memory-mb", type=int, default=default.memory_mb, help=f"{memory} (default {default.memory_mb})")


def _verb(verbs, name: str, run, help: str, description: str, assignment: bool = True,
          course_dir: bool = True) -> argparse.ArgumentParser:
    """One verb's parser, handing off to ``run``; most verbs name an assignment and a course directory."""
    p = verbs.add_parser(name, help=help, description=description)
    if assignment:
        p.add_argument("assignment")
    if course_dir:
        p.add_argument("--course-dir", type=Path, required=True)
    p.set_defaults(run=run)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = _verb(verbs, "release", _release, "regenerate exercises/ from solutions/",
              "Regenerate the student notebooks in exercises/ from solutions/ (nbgrader generate_assignment). "
              "Deterministic: running it twice changes nothing.", assignment=False, course_dir=False)
    p.add_argument("assignments", nargs="*", help="assignments to release (default: all)")

    p = _verb(verbs, "collect", _collect, "copy submitted notebooks into a course directory",
              "Copy submitted notebooks (.ipynb files, folders, .zip archives) into "
              "COURSE_DIR/submitted/STUDENT/ASSIGNMENT/. The student id is the file name up to the first "
              "underscore, or the per-student folder name; 'Copy of' prefixes and resubmission suffixes (-1, -2) "
              "are ignored and the newest submission wins. Originals are never changed.")
    p.add_argument("sources", nargs="+", type=Path, help=".ipynb files, folders or .zip archives")
    p.add_argument("--id-pattern", help="regular expression finding the student id in 'folder/filename' "
                                        "(group 'id', or the first group)")

    p = _verb(verbs, "grade", _grade, "autograde collected submissions and write a grades CSV",
              "Autograde every submission in COURSE_DIR/submitted/*/ASSIGNMENT, each in its own process under "
              "time, memory and output limits, and write COURSE_DIR/grades/ASSIGNMENT.csv. Unchanged submissions "
              "are not regraded.")
    p.add_argument("--submissions", type=Path, nargs="*", help="collect these files, folders or archives first")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1; use the core count)")
    _time_and_memory_arguments(p, memory="memory limit per submission in MiB")
    p.add_argument("--output-bytes", type=int, default=1_000_000, help="output limit per submission (default 1 MB)")
    p.add_argument("--force", action="store_true", help="regrade submissions whose results are up to date")
    p.add_argument("--processes", type=int, default=256, help="processes and threads per submission (default 256)")
    p.add_argument("--file-mb", type=int, default=256, help="largest file a submission may write, MiB (default 256)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade WITHOUT the operating-system sandbox (only for trusted code, or where bubblewrap "
                        "cannot run); every row and the summary then say so")

    _verb(verbs, "feedback", _feedback, "write one HTML feedback page per student",
          "Write COURSE_DIR/feedback/STUDENT/ASSIGNMENT.html from the grading results: each test's points and "
          "failure message, never the tests' source.")

    p = _verb(verbs, "export", _export, "export every result as one CSV",
              "One row per student and assignment: student_id, assignment, score, max_score, status (graded, "
              "flagged: <reason>, error: <reason>). With --format canvas --roster GRADEBOOK.csv (the gradebook "
              "exported from Canvas): that file with one assignment's column filled in, for Canvas's Grades, "
              "Import.", assignment=False)
    p.add_argument("--output", type=Path, help="file to write (default: standard output)")
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("--roster", type=Path, help="the gradebook CSV exported from Canvas: written back with one "
                                               "assignment's column filled in (with --format canvas)")
    p.add_argument("--assignment", help="with --roster: the assignment to fill in (default: the only one graded)")
    p.add_argument("--column", help="with --roster: the gradebook column to fill (default: the one named like the "
                                    "assignment)")

    p = _verb(verbs, "similarity", _similarity, "find students whose answers are suspiciously alike",
              "Compare the students' own code (answers and added cells; stubs and provided code left out) "
              "pairwise and with the solution, insensitive to renamed variables, comments, layout and reordered "
              "helpers (copydetect fingerprints). Writes COURSE_DIR/similarity/ASSIGNMENT.html (answers side by "
              "side) and .csv.")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="similarity (0 to 1) from which a pair or a student is reported (default 0.5)")
    p.add_argument("--noise", type=int, default=25,
                   help="shortest shared run of normalised code that counts, in characters (default 25)")

    p = _verb(verbs, "gradescope", _gradescope, "write a Gradescope autograder archive for an assignment",
              "Write a Gradescope autograder archive (setup.sh, run_autograder, the course package, the source "
              "notebook): Gradescope grades each submission with the same pipeline and sandbox as grade and shows "
              "one test per graded cell (cells with hidden tests after the grades are published).", course_dir=False)
    p.add_argument("--output", type=Path, default=Path("autograder.zip"), help="archive to write (default autograder.zip)")
    _time_and_memory_arguments(p, memory="memory limit in MiB")
    p.add_argument("--allow-unsandboxed", action="store_true",
                   help="where bubblewrap cannot run in Gradescope's container, grade anyway without it (the "
                        "container is then the only isolation); by default such a submission is not graded")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (AutograderError, SandboxUnavailable, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
