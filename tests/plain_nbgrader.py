"""Grade the same submissions with plain nbgrader and with the course's grader, and compare.

    python tests/plain_nbgrader.py [--zoo] [--out TABLE.json] [ASSIGNMENT ...]

For each assignment this builds a plain nbgrader course in a temporary folder (nbgrader's own
command line, its default configuration: ``generate_assignment`` adds the assignment to the
gradebook, ``autograde`` executes and scores every submission, the scores are read back from the
gradebook with nbgrader's ``Gradebook`` API) and a course directory for ``python -m autograder
grade`` with the same ``submitted/`` tree. The submissions are the reference answers filled into
the released notebook, the untouched released notebook and, with ``--zoo``, every answer of the
chapter's bug zoo (``tests/zoo/``). It prints one line per submission, ``ours`` against
``nbgrader``, with the test cells where the two differ, and writes the whole table as JSON.

Not part of the test suite (the zoo takes about an hour of CPU): ``test_nbgrader_agreement.py``
checks a fast subset; this keeps the full table that the instructor guide quotes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))

from submissions import REPO, Answer, build_submission, notebook_paths  # noqa: E402

from autograder.course import install_source, run_nbgrader  # noqa: E402

CONFIG = 'c = get_config()  # noqa: F821\nc.CourseDirectory.course_id = "agreement"\n'


def course_with(assignment: str, root: Path, submissions: dict[str, nbformat.NotebookNode], config: str = CONFIG) -> Path:
    """``root`` laid out as an nbgrader course: config, ``source/ASSIGNMENT``, ``submitted/STUDENT/ASSIGNMENT``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(config, encoding="utf-8")
    install_source(assignment, root, REPO)
    name = notebook_paths(assignment)[0].name
    for student, nb in submissions.items():
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / name)
    return root


def nbgrader_scores(assignment: str, root: Path) -> dict[str, dict[str, float]]:
    """Autograde every submission of ``root`` with plain nbgrader: student -> {grade_id: points}."""
    from nbgrader.api import Gradebook

    run_nbgrader(["generate_assignment", assignment, "--force"], root)  # also adds it to the gradebook
    # a submission nbgrader cannot score (it stops on it) is left out of the gradebook's scores
    run_nbgrader(["autograde", assignment, "--force"], root, check=False)
    name = notebook_paths(assignment)[0].stem
    scores = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "agreement") as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            notebook = gradebook.find_submission_notebook(name, assignment, submission.student.id)
            grades = {g.name: g.score for g in notebook.grades if g.cell.cell_type == "code"}
            if (root / "autograded" / submission.student.id / assignment).exists():
                scores[submission.student.id] = {name: float(score or 0) for name, score in grades.items()}
    return scores


