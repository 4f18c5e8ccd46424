"""``similarity``: which students' answers are suspiciously alike, and how much of each is the solution.

Only what students wrote is compared: the answers in the graded solution cells and the code
cells they added (helpers), found in each collected submission as ``grade`` finds them
(:func:`autograder.assemble.find_answers`). Everything the released notebook gives every student
(the stubs with their signatures and docstrings, setup and test cells) is *boilerplate*: it is
removed before comparing, so two untouched notebooks are not alike.

The comparison is `copydetect <https://github.com/blingenf/copydetect>`_'s: each answer is
tokenised by Pygments' Python lexer, with every identifier replaced by one letter and comments,
whitespace and string contents dropped, so renamed variables and added comments change nothing;
its k-grams (``noise`` filtered characters long) are fingerprints, compared as sets, so reordered
helpers and methods still match. Every k-gram is kept (a winnowing window of 1): the report is
the same on every run.

Two numbers:

* **pairs**: for two students, the share of each one's own code that the other has too (the
  larger of the two is the pair's similarity). Code that both share *with the solution* is left
  out here (it is counted in the solution column instead): two students who both wrote the
  canonical answer, or both copied the solution, are not a pair.
* **solution**: the share of a student's own code that is also in the instructor's solution.

A pair or a student at or above ``threshold`` is listed in the HTML report with the two answers
side by side, the shared code highlighted. Similar code is evidence to look at, not proof:
short answers to the same question resemble each other.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import assemble, notebook
from autograder.course import REPO_ROOT, check_assignment, exercises_dir, notebook_name, solutions_dir

SOLUTION = "(solution)"
_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@dataclass
class Pair:
    a: str
    b: str  # another student, or SOLUTION
    similarity: float  # the larger of share_a and share_b (for SOLUTION: share_a)
    share_a: float  # share of a's own code that b has too
    share_b: float
    shared: int  # filtered characters in common (in a's code)
    html_a: str = ""  # a's answers, the shared code highlighted
    html_b: str = ""


@dataclass
class SimilarityReport:
    assignment: str
    threshold: float
    pairs: list[Pair] = field(default_factory=list)  # every pair of students, most similar first
    solution: list[Pair] = field(default_factory=list)  # every student against the solution, most similar first
    skipped: dict[str, str] = field(default_factory=dict)  # student -> why not compared
    csv: Path | None = None
    html: Path | None = None

    def suspicious(self) -> list[Pair]:
        return [p for p in self.pairs if p.similarity >= self.threshold]

    def like_solution(self) -> list[Pair]:
        return [p for p in self.solution if p.similarity >= self.threshold]

    def lines(self) -> list[str]:
        """What the command line prints."""
        out = [f"{len(self.solution)} submissions compared, {len(self.pairs)} pairs; threshold {self.threshold:.0%}"]
        for p in self.suspicious():
            out.append(f"similar: {p.a} and {p.b}: {p.similarity:.0%} ({p.a} {p.share_a:.0%}, {p.b} {p.share_b:.0%})")
        for p in self.like_solution():
            out.append(f"like the solution: {p.a}: {p.similarity:.0%} of their code")
        if not self.suspicious() and not self.like_solution():
            out.append("no pair and no student at or above the threshold")
        for student, why in sorted(self.skipped.items()):
            out.append(f"not compared: {student}: {why}")
        if self.csv:
            out.append(f"report: {self.html} (answers side by side), table: {self.csv}")
        return out


def _document(cells: list[tuple[str, str]]) -> str:
    """One text per student: each answer under a comment naming it (comments do not count)."""
    return "".join(f"# ---- {name} ----\n{code.rstrip()}\n\n" for name, code in cells)


def _flat(code: str) -> str:
    return " ".join(code.split())


def stubs_of(released: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> the released stub of each solution cell (whitespace-normalised)."""
    return {notebook.grade_id(c): _flat(c.source) for c in released.cells if notebook.is_solution(c)}


