"""``gradescope``: one archive that Gradescope runs to grade each submission with this pipeline.

``python -m autograder gradescope ASSIGNMENT --output autograder.zip`` writes a Gradescope
autograder archive (upload it as the assignment's *Configure Autograder → Zip file*)::

    setup.sh               run once when Gradescope builds the image: Python, bubblewrap, the course package
    run_autograder         run per submission: ``python -m autograder.gradescope run``
    gradescope.json        the assignment, its notebook's name, the limits, the sandbox policy
    requirements.txt       the pinned packages grading needs (a subset of the repository's)
    course/                the course package (llm_foundations and autograder) to install
    assignment/NAME.ipynb  the instructor's source notebook (hidden tests), with the files it ships

Gradescope unpacks it into ``/autograder/source``. For each submission, ``run_autograder`` grades
``/autograder/submission/*.ipynb`` with :func:`autograder.grade.grade_one`, the function ``grade``
calls, so the answers are put into the source notebook, the guard and the integrity scan run, and
the kernel runs inside the same operating-system sandbox (:mod:`autograder.sandbox`), which hides
``/autograder`` (the solution notebook, the results) from the student's code. It writes
``/autograder/results/results.json`` in Gradescope's format: one test per graded cell with its
``score``, ``max_score``, ``status`` and the teaching message as ``output`` (scrubbed of hidden-test
and solution lines, as feedback pages are); a cell that holds hidden tests has visibility
``after_published``; the top-level ``output`` says when a submission is flagged, could not be read,
or had no notebook. ``--root`` (or ``$AUTOGRADER_ROOT``) replaces ``/autograder``, to try it locally.

When bubblewrap cannot run in Gradescope's container, the archive's default is to grade nothing
and say so (the student's code would otherwise share a filesystem with the hidden tests); an
archive built with ``--allow-unsandboxed`` grades anyway, relying on Gradescope's one container per
submission, and says so to the instructor.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import asdict
from pathlib import Path

from autograder import environment
from autograder.course import REPO_ROOT, check_assignment, notebook_name, solutions_dir
from autograder.limits import Limits
from autograder.notebook import grade_id, is_test
from autograder.status import ERROR, FLAGGED, NOT_ISOLATED, Status

# What grading needs at run time, pinned to the repository's requirements.txt.
RUNTIME_PACKAGES = ("torch", "numpy", "matplotlib", "tqdm", "nbclient", "nbformat", "ipykernel")
VENV = "/opt/llm-foundations"
_HIDDEN_MARK = "### BEGIN HIDDEN TESTS"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
set -euo pipefail
SOURCE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y python3 python3-venv python3-pip bubblewrap
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {{
    echo "the pinned packages need Python 3.11 or newer: choose the Ubuntu 24.04 base image"; exit 1; }}
python3 -m venv {venv}
{venv}/bin/python -m pip install --upgrade pip
{venv}/bin/python -m pip install -r "$SOURCE/requirements.txt"
{venv}/bin/python -m pip install --no-deps "$SOURCE/course"
chmod -R a+rX {venv}   # the sandboxed kernel runs as a user of its own: it must read the installation
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. AUTOGRADER_ROOT and AUTOGRADER_PYTHON replace
# /autograder and the installed Python, to run it outside Gradescope.
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-{venv}/bin/python}}"
cd "$ROOT"
exec "$PYTHON" -m autograder.gradescope run --root "$ROOT"
"""


def _pinned(repo: Path) -> list[str]:
    pins = {}
    for line in (repo / "requirements.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*==", line.strip())
        if match:
            pins[match.group(1).lower()] = line.strip()
    return [pins.get(name, name) for name in RUNTIME_PACKAGES]


def build(assignment: str, output: Path, repo: Path = REPO_ROOT, limits: Limits | None = None,
          allow_unsandboxed: bool = False) -> Path:
    """Write the Gradescope autograder archive of ``assignment`` to ``output``; return its path."""
    check_assignment(assignment, repo)
    limits = limits or Limits()
    name = notebook_name(assignment, repo)
    config = {"assignment": assignment, "notebook": name, "limits": asdict(limits),
              "allow_unsandboxed": allow_unsandboxed}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    skip = re.compile(r"(^|/)(__pycache__|\.ipynb_checkpoints)(/|$)|\.pyc$")

    def add(archive: zipfile.ZipFile, arcname: str, data: bytes, executable: bool = False) -> None:
        info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))  # the same archive every time
        info.external_attr = (0o755 if executable else 0o644) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, data)

    with zipfile.ZipFile(output, "w") as archive:
        add(archive, "setup.sh", SETUP_SH.format(venv=VENV).encode(), executable=True)
        add(archive, "run_autograder", RUN_AUTOGRADER.format(venv=VENV).encode(), executable=True)
        add(archive, "gradescope.json", json.dumps(config, indent=1).encode())
        add(archive, "requirements.txt", ("\n".join(_pinned(repo)) + "\n").encode())
        for top in ("pyproject.toml", "README.md"):
            add(archive, f"course/{top}", (repo / top).read_bytes())
        for package in ("llm_foundations", "autograder"):
            for path in sorted((repo / package).rglob("*")):
                relative = path.relative_to(repo).as_posix()
                if path.is_file() and not skip.search(relative):
                    add(archive, f"course/{relative}", path.read_bytes())
        for path in sorted((solutions_dir(repo) / assignment).iterdir()):
            if path.is_file() and not path.name.startswith(".") and not skip.search(path.name):
                add(archive, f"assignment/{path.name}", path.read_bytes())
    return output


