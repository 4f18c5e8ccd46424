"""Every exercise, three ways: through the real autograder the solution gets full marks and the
untouched student notebook gets zero; and in the chapter's bug zoo each classic mistake loses
points while each unusual but correct answer keeps full marks.

The zoo is scored in one kernel per chapter (``zoo_runner``): the same assembled notebook and
the same scoring as the grader, without starting a kernel and importing torch per answer. A test
checks that it agrees with the real grader, test by test."""

from __future__ import annotations

import csv
import hashlib
import json
import importlib
import pkgutil
import time
from pathlib import Path

import nbformat
import pytest

import zoo
from autograder import assemble, grade, integrity
from autograder.limits import Limits
from submissions import REPO, Answer, build_submission, notebook_paths
from zoo_runner import ZooKernel

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
    inbox = tmp_root / "inbox"
    solution, _ = notebook_paths(assignment)
    class_list: dict[str, nbformat.NotebookNode | None] = {
        "solution": nbformat.read(solution, as_version=4),
        "reference-answers": build_submission(assignment, Answer("reference", "")),
        "untouched": build_submission(assignment, None),
    }
    for student, nb in class_list.items():
        folder = inbox / student
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / solution.name)
    (inbox / "corrupt").mkdir()
    (inbox / "corrupt" / solution.name).write_text("{ this is not a notebook", encoding="utf-8")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in inbox.rglob("*.ipynb")}

    grades_csv = grade(assignment, tmp_root / "course", submissions=[inbox], limits=Limits(cell_seconds=60), jobs=2)

    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in inbox.rglob("*.ipynb")}
    assert after == before, "grading changed or removed a student's original file"
    with grades_csv.open(encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    for student, row in rows.items():
        row["tests"] = json.loads((tmp_root / "course" / "results" / assignment / f"{student}.json").read_text())["tests"]
    _GRADED[assignment] = rows
    return rows


def _stored_tests(graded, student: str) -> list[dict]:
    return graded[student]["tests"]


@pytest.fixture
def graded(tmp_path_factory, request):
    assignment = request.node.callspec.params["assignment"]
    return graded_class(assignment, tmp_path_factory.mktemp(f"class-{assignment}"))


_ZOO_SCORES: dict[str, dict[str, list]] = {}


def zoo_scores(assignment: str, workdir: Path) -> dict[str, list]:
    """Student name -> test results, for the zoo's answers and two controls, from one kernel."""
    if assignment in _ZOO_SCORES:
        return _ZOO_SCORES[assignment]
    module = ZOOS[assignment]
    solution, _ = notebook_paths(assignment)
    source = nbformat.read(solution, as_version=4)
    skip = frozenset(getattr(module, "SLOW_TESTS", ()))
    scores, seconds = {}, {}
    with ZooKernel(source, workdir, cell_seconds=60, skip_for_mistakes=skip) as kernel:
        scores["reference-answers"] = kernel.score(build_submission(assignment, Answer("reference", "")))
        scores["untouched"] = kernel.score(build_submission(assignment, None))
        for answer in [*module.MISTAKES, *module.ALTERNATIVES]:
            started, cpu = time.perf_counter(), kernel.cpu_seconds()
            full_marks = answer in module.ALTERNATIVES
            scores[answer.name] = kernel.score(build_submission(assignment, answer), expect_full_marks=full_marks,
                                               stop_at_first_loss=not full_marks)
            seconds[answer.name] = (round(time.perf_counter() - started, 2), round(kernel.cpu_seconds() - cpu, 2))
    # where a slow zoo spends its time: answer -> (wall seconds, kernel CPU seconds)
    (workdir / "seconds.json").write_text(json.dumps(seconds, indent=1))
    _ZOO_SCORES[assignment] = scores
    return scores


@pytest.fixture
def zoo_scored(tmp_path_factory, request):
    assignment = request.node.callspec.params["assignment"]
    return zoo_scores(assignment, tmp_path_factory.mktemp(f"zoo-{assignment}"))


def _points(tests) -> tuple[float, float]:
    return sum(t.points for t in tests), sum(t.max_points for t in tests)


def _failures(tests) -> str:
    return "; ".join(f"{t.grade_id}: {t.message[:300]}" for t in tests if not t.passed) or "none"


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
@pytest.mark.parametrize("assignment", [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS])
def test_zoo_runner_scores_like_the_grader(assignment, graded, zoo_scored):
    for student in ("reference-answers", "untouched"):
        from_grader = {t["grade_id"]: t["passed"] for t in _stored_tests(graded, student)}
        from_runner = {t.grade_id: t.passed for t in zoo_scored[student]}
        assert from_runner == from_grader, f"{assignment}: {student} scored differently in one kernel: {from_runner} vs {from_grader}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment,answer", _cases("MISTAKES"))
def test_classic_mistake_loses_points(assignment, answer, zoo_scored):
    score, max_score = _points(zoo_scored[answer.name])
    assert score < max_score, f"{assignment}: a submission that {answer.why} still got {score}/{max_score}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment,answer", _cases("ALTERNATIVES"))
def test_unusual_correct_answer_keeps_full_marks(assignment, answer, zoo_scored):
    tests = zoo_scored[answer.name]
    score, max_score = _points(tests)
    assert score == max_score, (
        f"{assignment}: a correct submission ({answer.why}) got only {score}/{max_score}: {_failures(tests)}")


@pytest.mark.parametrize("assignment,answer", _cases("ALTERNATIVES"))
def test_unusual_correct_answer_is_not_flagged(assignment, answer):
    """The grader's integrity scan (which the one-kernel zoo skips) must not flag a correct answer."""
    solution, _ = notebook_paths(assignment)
    answers = assemble.find_answers(build_submission(assignment, answer), nbformat.read(solution, as_version=4))
    flags = integrity.scan(list(answers.by_id.values()), set(answers.by_id) | set(answers.missing))
    assert not flags, f"{assignment}: a correct submission ({answer.why}) would be flagged: {flags}"
