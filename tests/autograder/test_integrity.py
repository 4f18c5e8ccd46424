"""The integrity scan (:mod:`autograder.integrity`): reading the student's code, never running it,
for what an honest answer never needs. It flags for review; it never changes a score."""

from __future__ import annotations

import pytest

from autograder.assemble import Answers
from autograder.integrity import review, scan

HONEST = "def f(q, k):\n    scores = q @ k.transpose(-2, -1)\n    return torch.softmax(scores, dim=-1)\n"


@pytest.mark.parametrize("code,reason", [
    ("if os.environ.get('NBGRADER_EXECUTION'): pass", "looks for the grading environment"),
    ("x = os.getenv('HOME')", "reads environment variables"),
    ("get_ipython().set_custom_exc((Exception,), h)", "installs an exception handler"),
    ("frame = sys._getframe(1)", "inspects the running program"),
    ("sys.modules['torch'] = None", "touches sys.modules"),
    ("import autograder", "refers to the autograder"),
    ("import subprocess", "starts or signals other processes"),
    ("import socket", "opens network connections"),
    ("import linecache", "reads the notebook's own source or history"),
])
def test_each_pattern_is_reported_with_its_reason(code, reason):
    assert reason in scan([code], set()), f"{code!r} should be reported as {reason!r}, got {scan([code], set())}"


def test_an_honest_answer_raises_nothing():
    assert scan([HONEST], {"f"}) == []


def test_replaced_library_functions_are_named():
    reasons = scan(["torch.allclose = lambda *a, **k: True", "setattr(torch.Tensor, '__eq__', None)"], set())
    assert reasons == ["replaces library functions: setattr(torch.Tensor, ...), torch.allclose"], reasons


def test_importing_the_reference_for_the_graded_function_is_named_but_other_imports_are_not():
    reasons = scan(["from llm_foundations.attention import scaled_dot_product_attention, padding_mask"],
                   {"scaled_dot_product_attention"})
    assert reasons == ["imports the reference implementation: llm_foundations.attention.scaled_dot_product_attention"]
    assert scan(["from llm_foundations.attention import padding_mask"], {"scaled_dot_product_attention"}) == []


def test_unparsable_code_is_only_matched_against_the_patterns():
    for source in ("def f(:\n", "x = 1\x00", "(" * 300 + ")" * 300, "import socket\ndef f(:"):
        scan([source], {"f"})  # no exception
    assert scan(["import socket\ndef f(:"], set()) == ["opens network connections"]


def test_review_scans_the_answers_and_the_added_cells_against_the_graded_names():
    answers = Answers(by_id={"f": HONEST}, extra={"f": ["import subprocess"], None: []}, missing=["g"])
    reasons = review(answers)
    assert reasons == ["starts or signals other processes"], reasons
    answers.extra[None] = ["from llm_foundations.x import g"]
    assert "imports the reference implementation: llm_foundations.x.g" in review(answers), (
        "a missing answer's name is graded too")
