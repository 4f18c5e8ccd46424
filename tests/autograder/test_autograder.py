"""The instructor's autograder on a class of awkward submissions: Colab copies, lost metadata,
tampered tests, warnings, attempts to game the checks, limits, broken files, LMS archives."""

from __future__ import annotations

import csv
import hashlib
import importlib
import json
import shutil
import zipfile

import nbformat
import pytest

from autograder import collect, export, feedback, grade
from autograder.cli import main as cli
from autograder.collect import parse_name
from autograder.limits import Limits
from autograder.grade import summarize
from submissions import REPO, Answer, build_submission, notebook_paths

# One worker grades the awkward class once (a module fixture on two workers would grade it twice).
pytestmark = pytest.mark.xdist_group("awkward")

ASSIGNMENT = "04_self_attention"
SDPA = "scaled_dot_product_attention"


def _correct():
    return build_submission(ASSIGNMENT, Answer("correct", ""))


def _with_answer(**sources):
    return build_submission(ASSIGNMENT, Answer("custom", "", source=sources))


def _colab_copy(nb):
    """What Colab does to a notebook: its metadata, fresh cell ids, outputs, nbformat 4.0, CRLF."""
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    nb.metadata["colab"] = {"provenance": [], "name": "Copy of 04_self_attention.ipynb"}
    nb.metadata["accelerator"] = "GPU"
    nb.nbformat_minor = 0
    for i, cell in enumerate(nb.cells):
        cell.pop("id", None)
        cell.metadata["id"] = f"colab{i:04d}"
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran on Colab\n")]
            cell.execution_count = i
    text = json.dumps(nb, indent=2).replace("\n", "\r\n")
    return text


def _without_metadata(nb):
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    nb.metadata.pop("kernelspec", None)
    return nb


def _tampered(nb, delete=False):
    cells = []
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            if delete:
                continue
            cell.source = "print('all good')"
        cells.append(cell)
    nb.cells = cells
    return nb


WRONG_SDPA = '''
def scaled_dot_product_attention(q, k, v, mask=None):
    weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)  # no scaling: wrong
    return weights @ v, weights
'''

