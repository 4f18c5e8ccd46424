"""The website: every chapter executes cleanly, and the whole book builds with no network."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import nbclient
import pytest

from notebooks import REPO, chapter_notebooks, exercise_notebooks, github_repository, read, toc_files

CHAPTER_SECONDS = 120  # about a minute on a 2-core CPU, with room for a loaded CI machine


@pytest.mark.slow
@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_executes_without_errors_or_stderr(path):
    nb = read(path)
    started = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=CHAPTER_SECONDS, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - started
    stderr = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr: {stderr[:3]}"
    assert seconds < CHAPTER_SECONDS, f"{path.name} took {seconds:.0f} s"
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 1, f"{path.name} draws no figure"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(REPO), "--path-output", str(output)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, f"jupyter-book build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return output / "_build" / "html"


@pytest.mark.slow
def test_site_has_a_page_for_every_toc_entry(site):
    for entry in toc_files():
        assert (site / entry).with_suffix(".html").exists(), f"no page for {entry}"
    assert (site / "index.html").exists()


@pytest.mark.slow
def test_site_never_publishes_solutions_or_hidden_tests(site):
    assert not (site / "solutions").exists()
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS"):
            assert marker not in text, f"{page.relative_to(site)} shows {marker!r}"


@pytest.mark.slow
def test_chapter_pages_show_outputs_and_no_tracebacks(site):
    for path in chapter_notebooks():
        page = (site / path.relative_to(REPO)).with_suffix(".html").read_text(encoding="utf-8")
        assert "Traceback" not in page and "Error</span>" not in page, f"{path.name} shows an error"
        assert "<img" in page, f"{path.name} shows no figure"


@pytest.mark.slow
def test_exercise_pages_open_their_notebook_in_colab(site):
    repo, branch = github_repository()
    for path in exercise_notebooks():
        page = (site / path.relative_to(REPO)).with_suffix(".html").read_text(encoding="utf-8")
        link = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{path.relative_to(REPO).as_posix()}"
        assert link in page, f"{path.name}: no Colab button pointing at {link}"
        assert "YOUR CODE HERE" in page, f"{path.name}: the page must show the student version"
