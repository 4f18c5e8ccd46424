"""The pieces that must agree across the repository: setup cells, table of contents, config."""

from __future__ import annotations

import re

import pytest

from notebooks import REPO, all_notebooks, book_config, chapter_notebooks, exercise_notebooks, github_repository, read, toc_files


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: str(p.relative_to(REPO)))
def test_first_code_cell_installs_the_course_on_colab_only(path):
    repo, branch = github_repository()
    first = next(c for c in read(path).cells if c.cell_type == "code")
    assert 'if "google.colab" in sys.modules:' in first.source, f"{path.name}: first code cell is not the setup cell"
    urls = re.findall(r"git\+https://github\.com/([^@\"]+)@([\w.-]+)", first.source)
    assert urls == [(repo, branch)], f"{path.name}: setup cell installs {urls}, _config.yml says {repo}@{branch}"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_pages_hide_the_colab_setup_cell(path):
    """Readers of the website start with the chapter, not with a pip command for Colab."""
    first = next(c for c in read(path).cells if c.cell_type == "code")
    assert "remove-cell" in first.metadata.get("tags", []), f"{path.name}: tag the setup cell 'remove-cell'"


def test_every_chapter_and_exercise_is_in_the_table_of_contents():
    listed = set(toc_files())
    for path in chapter_notebooks() + exercise_notebooks():
        assert str(path.relative_to(REPO).with_suffix("")) in listed, f"{path} is missing from _toc.yml"
    for entry in listed:
        assert any((REPO / entry).with_suffix(s).exists() for s in (".md", ".ipynb")), f"_toc.yml names missing {entry}"


def test_book_config_never_builds_or_executes_solutions_or_exercises():
    config = book_config()
    assert "solutions" in config["exclude_patterns"], "solution notebooks (hidden tests!) must never be published"
    assert config["execute"]["execute_notebooks"] == "cache"
    assert "exercises/*/*.ipynb" in config["execute"]["exclude_patterns"]
    assert config["sphinx"]["config"]["nb_execution_raise_on_error"] is True


def test_package_is_installable_without_the_course_tooling():
    """Colab installs the package from pyproject.toml: its dependencies must be what Colab already has."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!\[ ]", d)[0].lower() for d in project["dependencies"]}
    assert names == {"torch", "numpy", "matplotlib", "tqdm"}