CLASS = {
    # student id: (what, notebook or raw text, expectation)
    "original": ("the correct answer as released", _correct, "full"),
    "colab": ("saved by Colab", lambda: _colab_copy(_correct()), "full"),
    "nometa": ("nbgrader metadata lost", lambda: _without_metadata(_correct()), "full"),
    "tamper-edit": ("test cells replaced by prints, stubs untouched",
                    lambda: _tampered(build_submission(ASSIGNMENT, None)), "zero"),
    "tamper-delete": ("test cells deleted, stubs untouched",
                      lambda: _tampered(build_submission(ASSIGNMENT, None), delete=True), "zero"),
    "warns": ("correct, but its code emits warnings", lambda: _with_answer(**{SDPA: '''
import warnings

def scaled_dot_product_attention(q, k, v, mask=None):
    warnings.warn("this is fine")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights
'''}), "full"),
    "patch-allclose": ("wrong answer plus patched comparisons", lambda: _with_answer(**{SDPA: WRONG_SDPA + '''
torch.allclose = lambda *a, **k: True
torch.Tensor.__le__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
torch.testing.assert_close = lambda *a, **k: None
'''}), "partial-flagged"),
    "patch-checks": ("wrong answer plus redefined check helpers", lambda: _with_answer(**{SDPA: WRONG_SDPA + '''
import llm_foundations.checks.core as _t
_t.expect_close = lambda got, *a, **k: got
expect_close = lambda got, *a, **k: got
'''}), "partial-flagged"),
    "swallow": ("wrong answer plus an exception handler that hides failures", lambda: _with_answer(**{SDPA: WRONG_SDPA + '''
get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)
'''}), "partial-flagged"),
    "detects": ("behaves differently when graded", lambda: _with_answer(**{SDPA: '''
import os

def scaled_dot_product_attention(q, k, v, mask=None):
    if os.environ.get("NBGRADER_EXECUTION"):
        raise RuntimeError("graded")
    weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
    return weights @ v, weights
'''}), "partial-flagged"),
    "reference": ("imports the reference implementation", lambda: _with_answer(**{
        SDPA: "from llm_foundations.attention import scaled_dot_product_attention\n"}), "partial-flagged"),
    "hang": ("an answer cell that never ends", lambda: _with_answer(**{SDPA: "while True:\n    pass\n"}), "error"),
    "crash": ("code that kills its own kernel", lambda: _with_answer(**{SDPA: "import os\nos._exit(3)\n"}), "error"),
    "memory": ("an answer that allocates far too much", lambda: _with_answer(**{
        SDPA: "big = torch.empty(3 * 2**30, dtype=torch.uint8).fill_(1)\n"}), "error"),
    "chatty": ("an answer that prints megabytes", lambda: _with_answer(**{SDPA: "print('x' * 3_000_000)\n"}), "error"),
    "corrupt": ("not a notebook", lambda: "this is not json {", "error"),
}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    inbox = tmp_path_factory.mktemp("inbox")
    for student, (_, make, _) in CLASS.items():
        made = make()
        text = made if isinstance(made, str) else nbformat.writes(made)
        (inbox / f"{student}_{ASSIGNMENT}.ipynb").write_bytes(text.encode("utf-8"))
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inbox.iterdir()}
    course = tmp_path_factory.mktemp("course")
    # generous enough for a loaded CI machine; the hanging submission still hits the cell limit
    limits = Limits(cell_seconds=45, submission_seconds=300, memory_mb=2048, output_bytes=1_000_000)
    grades = grade(ASSIGNMENT, course, submissions=[inbox], jobs=2, limits=limits)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inbox.iterdir()}
    with grades.open(encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"rows": rows, "course": course, "before": before, "after": after, "limits": limits, "inbox": inbox}


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(CLASS))
def test_each_awkward_submission_is_graded_as_it_deserves(graded_class, student):
    what, _, expected = CLASS[student]
    row = graded_class["rows"][student]
    score, max_score, status = float(row["score"]), float(row["max_score"]), row["status"]
    if expected == "full":
        assert score == max_score and status == "graded", f"{what}: {score}/{max_score}, {status}"
    elif expected == "zero":
        assert score == 0, f"{what}: got {score}/{max_score}"
    elif expected == "partial-flagged":
        assert score < max_score, f"{what}: got full marks"
        assert status.startswith("flagged:"), f"{what}: not flagged ({status})"
    else:
        assert status.startswith("error:"), f"{what}: status {status}"
        assert score < max_score


@pytest.mark.slow
def test_limits_and_breakage_are_named_in_the_status(graded_class):
    rows = graded_class["rows"]
    assert "not a readable notebook" in rows["corrupt"]["status"]
    assert "time limit" in rows["hang"]["status"] or "ran longer" in rows["hang"]["status"]
    assert "kernel died" in rows["crash"]["status"] or "crashed" in rows["crash"]["status"]
    assert "memory limit" in rows["memory"]["status"]
    assert "output limit" in rows["chatty"]["status"]
    assert "reference implementation" in rows["reference"]["status"]
    assert "torch.allclose" in rows["patch-allclose"]["status"]


@pytest.mark.slow
def test_nothing_is_lost_or_changed(graded_class):
    assert graded_class["before"] == graded_class["after"], "an original submission was modified"
    assert set(graded_class["rows"]) == set(CLASS), "every submission must appear in the grades"
    with (graded_class["course"] / "collected" / f"{ASSIGNMENT}.csv").open(encoding="utf-8") as handle:
        logged = list(csv.DictReader(handle))
    assert len(logged) == len(CLASS) and all(r["outcome"].startswith("collected") for r in logged)


@pytest.mark.slow
def test_regrading_is_idempotent_and_reuses_results(graded_class):
    course, limits = graded_class["course"], graded_class["limits"]
    first = (course / "grades" / f"{ASSIGNMENT}.csv").read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in (course / "results" / ASSIGNMENT).glob("*.json")}
    grade(ASSIGNMENT, course, jobs=2, limits=limits)
    assert (course / "grades" / f"{ASSIGNMENT}.csv").read_bytes() == first
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "unchanged submissions were regraded"


