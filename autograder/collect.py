"""``collect``: copy submitted notebooks into a course directory, one folder per student.

Sources are ``.ipynb`` files, folders (searched recursively) and ``.zip`` archives (as an LMS
bulk download gives them, possibly nested). For each notebook:

- the student id is the part of the file name before the first underscore (``alice_04.ipynb``
  -> ``alice``), or the name of the per-student folder the notebook sits in; ``--id-pattern``
  (a regular expression with a group named ``id``, or its first group) overrides both;
- Colab's "Copy of " prefix and resubmission suffixes (``-1``, ``-2``, `` (1)``) are ignored
  when reading the id; of several notebooks for one student the newest wins (the highest
  resubmission number, then the latest modification time) and the others are kept in
  ``submitted/STUDENT/ASSIGNMENT/older/``;
- a notebook that belongs to a different assignment is reported, not collected.

Originals are only read. Every notebook found is accounted for in
``COURSE_DIR/collected/ASSIGNMENT.csv`` (collected, kept as older, or skipped and why).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder.assemble import matches_assignment
from autograder.notebook import SubmissionError, read_notebook
from autograder.course import REPO_ROOT, assignments, check_assignment, notebook_name, solutions_dir

_COPY_PREFIX = re.compile(r"^(copy[ _]of[ _])+", re.IGNORECASE)
_RESUBMISSION = re.compile(r"(?:-(\d+)| \((\d+)\))$")


@dataclass
class Found:
    """One notebook found in the sources: where it came from and its bytes."""

    origin: str  # a path, or "archive.zip!inner/path.ipynb"
    name: str  # file name
    parent: str | None  # the folder it sat in, relative to the source root (None: at the root)
    data: bytes
    mtime: float


@dataclass
class CollectReport:
    """What ``collect`` did: ``collected`` maps student id to the copy that will be graded."""

    collected: dict[str, Path] = field(default_factory=dict)
    older: list[tuple[str, Path]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _walk(source: Path) -> list[Found]:
    if source.is_dir():
        found = []
        for path in sorted(source.rglob("*")):
            if ".ipynb_checkpoints" in path.parts or "__MACOSX" in path.parts or not path.is_file():
                continue
            relative = path.relative_to(source)
            parent = relative.parts[0] if len(relative.parts) > 1 else None
            found += _from_file(path, parent)
        return found
    return _from_file(source, None)


def _from_file(path: Path, parent: str | None) -> list[Found]:
    if path.suffix.lower() == ".ipynb":
        return [Found(str(path), path.name, parent, path.read_bytes(), path.stat().st_mtime)]
    if path.suffix.lower() == ".zip":
        return _from_zip(path.read_bytes(), str(path), path.stat().st_mtime)
    return []


def _from_zip(data: bytes, origin: str, mtime: float) -> list[Found]:
    found = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return [Found(origin, Path(origin).name, None, b"", mtime)]  # reported as unreadable
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            inner = PurePosixPath(info.filename)
            if info.is_dir() or "__MACOSX" in inner.parts:
                continue
            content = archive.read(info)
            stamp = _zip_time(info, mtime)
            if inner.suffix.lower() == ".zip":
                found += _from_zip(content, f"{origin}!{inner}", stamp)
            elif inner.suffix.lower() == ".ipynb":
                parent = inner.parts[0] if len(inner.parts) > 1 else None
                found.append(Found(f"{origin}!{inner}", inner.name, parent, content, stamp))
    return found


def _zip_time(info: zipfile.ZipInfo, default: float) -> float:
    try:
        import datetime

        return datetime.datetime(*info.date_time).timestamp()
    except (ValueError, OverflowError):
        return default


def parse_name(name: str, parent: str | None, id_pattern: re.Pattern | None = None) -> tuple[str, int]:
    """(student id, resubmission number) from a notebook's file name and folder."""
    stem = unicodedata.normalize("NFC", Path(name).stem).strip()
    stem = _COPY_PREFIX.sub("", stem).strip()
    resubmission = 0
    match = _RESUBMISSION.search(stem)
    if match:
        resubmission = int(match.group(1) or match.group(2))
        stem = stem[: match.start()]
    if id_pattern is not None:
        found = id_pattern.search(stem if parent is None else f"{parent}/{stem}")
        if not found:
            return "", resubmission
        student = found.groupdict().get("id") or found.group(1)
    elif parent is not None:
        student = parent
    else:
        student = stem.split("_", 1)[0]
    student = unicodedata.normalize("NFC", student).strip().replace("/", "-").replace("\\", "-")
    return student, resubmission


