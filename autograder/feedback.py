"""``feedback``: one HTML page per student and assignment, made from the stored results.

A page lists every graded test with its points and, for a failed one, the message the test
raised (what was expected, what the student's code returned, a hint). It never shows a test's
source, so hidden tests stay hidden.
"""

from __future__ import annotations

import html
from pathlib import Path

from autograder.results import SubmissionResult, load_results

_STYLE = """body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;vertical-align:top;text-align:left}
.pass{color:#1b7f3b}.fail{color:#b3261e}pre{white-space:pre-wrap;margin:0;font-size:.9em}
.status{padding:.5rem;background:#f3f3f3;border-radius:4px}"""


def render(result: SubmissionResult) -> str:
    rows = []
    for test in result.tests:
        verdict = '<span class="pass">passed</span>' if test.passed else '<span class="fail">failed</span>'
        message = f"<pre>{html.escape(test.message)}</pre>" if test.message else ""
        rows.append(f"<tr><td>{html.escape(test.grade_id)}</td><td>{verdict}</td>"
                    f"<td>{test.points:g} / {test.max_points:g}</td><td>{message}</td></tr>")
    table = ("<table><tr><th>test</th><th>result</th><th>points</th><th>message</th></tr>"
             + "".join(rows) + "</table>") if rows else "<p>No test ran.</p>"
    title = f"{html.escape(result.assignment)}: feedback for {html.escape(result.student_id)}"
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{title}</h1>"
            f"<p><strong>Score: {result.score:g} / {result.max_score:g}</strong></p>"
            f"<p class=\"status\">Status: {html.escape(result.status)}</p>{table}</body></html>\n")


def feedback(assignment: str, course_dir: Path) -> list[Path]:
    """Write ``COURSE_DIR/feedback/STUDENT/ASSIGNMENT.html`` for every graded submission."""
    written = []
    for result in load_results(Path(course_dir), assignment):
        path = Path(course_dir) / "feedback" / result.student_id / f"{assignment}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(result), encoding="utf-8")
        written.append(path)
    return written
