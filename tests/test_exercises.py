"""Every exercise, graded through the real autograder: the solution gets full marks, the
untouched student notebook gets zero, each classic mistake in the chapter's bug zoo loses points
and each unusual but correct answer keeps full marks."""

from __future__ import annotations

import csv
import hashlib
import importlib
import pkgutil
from pathlib import Path

import nbformat
import pytest

import zoo
from autograder import grade
from submissions import REPO, Answer, build_submission, notebook_paths

ZOOS = {m.ASSIGNMENT: m for m in (importlib.import_module(f"zoo.{info.name}") for info in pkgutil.iter_modules(zoo.__path__))}
ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())


def test_every_assignment_has_a_bug_zoo():
    missing = sorted(set(ASSIGNMENTS) - set(ZOOS))
    assert not missing, f"assignments without a bug zoo in tests/zoo/: {missing}"
    for module in ZOOS.values():
        assert len(module.MISTAKES) >= 8 and len(module.ALTERNATIVES) >= 3, module.__name__


_GRADED: dict[str, dict[str, dict[str, str]]] = {}


def graded_class(assignment: str, tmp_root: Path) -> dict[str, dict[str, str]]:
    """Grade one whole class for ``assignment`` (once per session) and return its CSV rows by student."""
    if assignment in _GRADED:
        return _GRADED[assignment]
    module = ZOOS[assignment]
    inbox = tmp_root / "inbox"
    solution, _ = notebook_paths(assignment)
    class_list: dict[str, nbformat.NotebookNode | None] = {
        "solution": nbformat.read(solution, as_version=4),
        "reference-answers": build_submission(assignment, Answer("reference", "")),
        "untouched": build_submission(assignment, None),
    }
    for answer in [*module.MISTAKES, *module.ALTERNATIVES]:
        class_list[answer.name.replace("_", "-")] = build_submission(assignment, answer)
    for student, nb in class_list.items():
        folder = inbox / student
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / solution.name)
    (inbox / "corrupt").mkdir()
    (inbox / "corrupt" / solution.name).write_text("{ this is not a notebook", encoding="utf-8")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in inbox.rglob("*.ipynb")}

    grades_csv = grade(assignment, tmp_root / "course", submissions=[inbox], timeout=60, jobs=2)

    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in inbox.rglob("*.ipynb")}
    assert after == before, "grading changed or removed a student's original file"
    with grades_csv.open(encoding="utf-8") as handle:
        _GRADED[assignment] = {row["student_id"]: row for row in csv.DictReader(handle)}
    return _GRADED[assignment]


@pytest.fixture
def graded(tmp_path_factory, request):
    assignment = request.node.callspec.params["assignment"]
    return graded_class(assignment, tmp_path_factory.mktemp(f"class-{assignment}"))


def _cases(kind: str):
    return [
        pytest.param(a, answer, id=f"{a}-{answer.name}", marks=pytest.mark.xdist_group(a))
        for a, module in sorted(ZOOS.items())
        for answer in getattr(module, kind)
    ]


def _score(row):
    return float(row["score"]), float(row["max_score"])


@pytest.mark.slow
@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS])
def test_solution_and_reference_answers_get_full_marks(assignment, graded):
    for student in ("solution", "reference-answers"):
        score, max_score = _score(graded[student])
        assert max_score > 0 and score == max_score, f"{assignment}: {student} scored {score}/{max_score}"
        assert graded[student]["status"] == "graded"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS])
def test_untouched_student_notebook_scores_zero(assignment, graded):
    score, max_score = _score(graded["untouched"])
    assert score == 0, f"{assignment}: the released notebook, untouched, scored {score}/{max_score}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS])
def test_corrupt_submission_is_reported_not_fatal(assignment, graded):
    assert graded["corrupt"]["status"].startswith("error:"), graded["corrupt"]
    assert float(graded["corrupt"]["score"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("assignment,answer", _cases("MISTAKES"))
def test_classic_mistake_loses_points(assignment, answer, graded):
    score, max_score = _score(graded[answer.name.replace("_", "-")])
    assert score < max_score, f"{assignment}: a submission that {answer.why} still got {score}/{max_score}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment,answer", _cases("ALTERNATIVES"))
def test_unusual_correct_answer_keeps_full_marks(assignment, answer, graded):
    score, max_score = _score(graded[answer.name.replace("_", "-")])
    assert score == max_score, f"{assignment}: a correct submission ({answer.why}) got only {score}/{max_score}"
