"""``grade``: autograde every collected submission of one assignment, in parallel, and write the grades.

For each ``COURSE_DIR/submitted/STUDENT/ASSIGNMENT/*.ipynb`` the pipeline is:

1. read it (any nbformat 4.x, CRLF, outputs and Colab metadata are fine);
2. find the answers in it and put them into the instructor's source notebook (test cells,
   hidden tests and points always come from the source: edited or deleted tests are restored);
3. add the guard cells (:mod:`autograder.guard`) and scan the student's code
   (:mod:`autograder.integrity`);
4. execute it under time, memory, output, process and file-size limits (:mod:`autograder.execute`),
   its kernel inside the operating-system sandbox of :mod:`autograder.sandbox`: no network, no
   view of the course directory, the repository or other submissions, and every process it
   started gone when it ends;
5. score each test cell (failure messages scrubbed of hidden-test and solution lines) and store a
   :class:`~autograder.results.SubmissionResult` as JSON. Only this process writes results, grades
   and feedback, after the sandbox is gone.

Submissions are independent, so ``jobs`` of them run at once; no shared database is written
while they run (nbgrader's SQLite gradebook does not take concurrent writers), and the grades
CSV is written at the end from the stored results. A result whose submission, source notebook
and limits have not changed is reused, so re-running is idempotent and cheap.
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

from autograder import assemble, guard, integrity, sandbox
from autograder.collect import collect
from autograder.course import REPO_ROOT, check_assignment, install_source, notebook_name
from autograder.execute import Limits, execute
from autograder.results import (
    SubmissionResult,
    guard_failures,
    max_score,
    output_bytes,
    ran_out_of_memory,
    result_path,
    score_tests,
    tamper_reports,
    timed_out,
)

GRADES_COLUMNS = ["student_id", "assignment", "score", "max_score", "status"]
_PIPELINE_VERSION = "3"  # bump when grading changes, so stored results are not reused


def instrument(nb: NotebookNode, source: NotebookNode) -> NotebookNode:
    """Add the guard: install before the first student cell, a check before every test cell."""
    locked_names: list[str] = []
    cells: list[NotebookNode] = []
    installed = False
    for cell in nb.cells:
        meta = assemble.nbgrader_meta(cell)
        is_student = meta.get("solution") or cell.get("metadata", {}).get("autograder", {}).get("role") == "student-extra"
        if cell.cell_type == "code" and is_student and not installed:
            code = f"{guard.INSTALL_CELL}\n{guard.remember_cell(sorted(set(locked_names)))}"
            cells.append(nbformat.v4.new_code_cell(code, metadata={"autograder": {"role": "guard"}}))
            installed = True
        if cell.cell_type == "code" and meta.get("grade"):
            cells.append(nbformat.v4.new_code_cell(guard.CHECK_CELL, metadata={"autograder": {"role": "guard"}}))
        if cell.cell_type == "code" and not is_student and not meta.get("grade") and not installed:
            locked_names += assemble.imported_names(cell.source)
        cells.append(cell)
    out = nbformat.v4.new_notebook(cells=cells, metadata=source.metadata)
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def grade_one(
    student: str, assignment: str, submission: Path, source_path: Path, course_dir: Path, limits: Limits,
    force: bool = False, threads: int | None = None, isolation: sandbox.SandboxSettings | None = None,
) -> SubmissionResult:
    """Grade one submission (steps 1-5 of the module docstring) and store its result.

    ``threads``: CPU threads its kernel may use (see :func:`autograder.execute.execute`);
    ``isolation``: the sandbox its kernel runs in (None: none, ``--no-sandbox``).
    """
    source_bytes, raw = source_path.read_bytes(), submission.read_bytes()
    mode = b"sandbox" if isolation is not None else b"no-sandbox"
    cache_key = _sha256(b"|".join([raw, source_bytes, json.dumps(asdict(limits)).encode(), _PIPELINE_VERSION.encode(),
                                   mode]))
    stored = result_path(course_dir, assignment, student)
    if stored.exists() and not force:
        previous = SubmissionResult.load(stored)
        if previous.cache_key == cache_key:
            return previous
    source = nbformat.reads(source_bytes.decode("utf-8"), as_version=4)
    result = SubmissionResult(student, assignment, 0.0, max_score(source), "graded",
                              submission_sha256=_sha256(raw), cache_key=cache_key, sandboxed=isolation is not None)
    try:
        submitted = assemble.read_notebook(raw.decode("utf-8", errors="replace"))
    except assemble.SubmissionError as error:
        result.status = with_isolation(f"error: {error}", result.sandboxed)
        result.save(stored)
        return result

    answers = assemble.find_answers(submitted, source)
    graded_names = set(answers.by_id) | set(answers.missing)
    student_code = list(answers.by_id.values()) + [c for cells in answers.extra.values() for c in cells]
    flags = integrity.scan(student_code, graded_names)
    if answers.matched_by_name:
        result.notes.append("nbgrader metadata missing; answers matched by name: " + ", ".join(answers.matched_by_name))
    if not answers.by_id:
        flags.append("no answers found in the notebook (is it the right assignment?)")

    notebook = instrument(assemble.assemble(source, answers), source)
    run = execute(notebook, limits, threads=threads, sandbox=isolation)
    result.seconds = round(run.seconds, 2)
    if run.notebook is not None:
        result.tests = score_tests(run.notebook, source)
        result.score = sum(t.points for t in result.tests)
        install_failed, check_failed = guard_failures(run.notebook)
        if check_failed:
            flags.append("stopped the grader's guard from checking the tests")
        tampered = tamper_reports(run.notebook)
        if tampered:
            flags.append("changed what the checks rely on (restored before the tests): " + "; ".join(tampered)[:300])
        executed_copy = course_dir / "autograded" / student / assignment / submission.name
        executed_copy.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(run.notebook, executed_copy)  # for the instructor only: never part of feedback
    errors = []
    if run.problem:
        errors.append(run.problem)
    if run.notebook is not None and install_failed:
        errors.append("the grader's guard could not be installed in the kernel (a grader fault: report it)")
    if run.notebook is not None and timed_out(run.notebook):
        errors.append(f"time limit: a cell ran longer than {limits.cell_seconds} s")
    if run.notebook is not None and ran_out_of_memory(run.notebook):
        errors.append(f"memory limit: the code needed more than {limits.memory_mb} MiB")
    if run.notebook is not None and output_bytes(run.notebook) > limits.output_bytes:
        errors.append(f"output limit: the notebook printed more than {limits.output_bytes} bytes")
    if errors:
        result.status = "error: " + "; ".join(errors)
    elif flags:
        result.status = "flagged: " + "; ".join(flags)
    result.status = with_isolation(result.status, result.sandboxed)
    result.save(stored)
    return result


NOT_ISOLATED = " (not isolated: graded with --no-sandbox)"


def with_isolation(status: str, sandboxed: bool) -> str:
    """A status says so when the submission ran without the sandbox."""
    return status if sandboxed else status + NOT_ISOLATED


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
    timeout: int = 120,
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
        timeout: seconds one cell may run (ignored when ``limits`` is given).
        jobs: submissions graded at once.
        limits: time, memory and output limits.
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
    limits = limits or Limits(cell_seconds=timeout)
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
    result = SubmissionResult(student, assignment, 0.0, total, with_isolation(
                              f"error: the grader failed on this submission ({type(error).__name__}: "
                              f"{str(error)[:200]}); run grade again, and report it if it persists", isolation is not None),
                              sandboxed=isolation is not None)
    result.save(result_path(course_dir, assignment, student))
    return result


def summarize(grades_csv: Path) -> str:
    """One line for the instructor: how many submissions got each kind of status, and the mean score."""
    with Path(grades_csv).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return "no submissions to grade: run collect first"
    kinds = Counter(row["status"].removesuffix(NOT_ISOLATED).split(":")[0] for row in rows)
    mean = sum(float(row["score"]) for row in rows) / len(rows)
    counts = ", ".join(f"{kinds[k]} {k}" for k in ("graded", "flagged", "error") if kinds[k])
    review = " (review the flagged and error rows before publishing)" if kinds["flagged"] or kinds["error"] else ""
    unisolated = sum(row["status"].endswith(NOT_ISOLATED) for row in rows)
    warning = (f"; {unisolated} graded WITHOUT the sandbox (--no-sandbox): their code could reach this machine"
               if unisolated else "")
    return (f"{len(rows)} submission{'s' if len(rows) != 1 else ''}: {counts}; mean score {mean:.1f} of "
            f"{float(rows[0]['max_score']):g}{review}{warning}")


def write_grades(course_dir: Path, assignment: str, results: list[SubmissionResult]) -> Path:
    path = course_dir / "grades" / f"{assignment}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(GRADES_COLUMNS)
        for r in sorted(results, key=lambda r: r.student_id):
            writer.writerow([r.student_id, r.assignment, r.score, r.max_score, r.status])
    return path