def _which_assignment(data: bytes, assignment: str, repo: Path) -> str | None:
    """The assignment this notebook belongs to, when it is clearly another one (else None)."""
    try:
        submitted = read_notebook(data.decode("utf-8", errors="replace"))
    except SubmissionError:
        return None  # unreadable notebooks are collected and reported by grade
    import nbformat

    scores = {}
    for name in assignments(repo):
        source = nbformat.read(solutions_dir(repo) / name / notebook_name(name, repo), as_version=4)
        scores[name] = matches_assignment(submitted, source)
    best = max(scores, key=scores.get)
    if best != assignment and scores[best] > 0 and scores[best] > scores[assignment]:
        return best
    return None


def collect(
    assignment: str,
    sources: list[Path],
    course_dir: Path,
    id_pattern: str | None = None,
    repo: Path = REPO_ROOT,
) -> CollectReport:
    """Copy the notebooks in ``sources`` into ``course_dir/submitted/ID/ASSIGNMENT/``.

    Args:
        assignment: the assignment the notebooks were submitted for.
        sources: ``.ipynb`` files, folders of them, and ``.zip`` archives.
        course_dir: the instructor's course directory.
        id_pattern: a regular expression that finds the student id in ``folder/filename``
            (without ``.ipynb``): its group named ``id``, or else its first group.
        repo: repository root.

    Returns:
        A :class:`CollectReport`; the same information is written to
        ``course_dir/collected/ASSIGNMENT.csv``.
    """
    check_assignment(assignment, repo)
    target_name = notebook_name(assignment, repo)
    pattern = re.compile(id_pattern) if id_pattern else None
    report = CollectReport()
    log: list[tuple[str, str, str]] = []  # origin, student, outcome
    candidates: dict[str, list[tuple[int, float, Found]]] = {}
    for source in map(Path, sources):
        if not source.exists():
            report.skipped.append((str(source), "does not exist"))
            log.append((str(source), "", "skipped: does not exist"))
            continue
        for found in _walk(source):
            student, resubmission = parse_name(found.name, found.parent, pattern)
            if not student:
                reason = "no student id in the file name" + (" (--id-pattern did not match)" if pattern else "")
                report.skipped.append((found.origin, reason))
                log.append((found.origin, "", f"skipped: {reason}"))
                continue
            other = _which_assignment(found.data, assignment, repo) if found.data else None
            if other is not None:
                reason = f"belongs to assignment {other}, not {assignment}"
                report.skipped.append((found.origin, reason))
                log.append((found.origin, student, f"skipped: {reason}"))
                continue
            candidates.setdefault(student, []).append((resubmission, found.mtime, found))
    for student, versions in sorted(candidates.items()):
        versions.sort(key=lambda v: (v[0], v[1], v[2].origin))
        folder = course_dir / "submitted" / student / assignment
        if folder.exists():
            shutil.rmtree(folder)  # a re-collect replaces the previous copies, never the originals
        folder.mkdir(parents=True)
        *older, newest = versions
        for index, (_, _, found) in enumerate(older, start=1):
            keep = folder / "older" / f"{index:02d}_{found.name}"
            keep.parent.mkdir(exist_ok=True)
            keep.write_bytes(found.data)
            report.older.append((student, keep))
            log.append((found.origin, student, f"kept as older: {keep.relative_to(course_dir)}"))
        destination = folder / target_name
        destination.write_bytes(newest[2].data)
        report.collected[student] = destination
        log.append((newest[2].origin, student, f"collected: {destination.relative_to(course_dir)}"))
    _write_log(course_dir / "collected" / f"{assignment}.csv", log)
    return report


def _write_log(path: Path, rows: list[tuple[str, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "student_id", "outcome"])
        writer.writerows(rows)
