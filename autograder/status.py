"""A submission's status: what happened while grading it, judged into ``graded``, ``flagged`` or ``error``.

:class:`Outcome` records what happened (the file could not be read, what the integrity scan
found, how execution ended, which limits were hit, what the guard reported, whether the kernel
ran in the sandbox); :func:`status_of` is the rule, a pure function from an outcome to a
:class:`Status`. Anything that stops a fair run is an error; otherwise anything that asks for a
human look flags the submission; and a status always says when the sandbox was off. The text
stored in results and written to the grades tables is :meth:`Status.text`
(``graded``, ``flagged: <reason>; <reason>``, ``error: <reason>``, each followed by
:data:`NOT_ISOLATED` without the sandbox); :meth:`Status.parse` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GRADED, FLAGGED, ERROR = "graded", "flagged", "error"
KINDS = (GRADED, FLAGGED, ERROR)
NOT_ISOLATED = " (not isolated: graded with --no-sandbox)"

NO_ANSWERS = "no answers found in the notebook (is it the right assignment?)"
GUARD_STOPPED = "stopped the grader's guard from checking the tests"
GUARD_NOT_INSTALLED = "the grader's guard could not be installed in the kernel (a grader fault: report it)"
_TAMPERED = "changed what the checks rely on (restored before the tests): "
_TAMPERED_CHARACTERS = 300


@dataclass(frozen=True)
class Status:
    kind: str  # one of KINDS
    reasons: tuple[str, ...] = ()
    sandboxed: bool = True

    def text(self) -> str:
        body = self.kind if not self.reasons else f"{self.kind}: " + "; ".join(self.reasons)
        return body if self.sandboxed else body + NOT_ISOLATED

    @classmethod
    def parse(cls, text: str) -> Status:
        """The status a :meth:`text` wrote (its reasons as one, since a reason may hold ``; ``)."""
        sandboxed = not text.endswith(NOT_ISOLATED)
        body = text.removesuffix(NOT_ISOLATED)
        kind, _, reasons = body.partition(":")
        return cls(kind, (reasons.strip(),) if reasons.strip() else (), sandboxed)


@dataclass
class Outcome:
    """What happened to one submission. ``executed``: the executed notebook came back (the fields
    after it describe that notebook and mean nothing otherwise)."""

    sandboxed: bool = True
    unreadable: str | None = None  # why the submission is not a notebook
    grader_failure: str | None = None  # the grader's own exception, after its retry
    findings: list[str] = field(default_factory=list)  # the integrity scan's reasons
    answered: bool = True  # at least one answer was found
    problem: str | None = None  # why execution did not complete normally
    executed: bool = False
    limits_hit: list[str] = field(default_factory=list)
    guard_install_failed: bool = False
    guard_check_failed: bool = False
    tampered: list[str] = field(default_factory=list)  # what the guard put back


def grader_failure_message(error: BaseException) -> str:
    return (f"the grader failed on this submission ({type(error).__name__}: {str(error)[:200]}); "
            f"run grade again, and report it if it persists")


def status_of(outcome: Outcome) -> Status:
    """The rule: errors first (what makes the score unfair or absent), then flags, else graded."""
    for single in (outcome.unreadable, outcome.grader_failure):
        if single is not None:
            return Status(ERROR, (single,), outcome.sandboxed)
    errors = [outcome.problem] if outcome.problem else []
    flags = list(outcome.findings) + ([] if outcome.answered else [NO_ANSWERS])
    if outcome.executed:
        errors += [GUARD_NOT_INSTALLED] if outcome.guard_install_failed else []
        errors += outcome.limits_hit
        flags += [GUARD_STOPPED] if outcome.guard_check_failed else []
        flags += [_TAMPERED + "; ".join(outcome.tampered)[:_TAMPERED_CHARACTERS]] if outcome.tampered else []
    if errors:
        return Status(ERROR, tuple(errors), outcome.sandboxed)
    if flags:
        return Status(FLAGGED, tuple(flags), outcome.sandboxed)
    return Status(GRADED, (), outcome.sandboxed)

