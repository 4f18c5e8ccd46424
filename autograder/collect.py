"""``collect``: copy submitted notebooks into a course directory, one folder per student.

The student id is the part of the file name before the first underscore (``alice_04.ipynb``
-> ``alice``), the whole stem when there is none, or the name of the per-student folder a
notebook sits in. Originals are only read, never moved or changed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import REPO_ROOT, check_assignment, notebook_name


@dataclass
class CollectReport:
    """What ``collect`` did: ``collected`` maps student id to the copy it made."""

    collected: dict[str, Path] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def student_id_from(path: Path, source_root: Path) -> str:
    relative = path.relative_to(source_root) if path.is_relative_to(source_root) else Path(path.name)
    if len(relative.parts) > 1:
        return relative.parts[0]
    return path.stem.split("_", 1)[0]


def _notebooks(source: Path) -> list[tuple[Path, Path]]:
    """(notebook, root it was found under) for a file or a folder, in a stable order."""
    if source.is_file():
        return [(source, source.parent)]
    return [(p, source) for p in sorted(source.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]


def collect(assignment: str, sources: list[Path], course_dir: Path, repo: Path = REPO_ROOT) -> CollectReport:
    """Copy every notebook found in ``sources`` to ``course_dir/submitted/ID/ASSIGNMENT/``.

    Args:
        assignment: the assignment the notebooks were submitted for.
        sources: ``.ipynb`` files and folders of them.
        course_dir: the instructor's course directory.
        repo: repository root (for the assignment's notebook name).

    Returns:
        A :class:`CollectReport`; a second notebook for a student already collected is skipped
        and reported, never silently dropped.
    """
    check_assignment(assignment, repo)
    target_name = notebook_name(assignment, repo)
    report = CollectReport()
    for source in map(Path, sources):
        if not source.exists():
            report.skipped.append((source, "does not exist"))
            continue
        for notebook, root in _notebooks(source):
            student = student_id_from(notebook, root)
            if student in report.collected:
                report.skipped.append((notebook, f"a second notebook for student {student!r}"))
                continue
            destination = course_dir / "submitted" / student / assignment / target_name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(notebook, destination)
            report.collected[student] = destination
    return report