def our_scores(assignment: str, root: Path, jobs: int = 1) -> dict[str, dict[str, float]]:
    """Grade every submission of ``root`` with ``python -m autograder grade``: student -> {grade_id: points}."""
    sandbox = [] if os.path.exists("/usr/bin/bwrap") else ["--no-sandbox"]
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", assignment, "--course-dir", str(root),
                          "--jobs", str(jobs), *sandbox], cwd=REPO, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"autograder grade {assignment} failed: {run.stderr[-2000:]}")
    scores = {}
    for path in sorted((root / "results" / assignment).glob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        scores[result["student_id"]] = {t["grade_id"]: float(t["points"]) for t in result["tests"]}
        scores[result["student_id"]]["__status__"] = result["status"]
    return scores


def our_scores_one_kernel(assignment: str, students: dict[str, nbformat.NotebookNode], workdir: Path) -> dict:
    """The same scores from the zoo's one-kernel runner (``zoo_runner``: the grader's assembled notebook
    and scoring, one kernel for the class; ``test_exercises`` checks that it agrees with the grader)."""
    from zoo_runner import ZooKernel

    source = nbformat.read(notebook_paths(assignment)[0], as_version=4)
    scores = {}
    with ZooKernel(source, workdir, cell_seconds=120) as kernel:
        for student, nb in students.items():
            scores[student] = {t.grade_id: t.points for t in kernel.score(nb)}
            scores[student]["__status__"] = "one kernel"
    return scores


def class_of(assignment: str, zoo: bool | str) -> dict[str, nbformat.NotebookNode]:
    """student id -> submitted notebook: the reference answers, the untouched notebook, the zoo."""
    students = {"reference-answers": build_submission(assignment, Answer("reference", "")),
                "untouched": build_submission(assignment, None)}
    if zoo:
        module = importlib.import_module(f"zoo.ch{assignment}")
        kinds = (("mistake", module.MISTAKES), ("alternative", module.ALTERNATIVES))
        for kind, answers in kinds[1:] if zoo == "alternatives" else kinds:
            for answer in answers:
                students[f"{kind}-{answer.name}"] = build_submission(assignment, answer)
    return students


def compare(assignment: str, zoo: bool | str, workdir: Path, jobs: int = 1, one_kernel: bool = False) -> dict[str, dict]:
    students = class_of(assignment, zoo)
    theirs = nbgrader_scores(assignment, course_with(assignment, workdir / "nbgrader", students))
    if one_kernel:
        ours = our_scores_one_kernel(assignment, students, workdir / "one-kernel")
    else:
        ours = our_scores(assignment, course_with(assignment, workdir / "ours", students), jobs)
    rows = {}
    for student in students:
        mine, plain = dict(ours.get(student, {})), theirs.get(student, {})
        status = mine.pop("__status__", "missing")
        cells = sorted(g for g in set(mine) | set(plain) if mine.get(g) != plain.get(g))
        rows[student] = {"ours": sum(mine.values()), "nbgrader": sum(plain.values()) if student in theirs else None,
                         "status": status,
                         "differ": {g: [mine.get(g), plain.get(g)] for g in cells}}
    return rows


def markdown(table: dict[str, dict]) -> str:
    """The table the instructor guide shows: one row per assignment."""
    def total(row):
        plain = "stopped" if row["nbgrader"] is None else f"{row['nbgrader']:g}"
        return f"{row['ours']:g} / {plain}"

    lines = ["| assignment | reference answers | untouched | zoo mistakes: same total | zoo alternatives: same total |",
             "| --- | --- | --- | --- | --- |"]
    for assignment, rows in sorted(table.items()):
        cells = [total(rows["reference-answers"]), total(rows["untouched"])]
        for kind in ("mistake-", "alternative-"):
            zoo = [r for name, r in rows.items() if name.startswith(kind)]
            same = sum(r["ours"] == r["nbgrader"] for r in zoo)
            cells.append(f"{same} of {len(zoo)}" if zoo else "not run")
        lines.append(f"| {assignment} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--zoo", action="store_true", help="grade every bug-zoo answer too")
    parser.add_argument("--alternatives", action="store_true", help="grade the bug zoo's correct answers only")
    parser.add_argument("--out", type=Path, help="write the table as JSON")
    parser.add_argument("--one-kernel", action="store_true",
                        help="score our side with the zoo's one-kernel runner instead of `autograder grade` (much faster)")
    parser.add_argument("--markdown", action="store_true", help="print the --out table as markdown and stop")
    parser.add_argument("--keep", type=Path, help="keep both course folders under this folder")
    parser.add_argument("--jobs", type=int, default=1, help="our grader's --jobs (nbgrader grades one at a time)")
    args = parser.parse_args(argv)
    if args.alternatives:
        args.zoo = "alternatives"
    wanted = args.assignments or sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    table = json.loads(args.out.read_text()) if args.out and args.out.exists() else {}
    if args.markdown:
        print(markdown(table))
        return 0
    for assignment in wanted:
        if args.keep:
            rows = compare(assignment, args.zoo, args.keep / assignment, args.jobs, args.one_kernel)
        else:
            with tempfile.TemporaryDirectory(prefix=f"agreement-{assignment}-") as tmp:
                rows = compare(assignment, args.zoo, Path(tmp), args.jobs, args.one_kernel)
        table[assignment] = rows
        for student, row in rows.items():
            mark = "" if row["ours"] == row["nbgrader"] else "  DIFFERENT " + json.dumps(row["differ"])
            plain = "failed" if row["nbgrader"] is None else f"{row['nbgrader']:g}"
            print(f"{assignment} {student}: ours {row['ours']:g}, nbgrader {plain}{mark}", flush=True)
        if args.out:
            args.out.write_text(json.dumps(table, indent=1, sort_keys=True))
    differ = sum(r["ours"] != r["nbgrader"] for rows in table.values() for r in rows.values())
    print(f"{sum(len(rows) for rows in table.values())} submissions, {differ} with different totals")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
