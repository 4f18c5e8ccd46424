"""``grade``: autograde every collected submission of one assignment, in parallel, and write the grades.

:func:`grade_one` grades one ``COURSE_DIR/submitted/STUDENT/ASSIGNMENT/*.ipynb`` in steps, each
a module of its own:

1. read it (:func:`autograder.notebook.read_notebook`: any nbformat 4.x, CRLF, outputs and Colab
   metadata are fine);
2. find the answers in it and put them into the instructor's source notebook
   (:mod:`autograder.assemble`: test cells, hidden tests and points always come from the source,
   so edited or deleted tests are restored), and scan the student's code (:mod:`autograder.integrity`);
3. add the guard's cells (:mod:`autograder.instrument`, for :mod:`autograder.guard` in the kernel);
4. execute it (:mod:`autograder.execute`) under the :class:`~autograder.limits.Limits`, its kernel
   inside the operating-system sandbox of :mod:`autograder.sandbox`: no network, no view of the
   course directory, the repository or other submissions, and every process it started gone
   when it ends;
5. score each test cell (:mod:`autograder.score`: failure messages scrubbed of hidden-test and
   solution lines), read back the limits hit (:mod:`autograder.limits`) and the guard's report;
6. judge the status from all that happened (:func:`autograder.status.status_of`) and store a
   :class:`~autograder.results.SubmissionResult` as JSON. Only this process writes results, grades
   and feedback, after the sandbox is gone.

Submissions are independent, so ``jobs`` of them run at once; no shared database is written
while they run (nbgrader's SQLite gradebook does not take concurrent writers), and the grades
CSV is written at the end from the stored results (:func:`autograder.results.write_table`). A
result whose submission, source notebook and limits have not changed is reused, so re-running is
idempotent and cheap.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from tqdm import tqdm

from autograder import integrity, sandbox
from autograder.assemble import assemble, find_answers
from autograder.collect import collect
from autograder.course import REPO_ROOT, check_assignment, install_source, notebook_name
from autograder.execute import execute
from autograder.instrument import guard_report, instrument
from autograder.limits import Limits, limits_hit
from autograder.notebook import SubmissionError, max_score, read_notebook
from autograder.results import SubmissionResult, result_path, write_table
from autograder.score import score_tests
from autograder.status import ERROR, FLAGGED, KINDS, Outcome, Status, grader_failure_message, status_of

_PIPELINE_VERSION = "3"  # bump when grading changes, so stored results are not reused


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_key(submission: bytes, source: bytes, limits: Limits, sandboxed: bool) -> str:
    """What a stored result depends on: the submission, the source notebook, the limits, the
    pipeline's version and whether the kernel ran in the sandbox."""
    mode = b"sandbox" if sandboxed else b"no-sandbox"
    return _sha256(b"|".join([submission, source, json.dumps(asdict(limits)).encode(), _PIPELINE_VERSION.encode(),
                              mode]))


def grade_one(
    student: str, assignment: str, submission: Path, source_path: Path, course_dir: Path, limits: Limits,
    force: bool = False, threads: int | None = None, isolation: sandbox.SandboxSettings | None = None,
) -> SubmissionResult:
    """Grade one submission (the steps of the module docstring) and store its result.

    ``threads``: CPU threads its kernel may use (see :func:`autograder.execute.execute`);
    ``isolation``: the sandbox its kernel runs in (None: none, ``--no-sandbox``).
    """
    source_bytes, raw = source_path.read_bytes(), submission.read_bytes()
    key = cache_key(raw, source_bytes, limits, sandboxed=isolation is not None)
    stored = result_path(course_dir, assignment, student)
    if stored.exists() and not force:
        previous = SubmissionResult.load(stored)
        if previous.cache_key == key:
            return previous
    source = nbformat.reads(source_bytes.decode("utf-8"), as_version=4)
    result = SubmissionResult(student, assignment, 0.0, max_score(source), "graded",
                              submission_sha256=_sha256(raw), cache_key=key, sandboxed=isolation is not None)
    outcome = Outcome(sandboxed=result.sandboxed)
    try:
        submitted = read_notebook(raw.decode("utf-8", errors="replace"))
    except SubmissionError as error:
        outcome.unreadable = str(error)
    else:
        executed = _run(submitted, source, limits, threads, isolation, result, outcome)
        if executed is not None:
            copy = course_dir / "autograded" / student / assignment / submission.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(executed, copy)  # for the instructor only: never part of feedback
    result.status = status_of(outcome).text()
    result.save(stored)
    return result


def _run(submitted: NotebookNode, source: NotebookNode, limits: Limits, threads: int | None,
         isolation: sandbox.SandboxSettings | None, result: SubmissionResult, outcome: Outcome) -> NotebookNode | None:
    """Steps 2 to 5 on a readable submission: fill in ``result`` and ``outcome``; return the executed notebook."""
    answers = find_answers(submitted, source)
    outcome.findings, outcome.answered = integrity.review(answers), bool(answers.by_id)
    if answers.matched_by_name:
        result.notes.append("nbgrader metadata missing; answers matched by name: " + ", ".join(answers.matched_by_name))
    run = execute(instrument(assemble(source, answers), source), limits, threads=threads, sandbox=isolation)
    result.seconds, outcome.problem = round(run.seconds, 2), run.problem
    if run.notebook is None:
        return None
    result.tests = score_tests(run.notebook, source)
    result.score = sum(t.points for t in result.tests)
    guard = guard_report(run.notebook)
    outcome.executed, outcome.limits_hit = True, limits_hit(run.notebook, limits)
    outcome.guard_install_failed, outcome.guard_check_failed = guard.install_failed, guard.check_failed
    outcome.tampered = guard.tampered
    return run.notebook