def student_code(submission: nbformat.NotebookNode, source: nbformat.NotebookNode,
                 stubs: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(cell name, code) of everything the student wrote: added cells, then the answer they precede.
    An answer cell left as released (its ``stubs`` entry) is not the student's code and is left out."""
    answers = assemble.find_answers(submission, source)
    stubs = stubs or {}
    cells = []
    for grade_id in notebook.solution_ids(source):
        for number, extra in enumerate(answers.extra.get(grade_id, []), start=1):
            cells.append((f"added cell {number} before {grade_id}", extra))
        if grade_id in answers.by_id and _flat(answers.by_id[grade_id]) != stubs.get(grade_id):
            cells.append((grade_id, answers.by_id[grade_id]))
    for number, extra in enumerate(answers.extra.get(None, []), start=1):
        cells.append((f"added cell {number} after the last answer", extra))
    return cells


def solution_code(source: nbformat.NotebookNode) -> list[tuple[str, str]]:
    cells = []
    for cell in source.cells:
        if notebook.is_solution(cell):
            code = "\n".join(line for line in cell.source.splitlines() if line.strip() not in _MARKERS)
            cells.append((notebook.grade_id(cell), code))
    return cells


def boilerplate_code(released: nbformat.NotebookNode, source: nbformat.NotebookNode) -> list[str]:
    """What every student was given: each code cell of the released notebook, the stubs also without
    their ``raise NotImplementedError()`` lines (what is left once a student deletes them), and the
    source's provided (non-solution) code cells."""
    texts = []
    for cell in released.cells:
        if cell.cell_type != "code":
            continue
        texts.append(cell.source)
        if notebook.is_solution(cell):
            texts.append("\n".join(line for line in cell.source.splitlines()
                                   if "NotImplementedError" not in line and "YOUR CODE HERE" not in line))
    texts += [c.source for c in source.cells if c.cell_type == "code" and not notebook.is_solution(c)]
    return texts


class _Fingerprints:
    """copydetect fingerprints of code, with the given boilerplate removed."""

    def __init__(self, noise: int, boilerplate: list[str]):
        import numpy as np
        from copydetect import CodeFingerprint

        self._make, self.noise = CodeFingerprint, noise
        hashes = set()
        for text in boilerplate:
            hashes |= set(self.of(text).hashes)
        self.boilerplate = np.array(sorted(hashes), dtype=np.int64)

    def of(self, code: str, extra: "object | None" = None):
        import numpy as np

        boilerplate = getattr(self, "boilerplate", np.array([], dtype=np.int64))
        if extra is not None:
            boilerplate = np.union1d(boilerplate, extra)
        return self._make("answer.py", self.noise, 1, boilerplate=boilerplate, language="python", fp=io.StringIO(code))


def _compare(a, b, name_a: str, name_b: str, with_html: bool) -> Pair:
    from copydetect import compare_files
    from copydetect.utils import highlight_overlap

    shared, (share_a, share_b), (slices_a, slices_b) = compare_files(a, b)
    pair = Pair(name_a, name_b, 0.0, float(share_a), float(share_b), int(shared))
    pair.similarity = max(pair.share_a, pair.share_b) if name_b != SOLUTION else pair.share_a
    if with_html:
        def marked(fingerprint, slices) -> str:
            if slices.ndim != 2 or slices.size == 0:
                return html.escape(fingerprint.raw_code)
            return highlight_overlap(fingerprint.raw_code, slices, "<mark>", "</mark>", escape_html=True)[0]

        pair.html_a, pair.html_b = marked(a, slices_a), marked(b, slices_b)
    return pair


def similarity(
    assignment: str,
    course_dir: Path,
    threshold: float = 0.5,
    noise: int = 25,
    repo: Path = REPO_ROOT,
) -> SimilarityReport:
    """Compare every collected submission of ``assignment`` with every other one and with the solution.

    Args:
        assignment: the assignment (a folder of ``solutions/``).
        course_dir: the course directory; submissions are read from ``submitted/STUDENT/ASSIGNMENT/``.
        threshold: pairs and students at or above this similarity (0 to 1) go into the HTML report.
        noise: the shortest run of filtered code (identifiers as one letter, no whitespace or
            comments) that counts as shared; shorter common runs (``return V@V,V``) are noise.
        repo: repository root holding ``solutions/`` and ``exercises/``.

    Writes ``COURSE_DIR/similarity/ASSIGNMENT.csv`` (every pair and every student against the
    solution) and ``ASSIGNMENT.html`` (those at or above the threshold, side by side).
    """
    from autograder.grade import submissions_of

    check_assignment(assignment, repo)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    course_dir = Path(course_dir)
    name = notebook_name(assignment, repo)
    source = nbformat.read(solutions_dir(repo) / assignment / name, as_version=4)
    released = nbformat.read(exercises_dir(repo) / assignment / name, as_version=4)
    prints = _Fingerprints(noise, boilerplate_code(released, source))
    stubs = stubs_of(released)
    solution_text = _document(solution_code(source))
    solution = prints.of(solution_text)
    import numpy as np

    # every k-gram of the solution (the window is 1): boilerplate when two students are compared
    solution_kgrams = np.array(sorted(solution.hashes), dtype=np.int64)

    report = SimilarityReport(assignment, threshold)
    documents: dict[str, str] = {}
    for student, path in submissions_of(course_dir, assignment).items():
        try:
            submitted = notebook.read_notebook(path.read_bytes().decode("utf-8", errors="replace"))
        except notebook.SubmissionError as error:
            report.skipped[student] = str(error).split(" (")[0]  # the reason, not the file's first bytes
            continue
        documents[student] = _document(student_code(submitted, source, stubs))
    own = {s: prints.of(text) for s, text in documents.items()}
    beyond = {s: prints.of(text, extra=solution_kgrams) for s, text in documents.items()}
    for student in sorted(own):
        if own[student].token_coverage == 0:
            report.skipped[student] = "no code of their own (the notebook is as released)"
    compared = [s for s in sorted(own) if s not in report.skipped]
    for student in compared:
        pair = _compare(own[student], solution, student, SOLUTION, with_html=True)
        report.solution.append(pair)
    for a, b in itertools.combinations(compared, 2):
        report.pairs.append(_compare(beyond[a], beyond[b], a, b, with_html=True))
    report.pairs.sort(key=lambda p: (-p.similarity, p.a, p.b))
    report.solution.sort(key=lambda p: (-p.similarity, p.a))
    out = course_dir / "similarity"
    out.mkdir(parents=True, exist_ok=True)
    report.csv, report.html = out / f"{assignment}.csv", out / f"{assignment}.html"
    _write_csv(report)
    report.html.write_text(render(report), encoding="utf-8")
    return report


def _write_csv(report: SimilarityReport) -> None:
    with report.csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_a", "student_b", "similarity", "share_of_a", "share_of_b", "shared_characters",
                         "at_or_above_threshold"])
        for p in report.pairs + report.solution:
            writer.writerow([p.a, p.b, f"{p.similarity:.3f}", f"{p.share_a:.3f}", f"{p.share_b:.3f}", p.shared,
                             "yes" if p.similarity >= report.threshold else "no"])


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem;line-height:1.4}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}
.side{display:grid;grid-template-columns:1fr 1fr;gap:1rem}.side pre{background:#f7f7f7;padding:.6rem;
overflow-x:auto;font-size:.85em;margin:0}mark{background:#ffd58a}h3{margin-top:2rem}.note{color:#555}"""


def _side_by_side(p: Pair, title: str) -> str:
    return (f"<h3>{html.escape(title)}</h3><div class='side'><div><b>{html.escape(p.a)}</b> "
            f"({p.share_a:.0%} of their code shared)<pre>{p.html_a}</pre></div><div><b>{html.escape(p.b)}</b> "
            f"({p.share_b:.0%} shared)<pre>{p.html_b}</pre></div></div>")


def render(report: SimilarityReport) -> str:
    """The HTML report: the students against the solution, then every pair at or above the threshold."""
    rows = "".join(f"<tr><td>{html.escape(p.a)}</td><td>{p.similarity:.0%}</td></tr>" for p in report.solution)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Similarity: {html.escape(report.assignment)}"
             f"</title><style>{_STYLE}</style></head><body><h1>Similarity: {html.escape(report.assignment)}</h1>",
             "<p class='note'>Only the students' own code is compared (the answers and the cells they added; "
             "the released stubs and provided code are left out). Identifiers, comments and layout do not count. "
             "Shared code is highlighted. Similar code is a reason to look, not proof.</p>",
             f"<h2>Like each other (at or above {report.threshold:.0%}, code in the solution left out)</h2>"]
    suspicious = report.suspicious()
    parts += [_side_by_side(p, f"{p.a} and {p.b}: {p.similarity:.0%}") for p in suspicious] or ["<p>No pair.</p>"]
    parts.append(f"<h2>Like the solution</h2><table><tr><th>student</th><th>share of their code in the solution"
                 f"</th></tr>{rows}</table>")
    parts += [_side_by_side(p, f"{p.a} and the solution: {p.similarity:.0%}") for p in report.like_solution()]
    if report.skipped:
        parts.append("<h2>Not compared</h2><ul>" + "".join(
            f"<li>{html.escape(s)}: {html.escape(w)}</li>" for s, w in sorted(report.skipped.items())) + "</ul>")
    return "".join(parts) + "</body></html>"
