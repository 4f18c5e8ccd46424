"""The status rule (:func:`autograder.status.status_of`): from what happened to a submission to
``graded``, ``flagged: ...`` or ``error: ...``, as the grades table and the instructor guide show it."""

from __future__ import annotations

import pytest

from autograder.grade import summarize
from autograder.status import (
    ERROR,
    FLAGGED,
    GRADED,
    GUARD_NOT_INSTALLED,
    GUARD_STOPPED,
    NO_ANSWERS,
    NOT_ISOLATED,
    Outcome,
    Status,
    grader_failure_message,
    status_of,
)

TIME = "time limit: a cell ran longer than 120 s"
RAN = {"executed": True}

CASES = [
    # (what happened, the status text)
    ("a clean run", Outcome(**RAN), "graded"),
    ("not a notebook", Outcome(unreadable="not a readable notebook (no cells)"), "error: not a readable notebook (no cells)"),
    ("the grader failed", Outcome(grader_failure=grader_failure_message(SystemError("boom"))),
     "error: the grader failed on this submission (SystemError: boom); run grade again, and report it if it persists"),
    ("integrity findings", Outcome(findings=["reads environment variables", "touches sys.modules"], **RAN),
     "flagged: reads environment variables; touches sys.modules"),
    ("no answers", Outcome(answered=False, **RAN), f"flagged: {NO_ANSWERS}"),
    ("the guard was stopped", Outcome(guard_check_failed=True, **RAN), f"flagged: {GUARD_STOPPED}"),
    ("the guard put things back", Outcome(tampered=["torch.allclose", "sys.exit"], **RAN),
     "flagged: changed what the checks rely on (restored before the tests): torch.allclose; sys.exit"),
    ("a limit hit, with findings", Outcome(findings=["inspects the running program"], limits_hit=[TIME], **RAN),
     f"error: {TIME}"),
    ("the worker's problem, then the guard's install, then limits",
     Outcome(problem="the kernel died (memory limit 4096 MiB, or the code ended the process)", guard_install_failed=True,
             limits_hit=[TIME], **RAN),
     f"error: the kernel died (memory limit 4096 MiB, or the code ended the process); {GUARD_NOT_INSTALLED}; {TIME}"),
    ("no executed notebook came back", Outcome(problem="time limit: the notebook ran longer than 600 s",
                                               findings=["reads environment variables"]),
     "error: time limit: the notebook ran longer than 600 s"),
    ("what the executed notebook would say means nothing when none came back",
     Outcome(limits_hit=[TIME], guard_check_failed=True, tampered=["x"]), "graded"),
    ("findings come before the guard's reports", Outcome(findings=["touches sys.modules"], answered=False,
                                                         guard_check_failed=True, **RAN),
     f"flagged: touches sys.modules; {NO_ANSWERS}; {GUARD_STOPPED}"),
    ("without the sandbox", Outcome(sandboxed=False, **RAN), "graded" + NOT_ISOLATED),
    ("unreadable, without the sandbox", Outcome(sandboxed=False, unreadable="not a readable notebook (x)"),
     "error: not a readable notebook (x)" + NOT_ISOLATED),
]


@pytest.mark.parametrize("outcome,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_what_happened_decides_the_status(outcome, expected):
    assert status_of(outcome).text() == expected


def test_a_long_tamper_report_is_cut():
    status = status_of(Outcome(tampered=["torch.x" * 100], **RAN))
    assert status.kind == FLAGGED and len(status.text()) == len(
        "flagged: changed what the checks rely on (restored before the tests): ") + 300, status.text()


@pytest.mark.parametrize("outcome", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_the_status_text_reads_back(outcome):
    status = status_of(outcome)
    parsed = Status.parse(status.text())
    assert (parsed.kind, parsed.sandboxed, parsed.text()) == (status.kind, status.sandboxed, status.text())
    assert parsed.kind in (GRADED, FLAGGED, ERROR)


def test_the_summary_counts_the_kinds_and_the_unisolated(tmp_path):
    rows = [("a", 15, "graded"), ("b", 3, f"error: {TIME}"), ("c", 6, "flagged: x: y" + NOT_ISOLATED)]
    grades = tmp_path / "grades.csv"
    grades.write_text("student_id,assignment,score,max_score,status\n"
                      + "".join(f'{s},04,{p},15.0,"{t}"\n' for s, p, t in rows), encoding="utf-8")
    assert summarize(grades) == ("3 submissions: 1 graded, 1 flagged, 1 error; mean score 8.0 of 15 (review the flagged "
                                 "and error rows before publishing); 1 graded WITHOUT the sandbox (--no-sandbox): "
                                 "their code could reach this machine")
    grades.write_text("student_id,assignment,score,max_score,status\n", encoding="utf-8")
    assert summarize(grades) == "no submissions to grade: run collect first"
