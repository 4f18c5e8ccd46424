"""The Gradescope autograder archive, run as Gradescope runs it, on a simulated /autograder tree:
the sample class scores as ``grade`` scores it, results.json follows Gradescope's format, and no
output carries the hidden tests."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile

import jsonschema
import nbformat
import pytest

from autograder import gradescope, sandbox
from autograder.cli import main as cli
from submissions import REPO

ASSIGNMENT = "04_self_attention"
SAMPLE = REPO / "examples" / "submissions" / ASSIGNMENT
SOURCE = REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"

# Gradescope's results.json (its "Autograder Specifications" page), as far as this archive writes it.
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["output", "tests"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"}, "execution_time": {"type": "number"}, "output": {"type": "string"},
        "visibility": VISIBILITY, "stdout_visibility": VISIBILITY, "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": {
            "type": "object", "required": ["name", "score", "max_score", "output", "visibility"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "number": {"type": "string"}, "score": {"type": "number"},
                           "max_score": {"type": "number"}, "status": {"enum": ["passed", "failed"]},
                           "output": {"type": "string"}, "visibility": VISIBILITY,
                           "tags": {"type": "array"}, "extra_data": {"type": "object"}}}},
    },
}


def _hidden_lines() -> set[str]:
    """Every line (12 characters or more) of the source's hidden-test blocks that students never see."""
    source = nbformat.read(SOURCE, as_version=4)
    released = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    public = {" ".join(line.split()) for c in released.cells for line in c.source.splitlines()}
    hidden = set()
    for cell in source.cells:
        for block in re.findall(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", cell.source, flags=re.S):
            hidden |= {" ".join(line.split()) for line in block.splitlines()}
    return {line for line in hidden - public if len(line) >= 12}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("gs") / "autograder.zip"
    assert cli(["gradescope", ASSIGNMENT, "--output", str(path), "--timeout", "60"]) == 0
    return path


def _tree(tmp_path, archive, notebooks: dict[str, bytes]):
    """An /autograder tree as Gradescope lays it out: source/ (the archive), submission/, results/."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(archive) as z:
        z.extractall(root / "source")
        for info in z.infolist():  # extractall drops the modes Gradescope keeps
            mode = info.external_attr >> 16
            if mode:
                (root / "source" / info.filename).chmod(mode)
    (root / "submission").mkdir()
    for name, data in notebooks.items():
        (root / "submission" / name).write_bytes(data)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    return root


def _run(root):
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    done = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(results, RESULTS_SCHEMA)
    return results, done.stdout + done.stderr


def test_archive_holds_what_gradescope_runs_and_only_this_solution(archive):
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
        setup = z.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "gradescope.json", "requirements.txt", "course/pyproject.toml",
            f"assignment/{ASSIGNMENT}.ipynb", "course/autograder/grade.py", "course/llm_foundations/attention.py"} <= names
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert "bubblewrap" in setup and "requirements.txt" in setup
    notebooks = sorted(n for n in names if n.endswith(".ipynb"))
    assert notebooks == [f"assignment/{ASSIGNMENT}.ipynb"], f"only this assignment's source notebook: {notebooks}"
    assert not any("__pycache__" in n or n.startswith(("solutions/", "tests/")) for n in names)


def test_a_submission_without_a_notebook_is_told_so(tmp_path, archive):
    root = _tree(tmp_path, archive, {"answers.py": b"print('hi')"})
    results = gradescope.run(root)
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert results["score"] == 0 and results["tests"] == []
    assert f"upload {ASSIGNMENT}.ipynb" in results["output"], results["output"]


def test_no_sandbox_means_no_grading_unless_the_archive_allows_it(tmp_path, archive, monkeypatch):
    def unavailable(settings):
        raise sandbox.SandboxUnavailable("bubblewrap (bwrap) is not installed")

    monkeypatch.setattr(sandbox, "check", unavailable)
    root = _tree(tmp_path, archive, {f"{ASSIGNMENT}.ipynb": (SAMPLE / "ada_04_self_attention.ipynb").read_bytes()})
    results = gradescope.run(root)
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert results["score"] == 0 and results["tests"] == [] and "could not start its sandbox" in results["output"]


@pytest.mark.slow
def test_sample_class_scores_as_grade_does_without_leaking_hidden_tests(tmp_path, archive):
    expected = {r["student_id"]: r for r in csv.DictReader((SAMPLE / "expected_grades.csv").read_text(encoding="utf-8").splitlines())}
    files = {"ada": "ada_04_self_attention.ipynb", "ben": "Copy of ben_04_self_attention.ipynb",
             "cleo": "cleo_04_self_attention-2.ipynb", "dan": "dan_04_self_attention.ipynb",
             "eve": "eve_04_self_attention.ipynb"}
    source = nbformat.read(SOURCE, as_version=4)
    graded_cells = [c.metadata["nbgrader"] for c in source.cells if c.metadata.get("nbgrader", {}).get("grade")]
    secrets = _hidden_lines()
    assert secrets, "the source notebook has hidden tests"
    for student, name in files.items():
        root = _tree(tmp_path / student, archive, {name: (SAMPLE / name).read_bytes()})
        results, printed = _run(root)
        want = expected[student]
        assert results["score"] == float(want["score"]), (student, results["score"], want)
        kind = want["status"].split(":")[0]
        if kind == "error":
            assert "could not be graded" in results["output"] and "not a readable notebook" in results["output"]
        elif kind == "flagged":
            assert "Flagged for the instructor's review" in results["output"], results["output"]
        if kind != "error":
            assert [t["name"] for t in results["tests"]] == [m["grade_id"] for m in graded_cells]
            assert [t["max_score"] for t in results["tests"]] == [float(m["points"]) for m in graded_cells]
            assert sum(t["score"] for t in results["tests"]) == results["score"]
            hidden = {t["name"] for t in results["tests"] if t["visibility"] == "after_published"}
            assert hidden == {m["grade_id"] for m, c in zip(graded_cells, [c for c in source.cells if
                              c.metadata.get("nbgrader", {}).get("grade")]) if "### BEGIN HIDDEN TESTS" in c.source}
        text = "\n".join([results["output"], printed] + [t["output"] for t in results["tests"]])
        leaked = [line for line in secrets if line in " ".join(text.split())]
        assert not leaked and "HIDDEN TESTS" not in text, f"{student}: hidden tests in the output: {leaked[:3]}"
    ben = json.loads((tmp_path / "ben" / "autograder" / "results" / "results.json").read_text(encoding="utf-8"))
    failed = [t for t in ben["tests"] if t["status"] == "failed"]
    assert failed and any("sqrt(d_k)" in t["output"] for t in failed), "failed tests carry the teaching message"


def test_guide_shows_what_building_the_archive_prints(tmp_path, capsys, monkeypatch):
    from test_examples import GUIDE, guide_outputs

    monkeypatch.chdir(tmp_path)
    assert cli(["gradescope", ASSIGNMENT, "--output", "autograder.zip"]) == 0
    printed = capsys.readouterr().out
    assert printed in guide_outputs(), f"update the gradescope output in {GUIDE.name} to:\n{printed}"
