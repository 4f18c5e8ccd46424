"""The checks that exercise test cells are written with."""

import functools
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llm_foundations.attention import MultiHeadAttention, merge_heads, scaled_dot_product_attention, split_heads
from llm_foundations.checks.ch04_self_attention import multihead_hint, scaled_dot_product_attention_mistakes
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
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 4, 5)
    mistakes = scaled_dot_product_attention_mistakes(q, k, v)
    wrong_out, _ = mistakes["the scores are not divided by sqrt(d_k)"]
    right, _ = scaled_dot_product_attention(q, k, v)
    with pytest.raises(AssertionError) as failure:
        expect_close(wrong_out, right, "the output", hints={m: o for m, (o, w) in mistakes.items()})
    message = str(failure.value)
    assert "expected tensor of shape (2, 3, 5)" in message and "got      tensor" in message
    assert "not divided by sqrt(d_k)" in message
    expect_close(right.clone(), right, "the output")  # passes silently


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


def test_multihead_hint_names_the_wrong_building_block_and_is_lazy():
    def unscaled(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, -1)
        return weights @ v, weights

    def split_without_transpose(x, n_heads):
        return x.reshape(x.size(0), n_heads, x.size(1), -1)

    def stub(*args):
        raise NotImplementedError()

    general = "project, split, attend, merge, project"
    assert multihead_hint(general, scaled_dot_product_attention, split_heads, merge_heads)() == general
    assert "your scaled_dot_product_attention does not pass" in multihead_hint(general, unscaled, split_heads, merge_heads)()
    assert "your split_heads does not pass" in multihead_hint(general, scaled_dot_product_attention,
                                                             split_without_transpose, merge_heads)()
    assert "your merge_heads does not pass" in multihead_hint(general, scaled_dot_product_attention, split_heads, stub)()
    # only looked for when the values are wrong
    expect_close(torch.ones(2), torch.ones(2), "same", hint=multihead_hint(general, stub, stub, stub))
    with pytest.raises(AssertionError, match="your split_heads does not pass"):
        expect_close(torch.zeros(2), torch.ones(2), "wrong", hint=multihead_hint(general, scaled_dot_product_attention,
                                                                                   stub, merge_heads))
