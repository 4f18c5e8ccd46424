"""Notebooks run the way Colab runs them: the course package installed (not editable), in a fresh
kernel, in a folder that holds none of the repository's files.

conftest.py installs the package and points every kernel the tests start at that install; the
site build runs the chapters in a temporary folder (``run_in_temp`` in _config.yml) and the
grader runs each exercise in its own folder of a temporary course directory. So the chapter and
exercise tests are the Colab runs; these tests make sure the setup really is what it claims.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from notebooks import REPO, all_notebooks, book_config, read


def test_kernels_import_the_installed_package_not_the_checkout(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, llm_foundations\nprint(os.path.realpath(llm_foundations.__file__))\nprint(os.getcwd())")])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    module_file, cwd = nb.cells[0].outputs[0]["text"].split()
    installed = os.path.realpath(os.environ["COURSE_TEST_PACKAGE_DIR"])
    assert module_file.startswith(installed + os.sep), f"the kernel imported {module_file}, not the installed copy"
    assert not module_file.startswith(str(REPO) + os.sep)
    assert Path(cwd) == tmp_path.resolve()


def test_the_installed_package_has_every_module():
    installed = Path(os.environ["COURSE_TEST_PACKAGE_DIR"]) / "llm_foundations"
    modules = {p.name for p in (REPO / "llm_foundations").glob("*.py")}
    assert modules <= {p.name for p in installed.glob("*.py")}, "the package build leaves modules out"


def test_the_site_build_runs_chapters_outside_the_repository():
    assert book_config()["execute"].get("run_in_temp") is True


def test_notebooks_read_no_repository_files():
    """Relative paths into the checkout work locally and break on Colab."""
    for path in all_notebooks():
        for cell in read(path).cells:
            if cell.cell_type != "code":
                continue
            for marker in ("../", "book/", "solutions/", "exercises/", "llm_foundations/", "tests/"):
                assert marker not in cell.source.replace("github.com/", ""), (
                    f"{path.relative_to(REPO)} refers to {marker!r}, a path that exists only in the repository")
