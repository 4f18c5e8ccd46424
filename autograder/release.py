"""``release``: regenerate the student notebooks in ``exercises/`` from ``solutions/``.

nbgrader's generate_assignment removes the solutions and hidden tests and clears outputs; it
runs in a throw-away course directory so that nothing (gradebook, release folder) is left in the
repository. Running it twice gives byte-identical files.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat

from autograder.course import REPO_ROOT, assignments, check_assignment, exercises_dir, install_source, run_nbgrader


def release(names: list[str] | None = None, repo: Path = REPO_ROOT, output: Path | None = None) -> list[Path]:
    """Write the student version of each assignment to ``output`` (default ``exercises/``).

    Args:
        names: assignments to release; all of them when None or empty.
        repo: repository root holding ``solutions/``.
        output: folder to write ``ASSIGNMENT/`` folders into.

    Returns:
        The notebooks written.
    """
    output = Path(output) if output is not None else exercises_dir(repo)
    written: list[Path] = []
    for name in names or assignments(repo):
        check_assignment(name, repo)
        with tempfile.TemporaryDirectory(prefix="release-") as tmp:
            course = Path(tmp)
            install_source(name, course, repo)
            run_nbgrader(["generate_assignment", name, "--force", "--no-db"], course)
            target = output / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(course / "release" / name, target)
        for notebook in sorted(target.glob("*.ipynb")):
            _normalise(notebook)
            written.append(notebook)
    return written


def _normalise(path: Path) -> None:
    """Outputs and execution counts cleared, nbformat's canonical JSON: stable diffs."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, path)
