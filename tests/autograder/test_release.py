"""exercises/ is generated from solutions/ by the autograder's release, and nothing else."""

from __future__ import annotations

import ast
import filecmp

import pytest

from autograder import release
from autograder.course import AutograderError
from notebooks import REPO, all_notebooks, exercise_notebooks, read, solution_notebooks


def _tree(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    output = tmp_path_factory.mktemp("release")
    release(output=output)
    return output


def test_exercises_equal_a_fresh_release(fresh_release):
    ours = REPO / "exercises"
    assert _tree(fresh_release) == _tree(ours), "exercises/ holds different files than a fresh release"
    for relative in _tree(ours):
        assert filecmp.cmp(ours / relative, fresh_release / relative, shallow=False), (
            f"exercises/{relative} differs from a fresh release: run `python -m autograder release` "
            "after editing solutions/, and never edit exercises/ by hand"
        )


def test_release_is_deterministic(fresh_release, tmp_path):
    release(output=tmp_path)
    for relative in _tree(fresh_release):
        assert (tmp_path / relative).read_bytes() == (fresh_release / relative).read_bytes(), relative


def test_release_rejects_unknown_assignment(tmp_path):
    with pytest.raises(AutograderError, match="unknown assignment"):
        release(["99_nope"], output=tmp_path)


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: str(p.relative_to(REPO)))
def test_notebooks_in_git_carry_no_outputs(path):
    nb = read(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: strip outputs before committing"


@pytest.mark.parametrize("path", exercise_notebooks(), ids=lambda p: p.name)
def test_student_notebooks_hide_solutions_and_hidden_tests(path):
    text = path.read_text(encoding="utf-8")
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"{path.name} leaks {marker!r}"
    stubs = [c for c in read(path).cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)


@pytest.mark.parametrize("path", solution_notebooks(), ids=lambda p: p.name)
def test_solution_notebook_structure(path):
    """Each solution cell defines its grade_id at top level; every test cell has points and hidden tests."""
    nb = read(path)
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert solutions and tests
    for cell in solutions:
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        defined = {n.name for n in ast.parse(cell.source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert grade_id in defined, f"solution cell {grade_id} must define {grade_id} at top level"
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
    for cell in tests:
        meta = cell.metadata["nbgrader"]
        assert meta["points"] > 0 and meta["locked"], meta["grade_id"]
        assert "### BEGIN HIDDEN TESTS" in cell.source, f"{meta['grade_id']} has no hidden tests"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