def _hidden_cells(source) -> set[str]:
    return {grade_id(c) for c in source.cells if is_test(c) and _HIDDEN_MARK in c.source}


def results_json(result, source, notes: list[str]) -> dict:
    """Gradescope's results.json for one :class:`~autograder.results.SubmissionResult`."""
    hidden = _hidden_cells(source)
    tests = []
    for number, test in enumerate(result.tests, start=1):
        tests.append({
            "name": test.grade_id,
            "number": str(number),
            "score": test.points,
            "max_score": test.max_points,
            "status": "passed" if test.passed else "failed",
            "output": "passed" if test.passed else (test.message or "failed"),
            "visibility": "after_published" if test.grade_id in hidden else "visible",
        })
    status = Status.parse(result.status)
    reasons = "; ".join(status.reasons) + ("" if status.sandboxed else NOT_ISOLATED)
    lines = []
    if status.kind == ERROR:
        lines.append(f"Your notebook could not be graded: {reasons}. Fix it and submit again.")
    elif status.kind == FLAGGED:
        lines.append(f"Flagged for the instructor's review: {reasons}.")
    if any(t["visibility"] == "after_published" for t in tests):
        lines.append("Tests that include hidden checks show their results when the grades are published.")
    lines += notes
    return {
        "score": result.score,
        "output": "\n".join(lines) or f"Graded: {result.score:g} of {result.max_score:g}.",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "execution_time": result.seconds,
        "tests": tests,
    }


def _failure(message: str) -> dict:
    return {"score": 0.0, "output": message, "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def _submitted_notebook(submission_dir: Path, name: str) -> tuple[Path | None, list[str]]:
    found = sorted(p for p in submission_dir.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
                   and not p.name.startswith("._")) if submission_dir.is_dir() else []
    if not found:
        return None, []
    exact = [p for p in found if p.name == name]
    chosen = exact[0] if exact else found[0]
    notes = [f"Several notebooks were submitted; graded {chosen.name}."] if len(found) > 1 else []
    return chosen, notes


def run(root: Path) -> dict:
    """Grade ``root/submission`` with the archive unpacked in ``root/source``; write and return results.json."""
    from autograder import sandbox
    from autograder.grade import grade_one

    import nbformat

    root = Path(root).resolve()
    results_path = root / "results" / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    config = json.loads((root / "source" / "gradescope.json").read_text(encoding="utf-8"))
    assignment, name = config["assignment"], config["notebook"]
    source_dir = root / "source" / "assignment"
    source_path = source_dir / name
    source = nbformat.read(source_path, as_version=4)
    limits = Limits(**config["limits"])
    submission, notes = _submitted_notebook(root / "submission", name)
    if submission is None:
        results = _failure(f"No notebook (.ipynb) was found in your submission: upload {name}.")
        results_path.write_text(json.dumps(results, indent=1), encoding="utf-8")
        return results
    course_dir = Path(tempfile.mkdtemp(prefix="gradescope-course-"))
    try:
        isolation = sandbox.settings_for(course_dir, root, source_dir, limits, None)
        try:
            sandbox.check(isolation)
        except sandbox.SandboxUnavailable as error:
            print(f"the grading sandbox cannot run here: {error}")
            if not config.get("allow_unsandboxed"):
                results = _failure("The autograder could not start its sandbox, so nothing was graded; "
                                         "your instructor has been told. Your submission is kept.")
                results_path.write_text(json.dumps(results, indent=1), encoding="utf-8")
                print("rebuild the archive with --allow-unsandboxed to grade in Gradescope's container without it")
                return results
            isolation = None
            print("grading WITHOUT the sandbox (the archive allows it): Gradescope's container is the only isolation")
        started = time.perf_counter()
        result = grade_one("submission", assignment, submission, source_path, course_dir, limits, force=True,
                           isolation=isolation)
        results = results_json(result, source, notes)
        results_path.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
        # for the instructor (Gradescope shows stdout to staff only)
        print(f"{result.score:g} / {result.max_score:g}: {result.status} ({time.perf_counter() - started:.1f} s)")
        return results
    finally:
        shutil.rmtree(course_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope",
                                     description="Run inside Gradescope's container: grade one submission.")
    parser.add_argument("verb", choices=["run"])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get(environment.ROOT, "/autograder")))
    args = parser.parse_args(argv)
    try:
        run(args.root)
    except Exception:  # noqa: BLE001 - the student must get a results.json whatever happened
        traceback.print_exc()  # stdout and stderr are the instructor's, never the student's
        path = args.root / "results" / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_failure("The autograder failed on this submission; your "
                                                       "instructor has been told. Your submission is kept.")),
                        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
