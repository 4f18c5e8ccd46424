"""Where the autograder finds the course, and what the course's wheel carries."""

import os
from pathlib import Path

import pytest

from autograder.course import REPO_ROOT, AutograderError, assignments, solutions_dir


def test_the_checkout_has_the_instructor_notebooks():
    assert solutions_dir() == REPO_ROOT / "solutions"
    assert "04_self_attention" in assignments()


def test_an_installed_copy_without_solutions_says_where_to_run_it(tmp_path):
    with pytest.raises(AutograderError, match="run the autograder from a checkout"):
        solutions_dir(tmp_path)


def test_the_installed_package_has_every_check_module_and_no_instructor_files():
    installed = Path(os.environ["COURSE_TEST_PACKAGE_DIR"])  # conftest's pip install of the course
    checks = sorted(p.name for p in (installed / "llm_foundations" / "checks").glob("ch*.py"))
    expected = sorted(f"ch{p.name}.py" for p in (REPO_ROOT / "solutions").iterdir() if p.is_dir())
    assert checks == expected, "the wheel must carry one check module per assignment"
    assert (installed / "llm_foundations" / "checks" / "core.py").is_file()
    for folder in ("solutions", "tests", "exercises", "book"):
        assert not (installed / folder).exists(), f"{folder}/ must not be installed with the package"
