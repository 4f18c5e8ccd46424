"""The website: the whole book builds with no network, every chapter executes cleanly within its
time, and the pages show what they should (and never the solutions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from notebooks import REPO, chapter_notebooks, exercise_notebooks, github_repository, toc_files

# One worker builds the site (the session-scoped ``site`` fixture of conftest.py) and runs every
# test that reads it, here and in test_browser.py.
pytestmark = pytest.mark.xdist_group("site")

CHAPTER_SECONDS = 180  # the target is about a minute on 2 cores; the margin is for a loaded CI machine
FINAL_CHAPTER_SECONDS = 420  # the final chapter trains two models: "a few minutes"


@pytest.fixture(scope="module")
def executed(site) -> dict[str, tuple[float, object]]:
    """Chapter file name -> (seconds, executed notebook), from the build's execution cache."""
    from jupyter_cache import get_cache

    cache = get_cache(site / ".jupyter_cache")
    return {Path(r.uri).name: (r.data["execution_seconds"], cache.get_cache_bundle(r.pk).nb)
            for r in cache.list_cache_records()}


@pytest.mark.slow
@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_executed_quickly_without_stderr_and_with_figures(path, executed):
    """The site build executed every chapter (an exception fails the build); check what it produced."""
    assert path.name in executed, f"{path.name} was not executed by the site build"
    seconds, nb = executed[path.name]
    limit = FINAL_CHAPTER_SECONDS if path.name.startswith("10_") else CHAPTER_SECONDS
    assert seconds < limit, f"{path.name} took {seconds:.0f} s (limit {limit} s)"
    stderr = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr: {stderr[:3]}"
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 1, f"{path.name} draws no figure"


@pytest.mark.slow
def test_site_has_a_page_for_every_toc_entry(site):
    site = site / "html"
    for entry in toc_files():
        assert (site / entry).with_suffix(".html").exists(), f"no page for {entry}"
    assert (site / "index.html").exists()


@pytest.mark.slow
def test_site_never_publishes_solutions_or_hidden_tests(site):
    site = site / "html"
    assert not (site / "solutions").exists()
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS"):
            assert marker not in text, f"{page.relative_to(site)} shows {marker!r}"


@pytest.mark.slow
def test_chapter_pages_show_outputs_and_no_tracebacks(site):
    site = site / "html"
    for path in chapter_notebooks():
        page = (site / path.relative_to(REPO)).with_suffix(".html").read_text(encoding="utf-8")
        # an exception in a cell fails the build already; this guards against a traceback shown as text
        assert "Traceback (most recent call last)" not in page, f"{path.name} shows a traceback"
        assert "output traceback" not in page and "output error" not in page, f"{path.name} shows an error output"
        assert "<img" in page, f"{path.name} shows no figure"


@pytest.mark.slow
def test_exercise_pages_open_their_notebook_in_colab(site):
    site = site / "html"
    repo, branch = github_repository()
    for path in exercise_notebooks():
        page = (site / path.relative_to(REPO)).with_suffix(".html").read_text(encoding="utf-8")
        link = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{path.relative_to(REPO).as_posix()}"
        assert link in page, f"{path.name}: no Colab button pointing at {link}"
        assert "YOUR CODE HERE" in page, f"{path.name}: the page must show the student version"


@pytest.mark.slow
def test_rebuild_without_changes_executes_nothing(site):
    """The execution cache: a second build with no change re-executes no chapter."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(REPO), "--path-output", str(site.parent)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Executing notebook" not in result.stdout, "a no-change rebuild executed a notebook again"
