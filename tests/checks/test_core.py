"""The checks that exercise test cells are written with."""

import functools
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llm_foundations.attention import MultiHeadAttention, scaled_dot_product_attention
from llm_foundations.checks.core import (
    CALLS_REFERENCE,
    call,
    codes_of,
    expect_close,
    expect_own_implementation,
    expect_raises,
    expect_rows_sum_to_one,
    expect_shape,
    forbid_builtins,
    forbid_calls,
    forbid_torch_functions,
)


def test_expect_close_reports_expected_got_and_the_matching_mistake():
    right = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    hints = {"the rows are swapped": right.flip(0), "the signs are flipped": -right, "wrong shape": right.T}
    with pytest.raises(AssertionError) as failure:
        expect_close(-right, right, "the output", hints=hints)
    message = str(failure.value)
    assert "Wrong values in the output: the largest difference is 12 at index (1, 2)." in message
    assert "expected tensor of shape (2, 3): [1, 2, 3, 4, 5, 6]" in message and "got      tensor of shape (2, 3): [-1" in message
    assert message.endswith("Hint: this is what happens when the signs are flipped.")
    with pytest.raises(AssertionError, match=r"Hint: try harder$"):
        expect_close(right + 1, right, "the output", hints=hints, hint=lambda: "try harder")
    expect_close(right.clone() + 1e-7, right, "the output", hint=lambda: 1 / 0)  # passes silently, the hint not computed


def test_expect_close_explains_nan_and_shape_mistakes():
    with pytest.raises(AssertionError, match="NaN"):
        expect_close(torch.tensor([float("nan"), 1.0]), torch.tensor([0.0, 1.0]), "x")
    with pytest.raises(AssertionError, match="wrong order"):
        expect_close(torch.zeros(3, 2), torch.zeros(2, 3), "x")
    with pytest.raises(AssertionError, match="expected a torch.Tensor"):
        expect_close([1.0], torch.zeros(1), "x")
    with pytest.raises(AssertionError, match=r"expected shape \(4,\)"):
        expect_shape(torch.zeros(3), (4,), "x")


def test_checks_do_not_trust_a_patched_allclose(monkeypatch):
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    with pytest.raises(AssertionError):
        expect_close(torch.ones(2), torch.zeros(2), "x")


def test_rows_sum_to_one_and_raises():
    expect_rows_sum_to_one(torch.softmax(torch.randn(3, 4), -1), "w")
    with pytest.raises(AssertionError, match="dim=-1"):
        expect_rows_sum_to_one(torch.softmax(torch.randn(3, 4), 0), "w")
    expect_raises(ValueError, lambda: int("x"), "int('x')")
    with pytest.raises(AssertionError, match="nothing was raised"):
        expect_raises(ValueError, lambda: 1, "f")
    with pytest.raises(AssertionError, match="got TypeError"):
        expect_raises(ValueError, lambda: len(1), "f")


@pytest.mark.parametrize("builtin", [
    lambda q: F.scaled_dot_product_attention(q, q, q),
    lambda q: torch._C._nn.scaled_dot_product_attention(q, q, q),
    lambda q: torch.ops.aten._scaled_dot_product_attention_math(q, q, q),
    lambda q: nn.MultiheadAttention(4, 2, batch_first=True).eval()(q, q, q),
], ids=["functional", "C binding", "aten op", "nn.MultiheadAttention"])
def test_forbid_builtins_catches_every_route_to_fused_attention(builtin):
    q = torch.randn(2, 3, 4)
    with pytest.raises(AssertionError, match="built-in attention"), torch.no_grad():
        with forbid_builtins("this answer"):
            builtin(q)


def test_forbid_builtins_lets_hand_written_attention_through():
    q = torch.randn(2, 3, 4)
    with forbid_builtins("ours"):
        scaled_dot_product_attention(q, q, q, torch.ones(3, 3, dtype=torch.bool))
        MultiHeadAttention(4, 2)(q, q, q)


def test_own_implementation_and_call_hints():
    with pytest.raises(AssertionError, match="reference package"):
        expect_own_implementation(scaled_dot_product_attention, "sdpa")
    expect_own_implementation(lambda: None, "mine")

    def stub():
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not written this part yet"):
        call(stub, what="stub()")
    with pytest.raises(AssertionError, match="contiguous"):
        call(lambda: torch.zeros(2, 3).t().view(6), what="view")


def test_forbid_calls_sees_the_reference_under_any_name_and_reports_the_cause():
    def reference(x):
        return x + 1

    @functools.wraps(reference)
    def decorated(x):
        return reference(x)

    alias = reference
    rules = [(codes_of([decorated]), CALLS_REFERENCE)]  # the decorator is unwrapped
    with pytest.raises(AssertionError, match=r"answer calls the course's reference code \(.*reference\)"):
        with forbid_calls("answer", rules):
            alias(1)
    # the block failing after the forbidden call: the call is what the student hears about
    with pytest.raises(AssertionError, match="reference code"):
        with forbid_calls("answer", rules):
            assert alias(1) == 3
    # an own implementation passes, and its own failures are its own
    with forbid_calls("answer", rules):
        assert (lambda x: x + 1)(1) == 2
    with pytest.raises(ZeroDivisionError), forbid_calls("answer", rules):
        1 / 0  # noqa: B018


def test_forbid_calls_keeps_an_earlier_profile_hook_and_restores_it():
    seen = []

    def outer(frame, event, arg):
        if event == "call":
            seen.append(frame.f_code.co_name)

    def inner_function():
        return 1

    previous = sys.getprofile()
    sys.setprofile(outer)
    try:
        with forbid_calls("answer", [(lambda code: False, CALLS_REFERENCE)]):
            inner_function()
        assert sys.getprofile() is outer
    finally:
        sys.setprofile(previous)
    assert "inner_function" in seen


def test_forbid_torch_functions_message_may_quote_code_with_braces():
    message = "{what} calls {used}; use {x: 1}-style dicts? No: build it from x @ y."
    with pytest.raises(AssertionError, match=r"mine calls softmax; use \{x: 1\}-style"):
        with forbid_torch_functions("mine", ("softmax",), message):
            torch.softmax(torch.randn(3), -1)