def submissions_of(course_dir: Path, assignment: str) -> dict[str, Path]:
    """student id -> the notebook to grade, from ``submitted/STUDENT/ASSIGNMENT/``."""
    found = {}
    for folder in sorted((course_dir / "submitted").glob(f"*/{assignment}")):
        notebooks = sorted(p for p in folder.glob("*.ipynb"))
        if notebooks:
            found[folder.parent.name] = notebooks[0]
    return found


def grade(
    assignment: str,
    course_dir: Path,
    submissions: list[Path] | None = None,
    jobs: int = 1,
    limits: Limits | None = None,
    force: bool = False,
    repo: Path = REPO_ROOT,
    progress: bool = False,
    sandboxed: bool = True,
) -> Path:
    """Grade every collected submission of ``assignment``; return the path of the grades CSV.

    Args:
        assignment: assignment name (a folder of ``solutions/``).
        course_dir: the instructor's course directory (created if missing).
        submissions: optional files, folders or zip archives to :func:`~autograder.collect.collect` first.
        jobs: submissions graded at once.
        limits: time, memory and output limits (default: :class:`~autograder.limits.Limits`'s defaults).
        force: regrade even submissions whose stored result is up to date.
        repo: repository root holding ``solutions/``.
        progress: show a progress bar on stderr (the command line does; a class takes minutes).
        sandboxed: run every kernel in the operating-system sandbox (:mod:`autograder.sandbox`);
            when it cannot run here, :class:`~autograder.sandbox.SandboxUnavailable` says why and
            how to fix it. False (``--no-sandbox``) grades without isolation, and says so in every row.
    """
    check_assignment(assignment, repo)
    course_dir = Path(course_dir).resolve()
    course_dir.mkdir(parents=True, exist_ok=True)
    limits = limits or Limits()
    source_path = install_source(assignment, course_dir, repo) / notebook_name(assignment, repo)
    if submissions:
        collect(assignment, submissions, course_dir, repo=repo)
    work = submissions_of(course_dir, assignment)
    jobs = max(1, jobs)
    # Parallel kernels share the cores: more threads than cores makes every one of them slower.
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    isolation = None
    if sandboxed:
        isolation = sandbox.settings_for(course_dir, repo, source_path.parent, limits, threads)
        sandbox.check(isolation)
    results = []
    with ThreadPoolExecutor(max_workers=jobs) as pool, tqdm(
        total=len(work), desc=f"grading {assignment}", unit="submission", disable=not (progress and work), file=sys.stderr
    ) as bar:
        futures = [pool.submit(_grade_or_report, student, assignment, path, source_path, course_dir, limits, force,
                               threads, isolation) for student, path in work.items()]
        for future in as_completed(futures):
            results.append(future.result())
            bar.update()
    return write_grades(course_dir, assignment, results)


def _grade_or_report(
    student: str, assignment: str, submission: Path, source_path: Path, course_dir: Path, limits: Limits,
    force: bool, threads: int | None, isolation: sandbox.SandboxSettings | None = None,
) -> SubmissionResult:
    """:func:`grade_one`, tried twice (a fault of the grader's may be transient), after which a failure
    of the grader itself becomes this submission's status instead of stopping the class. That result
    is stored without a cache key, so the next ``grade`` tries this submission again."""
    error: Exception | None = None
    for _ in range(2):
        try:
            return grade_one(student, assignment, submission, source_path, course_dir, limits, force, threads, isolation)
        except Exception as failure:  # noqa: BLE001 - reported in the grades, the batch goes on
            error = failure
    total = max_score(nbformat.read(source_path, as_version=4))
    outcome = Outcome(sandboxed=isolation is not None, grader_failure=grader_failure_message(error))
    result = SubmissionResult(student, assignment, 0.0, total, status_of(outcome).text(), sandboxed=outcome.sandboxed)
    result.save(result_path(course_dir, assignment, student))
    return result


def summarize(grades_csv: Path) -> str:
    """One line for the instructor: how many submissions got each kind of status, and the mean score."""
    with Path(grades_csv).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return "no submissions to grade: run collect first"
    statuses = [Status.parse(row["status"]) for row in rows]
    kinds = Counter(status.kind for status in statuses)
    mean = sum(float(row["score"]) for row in rows) / len(rows)
    counts = ", ".join(f"{kinds[k]} {k}" for k in KINDS if kinds[k])
    review = " (review the flagged and error rows before publishing)" if kinds[FLAGGED] or kinds[ERROR] else ""
    unisolated = sum(not status.sandboxed for status in statuses)
    warning = (f"; {unisolated} graded WITHOUT the sandbox (--no-sandbox): their code could reach this machine"
               if unisolated else "")
    return (f"{len(rows)} submission{'s' if len(rows) != 1 else ''}: {counts}; mean score {mean:.1f} of "
            f"{float(rows[0]['max_score']):g}{review}{warning}")


def write_grades(course_dir: Path, assignment: str, results: list[SubmissionResult]) -> Path:
    """``COURSE_DIR/grades/ASSIGNMENT.csv``: :func:`~autograder.results.write_table`, points as stored (``15.0``)."""
    path = course_dir / "grades" / f"{assignment}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        write_table(handle, results)
    return path