@pytest.mark.slow
def test_feedback_shows_messages_but_never_hidden_test_source(graded_class):
    course = graded_class["course"]
    pages = feedback(ASSIGNMENT, course)
    assert len(pages) == len(CLASS)
    page = (course / "feedback" / "patch-allclose" / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")
    assert "test_sdpa_values" in page and "failed" in page and "not divided by sqrt(d_k)" in page
    for path in pages:
        text = path.read_text(encoding="utf-8")
        assert "BEGIN HIDDEN TESTS" not in text and "gen = torch.Generator().manual_seed(41)" not in text


@pytest.mark.slow
def test_export_formats(graded_class, tmp_path):
    course = graded_class["course"]
    plain = export(course, tmp_path / "grades.csv")
    rows = list(csv.DictReader(plain.open(encoding="utf-8")))
    assert len(rows) == len(CLASS)
    assert set(rows[0]) == {"student_id", "assignment", "score", "max_score", "status"}
    assert {r["status"].split(":")[0] for r in rows} <= {"graded", "flagged", "error"}
    canvas = export(course, tmp_path / "canvas.csv", format="canvas")
    header = next(csv.reader(canvas.open(encoding="utf-8")))
    assert header[:4] == ["Student", "ID", "SIS User ID", "Section"] and header[4] == f"{ASSIGNMENT} (15)"
    assert cli(["export", "--course-dir", str(course), "--output", str(tmp_path / "cli.csv")]) == 0


@pytest.mark.parametrize("name,parent,expected", [
    ("alice_04_self_attention.ipynb", None, ("alice", 0)),
    ("Copy of bob_04_self_attention.ipynb", None, ("bob", 0)),
    ("Copy of Copy of bob_04.ipynb", None, ("bob", 0)),
    ("carol_04_self_attention-2.ipynb", None, ("carol", 2)),
    ("carol_04_self_attention (3).ipynb", None, ("carol", 3)),
    ("zoë_04.ipynb", None, ("zoë", 0)),
    ("04_self_attention.ipynb", "dave", ("dave", 0)),
    ("李雷_04.ipynb", None, ("李雷", 0)),
])
def test_student_ids_from_lms_and_colab_names(name, parent, expected):
    assert parse_name(name, parent) == expected


def test_collect_handles_resubmissions_archives_and_wrong_assignments(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    correct = nbformat.writes(_correct()).encode()
    (inbox / "erin_04_self_attention-1.ipynb").write_bytes(correct)
    (inbox / "erin_04_self_attention-2.ipynb").write_bytes(correct.replace(b"math.sqrt(d_k)", b"math.sqrt(d_k) "))
    (inbox / "notes.txt").write_text("not a notebook")
    archive = tmp_path / "lms.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("frank/04_self_attention.ipynb", correct)
        z.writestr("__MACOSX/frank/._04_self_attention.ipynb", b"junk")
    other = _without_metadata(_correct())
    for cell in other.cells:
        cell.metadata["nbgrader"] = {"grade_id": "something_else", "grade": False, "solution": False}
    (inbox / "gina_03_positional.ipynb").write_text(nbformat.writes(other), encoding="utf-8")
    before = {p: p.read_bytes() for p in inbox.iterdir()}

    report = collect(ASSIGNMENT, [inbox, archive, tmp_path / "missing.zip"], tmp_path / "course")

    assert sorted(report.collected) == ["erin", "frank", "gina"]
    erin = report.collected["erin"].read_bytes()
    assert b"math.sqrt(d_k) " in erin, "the newest resubmission (-2) must win"
    assert len(report.older) == 1 and report.older[0][0] == "erin"
    assert any("missing.zip" in origin for origin, _ in report.skipped)
    assert {p: p.read_bytes() for p in inbox.iterdir()} == before


def test_collect_reports_a_notebook_of_another_assignment(tmp_path):
    others = [p for p in sorted((REPO / "exercises").glob("*/*.ipynb")) if p.parent.name != ASSIGNMENT]
    if not others:
        pytest.skip("needs a second assignment")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(others[0], inbox / f"hal_{others[0].name}")
    shutil.copy(notebook_paths(ASSIGNMENT)[1], inbox / f"ida_{ASSIGNMENT}.ipynb")
    report = collect(ASSIGNMENT, [inbox], tmp_path / "course")
    assert list(report.collected) == ["ida"]
    assert report.skipped and f"belongs to assignment {others[0].parent.name}" in report.skipped[0][1]


def test_collect_id_pattern_overrides_the_file_name(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "submission-s1234567-attempt.ipynb").write_text(nbformat.writes(_correct()), encoding="utf-8")
    report = collect(ASSIGNMENT, [inbox], tmp_path / "course", id_pattern=r"(s\d{7})")
    assert list(report.collected) == ["s1234567"]


def test_every_verb_documents_itself(capsys):
    for verb in ("release", "collect", "grade", "feedback", "export"):
        with pytest.raises(SystemExit) as done:
            cli([verb, "--help"])
        assert done.value.code == 0
        assert "usage: python -m autograder " + verb in capsys.readouterr().out


def test_unknown_assignment_is_a_clear_error(tmp_path, capsys):
    assert cli(["grade", "99_nope", "--course-dir", str(tmp_path)]) == 2
    assert "unknown assignment" in capsys.readouterr().err


def test_grade_summary_counts_statuses_and_asks_for_review(tmp_path):
    grades = tmp_path / "grades.csv"
    grades.write_text("student_id,assignment,score,max_score,status\n"
                      "a,04,15,15.0,graded\nb,04,4,15.0,graded\nc,04,0,15.0,\"error: time limit, 120 s\"\n"
                      "d,04,5,15.0,flagged: replaces library functions: torch.allclose\n", encoding="utf-8")
    line = summarize(grades)
    assert line.startswith("4 submissions: 2 graded, 1 flagged, 1 error; mean score 6.0 of 15"), line
    assert "review the flagged and error rows" in line
    grades.write_text("student_id,assignment,score,max_score,status\na,04,15,15,graded\n", encoding="utf-8")
    assert summarize(grades) == "1 submission: 1 graded; mean score 15.0 of 15"


def test_a_grader_failure_on_one_submission_does_not_stop_the_class(tmp_path, monkeypatch):
    grading = importlib.import_module("autograder.grade")  # the package's `grade` attribute is the function

    attempts = []

    def flaky(student, assignment, submission, *args):
        attempts.append(student)
        if student == "bob" or (student == "cat" and attempts.count("cat") == 1):  # bob always, cat once
            raise SystemError("AST constructor recursion depth mismatch (before=24, after=19)")
        return grading.SubmissionResult(student, assignment, 15.0, 15.0, "graded", cache_key="k")

    course = tmp_path / "course"
    for student in ("ann", "bob", "cat"):
        folder = course / "submitted" / student / "04_self_attention"
        folder.mkdir(parents=True)
        (folder / "04_self_attention.ipynb").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(grading, "grade_one", flaky)
    rows = {r["student_id"]: r for r in csv.DictReader(grade("04_self_attention", course, jobs=2).open(encoding="utf-8"))}
    assert {s: rows[s]["status"] for s in ("ann", "cat")} == {"ann": "graded", "cat": "graded"}
    assert rows["bob"]["status"].startswith("error: the grader failed on this submission (SystemError: AST"), rows["bob"]
    assert rows["bob"]["score"] in ("0", "0.0") and float(rows["bob"]["max_score"]) > 0
    stored = grading.SubmissionResult.load(grading.result_path(course, "04_self_attention", "bob"))
    assert stored.cache_key == "", "a grader failure must be retried by the next run"
    assert sorted(attempts) == ["ann", "bob", "bob", "cat", "cat"], "a failure is retried once, in the same run"

