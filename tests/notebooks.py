"""Finding and reading the repository's notebooks, for the tests."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import yaml

REPO = Path(__file__).resolve().parent.parent


def chapter_notebooks() -> list[Path]:
    return sorted((REPO / "book").glob("*.ipynb"))


def solution_notebooks() -> list[Path]:
    return sorted((REPO / "solutions").glob("*/*.ipynb"))


def exercise_notebooks() -> list[Path]:
    return sorted((REPO / "exercises").glob("*/*.ipynb"))


def all_notebooks() -> list[Path]:
    return chapter_notebooks() + solution_notebooks() + exercise_notebooks()


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def book_config() -> dict:
    return yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))


def toc_files() -> list[str]:
    """Every file named in _toc.yml, root first."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


def github_repository() -> tuple[str, str]:
    """(owner/name, branch) of the course repository, from _config.yml."""
    repository = book_config()["repository"]
    match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", repository["url"])
    assert match, f"repository url must be a GitHub url, got {repository['url']}"
    return match.group(1), repository["branch"]
