"""What grading one submission produced, stored as JSON next to the course's other files.

``COURSE_DIR/results/ASSIGNMENT/STUDENT.json`` holds one :class:`SubmissionResult`; the grades
table, the feedback pages and the exports are all made from these files, so each step can be
re-run on its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from autograder.assemble import nbgrader_meta
from autograder.guard import MARKER


@dataclass
class TestResult:
    grade_id: str
    points: float
    max_points: float
    passed: bool
    message: str = ""  # the failure's "ExceptionName: message", never the test's source


@dataclass
class SubmissionResult:
    student_id: str
    assignment: str
    score: float
    max_score: float
    status: str  # "graded", "flagged: <reason>" or "error: <reason>"
    tests: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    submission_sha256: str = ""
    cache_key: str = ""
    seconds: float = 0.0
    sandboxed: bool = True  # False: graded with --no-sandbox

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)  # never a half-written result

    @classmethod
    def load(cls, path: Path) -> SubmissionResult:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["tests"] = [TestResult(**t) for t in data.get("tests", [])]
        return cls(**data)


def result_path(course_dir: Path, assignment: str, student: str) -> Path:
    return course_dir / "results" / assignment / f"{student}.json"


def load_results(course_dir: Path, assignment: str | None = None) -> list[SubmissionResult]:
    pattern = f"{assignment}/*.json" if assignment else "*/*.json"
    return [SubmissionResult.load(p) for p in sorted((course_dir / "results").glob(pattern))]


def max_score(source: NotebookNode) -> float:
    return float(sum(nbgrader_meta(c).get("points", 0) for c in source.cells if nbgrader_meta(c).get("grade")))


_HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*$", re.MULTILINE | re.DOTALL)
_SOLUTION_BLOCK = re.compile(r"^[ \t]*### BEGIN SOLUTION.*?### END SOLUTION[ \t]*$", re.MULTILINE | re.DOTALL)
_SHORTEST_SECRET = 12  # shorter lines (``else:``, ``return out``) say nothing and would withhold honest text
WITHHELD = "[withheld: this line quoted the grader's hidden tests or the instructor's solution]"


def _lines(text: str) -> set[str]:
    return {" ".join(line.split()) for line in text.splitlines()}


def secret_lines(source: NotebookNode) -> set[str]:
    """Lines of the hidden tests and of the instructor's solutions that students never see.

    Student code shares the kernel with the test that calls it (its frames, ``linecache``, the
    IPython history), so it can read a hidden test's source and raise it as its error message.
    Lines that the released notebook shows anyway (stubs, visible tests) are not secret.
    """
    secret, public = set(), set()
    for cell in source.cells:
        if cell.get("cell_type") != "code":
            continue
        blocks = _HIDDEN_BLOCK.findall(cell.source) + _SOLUTION_BLOCK.findall(cell.source)
        for block in blocks:
            secret |= _lines(block)
        public |= _lines(_SOLUTION_BLOCK.sub("", _HIDDEN_BLOCK.sub("", cell.source)))
    return {line for line in secret - public if len(line) >= _SHORTEST_SECRET}


def scrub(message: str, secrets: set[str]) -> str:
    """``message`` with every line that contains a secret line replaced, and a note when one was."""
    if not secrets:
        return message
    kept, withheld = [], False
    for line in message.splitlines():
        flat = " ".join(line.split())
        if len(flat) >= _SHORTEST_SECRET and any(secret in flat for secret in secrets):
            kept.append(WITHHELD)
            withheld = True
        else:
            kept.append(line)
    return "\n".join(kept) if withheld else message


def score_tests(executed: NotebookNode, source: NotebookNode) -> list[TestResult]:
    """One TestResult per graded cell of ``source``: full points unless its cell raised.

    A failure's message is what students see in their feedback: it is scrubbed of any line of
    the hidden tests or of the solutions (:func:`secret_lines`).

    Only an exception fails a test. Text on stderr (a warning from the student's code, a
    progress bar) does not: nbgrader's own rule, any stderr output fails the cell, would take
    points from correct answers.
    """
    executed_by_id = {nbgrader_meta(c).get("grade_id"): c for c in executed.cells if nbgrader_meta(c).get("grade")}
    secrets = secret_lines(source)
    tests = []
    for cell in source.cells:
        meta = nbgrader_meta(cell)
        if not meta.get("grade"):
            continue
        points = float(meta.get("points", 0))
        ran = executed_by_id.get(meta["grade_id"])
        if ran is None:
            tests.append(TestResult(meta["grade_id"], 0.0, points, False, "this test did not run"))
            continue
        errors = [o for o in ran.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            message = f"{errors[0].get('ename', 'Error')}: {errors[0].get('evalue', '')}"
            tests.append(TestResult(meta["grade_id"], 0.0, points, False, scrub(message, secrets)[:4000]))
        elif ran.get("execution_count") is None and not ran.get("outputs"):
            tests.append(TestResult(meta["grade_id"], 0.0, points, False, "this test did not run"))
        else:
            tests.append(TestResult(meta["grade_id"], points, points, True))
    return tests


def tamper_reports(executed: NotebookNode) -> list[str]:
    reports = []
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            for line in str(output.get("text", "")).splitlines():
                if line.startswith(MARKER):
                    reports.append(line[len(MARKER):].strip())
    return reports


def output_bytes(executed: NotebookNode) -> int:
    return sum(len(json.dumps(o)) for c in executed.cells for o in c.get("outputs", []))


def ran_out_of_memory(executed: NotebookNode) -> bool:
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            text = f"{output.get('ename', '')} {output.get('evalue', '')}"
            if "MemoryError" in text or "can't allocate memory" in text or "not enough memory" in text:
                return True
    return False


def timed_out(executed: NotebookNode) -> bool:
    # nbclient interrupts a cell that runs past its limit: the kernel reports KeyboardInterrupt
    return any(o.get("ename") in ("CellTimeoutError", "KeyboardInterrupt")
               for c in executed.cells for o in c.get("outputs", []))


def guard_failures(executed: NotebookNode) -> tuple[bool, bool]:
    """(the guard's install cell failed, a guard check cell failed): a failed install is the grader's
    fault (nothing of the student's had run yet); a failed check means student code got in its way."""
    install_failed = check_failed = False
    seen_install = False
    for cell in executed.cells:
        if cell.get("metadata", {}).get("autograder", {}).get("role") != "guard":
            continue
        failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        if not seen_install:
            seen_install, install_failed = True, failed
        elif failed:
            check_failed = True
    return install_failed, check_failed
