"""Where things are: the repository's assignments and the layout of an instructor's course directory.

A course directory (outside the repository, one per class) holds everything the verbs write;
each verb reads only what an earlier one wrote, so any of them can be run again on its own::

    COURSE_DIR/
      source/ASSIGNMENT/ASSIGNMENT.ipynb        the solution notebook, hidden tests included (copied by ``grade``)
      submitted/STUDENT/ASSIGNMENT/*.ipynb      what ``collect`` copied in (older versions in ``older/``)
      collected/ASSIGNMENT.csv                  every notebook ``collect`` found, and what became of it
      autograded/STUDENT/ASSIGNMENT/*.ipynb     the notebook ``grade`` executed, for the instructor only
      results/ASSIGNMENT/STUDENT.json           one stored result per submission (:mod:`autograder.results`)
      grades/ASSIGNMENT.csv                     what ``grade`` writes from the results
      feedback/STUDENT/ASSIGNMENT.html          what ``feedback`` writes
      similarity/ASSIGNMENT.html, .csv          what ``similarity`` writes

There is no gradebook database: nbgrader only generates the student notebooks (``release``,
in a throw-away course directory of its own, through :func:`run_nbgrader`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class AutograderError(RuntimeError):
    """Something an instructor must fix (unknown assignment, nbgrader failure) with its explanation."""


def solutions_dir(repo: Path = REPO_ROOT) -> Path:
    """The instructor's notebooks: ``solutions/`` of the course checkout this autograder sits in."""
    folder = repo / "solutions"
    if not folder.is_dir():
        # the course's wheel carries autograder (the Gradescope archive installs it from there), but an
        # installed copy has no instructor notebooks beside it
        raise AutograderError(
            f"no solutions/ folder in {repo}: run the autograder from a checkout of the course repository "
            "(.venv/bin/python -m autograder ... in its folder), not from an installed copy of the package")
    return folder


def exercises_dir(repo: Path = REPO_ROOT) -> Path:
    return repo / "exercises"


def assignments(repo: Path = REPO_ROOT) -> list[str]:
    """Names of every assignment: the folders of ``solutions/``, in order."""
    return sorted(p.name for p in solutions_dir(repo).iterdir() if p.is_dir() and not p.name.startswith("."))


def check_assignment(name: str, repo: Path = REPO_ROOT) -> str:
    known = assignments(repo)
    if name not in known:
        raise AutograderError(f"unknown assignment {name!r}; the assignments are: {', '.join(known)}")
    return name


def notebook_name(assignment: str, repo: Path = REPO_ROOT) -> str:
    """File name of the assignment's (single) notebook."""
    notebooks = sorted(p.name for p in (solutions_dir(repo) / assignment).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise AutograderError(f"assignment {assignment} must hold exactly one notebook, found {notebooks}")
    return notebooks[0]


def install_source(assignment: str, course_dir: Path, repo: Path = REPO_ROOT) -> Path:
    """Copy the assignment's solution folder into ``course_dir/source`` (replacing an older copy)."""
    target = course_dir / "source" / assignment
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        solutions_dir(repo) / assignment, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    )
    return target


def run_nbgrader(args: list[str], course_dir: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` on ``course_dir`` in a subprocess, so a crash in it cannot take us down."""
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course_dir}"]
    # nbgrader runs the `alembic` command of its own environment by name: put that environment's
    # scripts first on PATH so it works from an unactivated virtual environment too.
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(command, cwd=course_dir, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise AutograderError(f"nbgrader {args[0]} failed (exit {result.returncode}):\n{tail}")
    return result
