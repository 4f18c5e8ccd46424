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
    expect_layer_options,
    expect_layer_structure,
    expect_own_implementation,
    expect_param_count,
    expect_raises,
    expect_rows_sum_to_one,
    expect_shape,
    expect_stack_structure,
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


# ------------------------------------------------------------------ what the stacks of chapters 8 and 9 share


class _Layer(nn.Module):
    def __init__(self, d=8, d_ff=12, heads=2, dropout=0.0, two=False):
        super().__init__()
        from llm_foundations.layers import FeedForward, ResidualSublayer
        self.self_attn = MultiHeadAttention(d, heads, dropout=dropout)
        if two:
            self.cross_attn = MultiHeadAttention(d, heads, dropout=dropout)
        self.ffn = FeedForward(d, d_ff, dropout=dropout)
        self.sublayers = nn.ModuleList(ResidualSublayer(d, dropout) for _ in range(3 if two else 2))

    def forward(self, x):
        x = self.sublayers[0](x, lambda h: self.self_attn(h, h, h))
        return self.sublayers[-1](x, self.ffn)


def _norms(layer):
    return [sub.norm for sub in layer.sublayers]


def _count(d=8, d_ff=12, attentions=1):
    return attentions * 4 * (d * d + d) + 2 * d * d_ff + d_ff + d + (attentions + 1) * 2 * d


def test_expect_layer_structure_accepts_a_layer_and_names_each_fault():
    layer = _Layer()
    args = dict(attention_type=MultiHeadAttention, d_model=8, d_ff=12, expected_params=_count())
    expect_layer_structure(layer, "L", attentions=("self_attn",), norms=_norms(layer), **args)
    two = _Layer(two=True)
    expect_layer_structure(two, "L", attentions=("self_attn", "cross_attn"), norms=_norms(two),
                           **{**args, "expected_params": _count(attentions=2)})
    with pytest.raises(AssertionError, match="layer.cross_attn must be MultiHeadAttention"):
        expect_layer_structure(layer, "L", attentions=("self_attn", "cross_attn"), norms=_norms(layer), **args)
    two.cross_attn = two.self_attn
    with pytest.raises(AssertionError, match="are the same module"):
        expect_layer_structure(two, "L", attentions=("self_attn", "cross_attn"), norms=_norms(two), **args)
    with pytest.raises(AssertionError, match=r"FeedForward\(d_model=8, d_ff=16\)"):
        expect_layer_structure(layer, "L", attentions=("self_attn",), norms=_norms(layer), **{**args, "d_ff": 16})
    with pytest.raises(AssertionError, match=r"two separate LayerNorms .* found 1\. Hint: \[block\] \* 2"):
        expect_layer_structure(layer, "L", attentions=("self_attn",), norms=_norms(layer)[:1], **args)
    with pytest.raises(AssertionError, match=rf"L has {_count()} parameters, expected 7 \(made of\)"):
        expect_layer_structure(layer, "L", attentions=("self_attn",), norms=_norms(layer),
                               **{**args, "expected_params": 7}, params_detail="(made of)")


def test_expect_layer_options_checks_heads_modules_count_and_dropout():
    x = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0))
    args = dict(attentions=("self_attn",), pytorch_modules=(nn.MultiheadAttention,), expected_params=_count())
    layer = _Layer(dropout=0.5)
    expect_layer_options(layer, (x,), "L", n_heads=2, **args)
    assert not layer.training
    with pytest.raises(AssertionError, match="must have n_heads heads"):
        expect_layer_options(layer, (x,), "L", n_heads=4, **args)
    with pytest.raises(AssertionError, match="two calls must differ"):
        expect_layer_options(_Layer(dropout=0.0), (x,), "L", n_heads=2, **args)
    wrapped = _Layer(dropout=0.5)
    wrapped.extra = nn.MultiheadAttention(8, 2)
    with pytest.raises(AssertionError, match=r"_Layer must not wrap PyTorch's nn.MultiheadAttention"):
        expect_layer_options(wrapped, (x,), "L", n_heads=2, **args)


def test_expect_stack_structure_checks_layers_attributes_norm_and_count():
    from llm_foundations.layers import LayerNorm

    class Stack(nn.Module):
        def __init__(self, norm_first, layers=None):
            super().__init__()
            self.embedding = nn.Embedding(10, 8)
            self.layers = layers if layers is not None else nn.ModuleList(_Layer() for _ in range(2))
            self.norm = LayerNorm(8) if norm_first else None

    def check(stack, norm_first=True, **options):
        expected = 10 * 8 + 2 * _count() + (16 if norm_first else 0)
        expect_stack_structure(stack, "S", layer_type=_Layer, n_layers=2, vocab_size=10, d_model=8,
                               norm_first=norm_first, expected_params=expected, layer_params=_count(), **options)

    check(Stack(True), needs={"embedding": "an embedding"})
    check(Stack(False), False)
    with pytest.raises(AssertionError, match="an nn.ModuleList of 2 _Layer"):
        check(Stack(True, nn.ModuleList([_Layer()])))
    shared = _Layer()
    with pytest.raises(AssertionError, match="holds the same layer several times"):
        check(Stack(True, nn.ModuleList([shared, shared])))
    with pytest.raises(AssertionError, match="S needs an attribute `head`: the output layer"):
        check(Stack(True), needs={"head": "the output layer"})
    with pytest.raises(AssertionError, match=r"S.norm must be LayerNorm\(8\)"):
        check(Stack(False), True)
    post = Stack(False)
    post.norm = nn.Identity()
    with pytest.raises(AssertionError, match="S.norm must be None"):
        check(post, False)
    check(post, False, post_ln_norm_may_be_empty=True)
    post.norm = LayerNorm(8)
    with pytest.raises(AssertionError, match="S.norm must be None"):
        check(post, False, post_ln_norm_may_be_empty=True)
    frozen = Stack(True)
    frozen.embedding.weight.requires_grad_(False)
    with pytest.raises(AssertionError, match=r"S has \d+ trainable parameters, expected \d+: the embedding 10\*8, "
                                             r"2 layers of \d+, a final LayerNorm 2\*8"):
        check(frozen)
    with pytest.raises(AssertionError, match="has 0 parameters, expected 1."):
        expect_param_count(nn.Identity(), 1, "it")
