"""The chapter-1 checks (llm_foundations.checks.ch01_overview): every named mistake is that mistake,
the PyTorch twins reproduce the reference, and the watchers catch loops, built-ins and the reference."""

import math

import pytest
import torch
from torch import nn

import llm_foundations.checks.ch01_overview as ch01
from llm_foundations.attention import MultiHeadAttention
from llm_foundations.overview import rnn_forward, self_attention_forward, transformer_parameter_count
from llm_foundations.checks.ch01_overview import (
    expect_count,
    expect_no_loop_over_positions,
    forbid_reference,
    forbid_torch_calls,
    parameter_count_mistakes,
    pytorch_rnn_twin,
    pytorch_transformer_parameter_count,
    record_torch_calls,
    rnn_forward_mistakes,
    self_attention_mistakes,
)


def _rnn_weights(d_in, d_h, dtype=torch.float32):
    return (torch.randn(d_in, d_h, dtype=dtype) / math.sqrt(d_in), torch.randn(d_h, d_h, dtype=dtype) / math.sqrt(d_h),
            torch.randn(d_h, dtype=dtype))


def test_rnn_mistakes_all_differ_from_the_right_answer():
    w_xh, w_hh, b_h = _rnn_weights(3, 4)
    x, h0 = torch.randn(2, 5, 3) * 2, torch.randn(2, 4)
    right, right_last = rnn_forward(x, w_xh, w_hh, b_h, h0)
    mistakes = rnn_forward_mistakes(x, w_xh, w_hh, b_h, h0)
    assert len(mistakes) == 7
    for why, (outputs, last) in mistakes.items():
        assert not (torch.allclose(outputs, right) and torch.allclose(last, right_last)), why


def test_attention_mistakes_all_differ_from_the_right_answer():
    x = torch.randn(2, 5, 6)
    w_q, w_k, w_v = torch.randn(6, 3), torch.randn(6, 3), torch.randn(6, 3)
    right = self_attention_forward(x, w_q, w_k, w_v)
    for why, wrong in self_attention_mistakes(x, w_q, w_k, w_v).items():
        assert not torch.allclose(wrong, right), why


def test_parameter_count_mistakes_are_all_different_and_wrong():
    sizes = (100, 12, 3, 30, 2)
    mistakes = parameter_count_mistakes(*sizes)
    assert len(set(mistakes.values())) == len(mistakes)
    assert transformer_parameter_count(*sizes) not in mistakes.values()
    with pytest.raises(AssertionError, match="ties the source embedding"):
        expect_count(mistakes[next(k for k in mistakes if "generator" in k)], transformer_parameter_count(*sizes),
                     "the count", hints=mistakes)
    with pytest.raises(AssertionError, match="expected an int"):
        expect_count(12.0, 12, "the count")


def test_watchers_catch_loops_builtins_and_the_reference():
    def looped(x, w_q, w_k, w_v):
        q, k, v = x @ w_q, x @ w_k, x @ w_v
        rows = [torch.softmax(q[:, i:i + 1] @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), -1) @ v
                for i in range(x.size(1))]
        return torch.cat(rows, dim=1)

    w = torch.randn(4, 4)
    with pytest.raises(AssertionError, match="loop over the positions"):
        expect_no_loop_over_positions(looped, lambda n: (torch.randn(2, n, 4), w, w, w), "looped")
    with pytest.raises(AssertionError, match="rnn_tanh"):
        with forbid_torch_calls("nn.RNN", ("rnn_tanh",), "Write the loop."):
            nn.RNN(3, 4, batch_first=True)(torch.randn(2, 5, 3))
    with pytest.raises(AssertionError, match="reference code"):
        with forbid_reference("wrapper"):
            transformer_parameter_count(10, 4, 2, 8, 1)
    with forbid_reference("own code"):  # code outside the package is fine
        torch.softmax(torch.randn(3), -1)
    with record_torch_calls() as names:
        transformer_parameter_count(10, 4, 2, 8, 1)
    assert names == [], "the closed form makes no torch calls"


def test_each_rnn_mistake_is_the_mistake_it_names():
    w_xh, w_hh, b_h = _rnn_weights(3, 4, torch.float64)
    x, h0 = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    m = {why.split(" (")[0]: value for why, value in rnn_forward_mistakes(x, w_xh, w_hh, b_h, h0).items()}
    right, right_last = rnn_forward(x, w_xh, w_hh, b_h, h0)
    no_bias = rnn_forward(x, w_xh, w_hh, torch.zeros_like(b_h), h0)
    torch.testing.assert_close(m["the bias b_h is left out"], no_bias)
    from_zeros = rnn_forward(x, w_xh, w_hh, b_h)
    torch.testing.assert_close(m["h0 is ignored: the recurrence starts from zeros even when h0 is given"], from_zeros)
    shifted, last = m["outputs[:, t] holds the state before step t"]
    torch.testing.assert_close(shifted, torch.cat([h0[:, None], right[:, :-1]], 1))
    torch.testing.assert_close(last, right_last)
    torch.testing.assert_close(m["h_last is the state after the first step instead of the last"], (right, right[:, 0]))
    relu_h = h0
    for t in range(5):
        relu_h = torch.relu(x[:, t] @ w_xh + relu_h @ w_hh + b_h)
    torch.testing.assert_close(m["ReLU is used instead of tanh"][1], relu_h)
    never_carried = torch.tanh(x @ w_xh + (h0 @ w_hh)[:, None] + b_h)
    torch.testing.assert_close(m["every step starts from h0 instead of the previous step's state"][0], never_carried)
    # without h0 there is no h0 to ignore
    assert not any("h0 is ignored" in why for why in rnn_forward_mistakes(x, w_xh, w_hh, b_h))


def test_pytorch_rnn_twin_reproduces_rnn_forward():
    w_xh, w_hh, b_h = _rnn_weights(3, 5, torch.float64)
    x, h0 = torch.randn(2, 6, 3, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    twin = pytorch_rnn_twin(w_xh, w_hh, b_h)
    assert isinstance(twin, nn.RNN) and twin.weight_ih_l0.dtype == torch.float64
    outputs, h_n = twin(x, h0[None])
    right, right_last = rnn_forward(x, w_xh, w_hh, b_h, h0)
    torch.testing.assert_close(outputs, right)
    torch.testing.assert_close(h_n[0], right_last)


def test_each_attention_mistake_is_the_mistake_it_names():
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    w_q, w_k, w_v = (torch.randn(6, 4, dtype=torch.float64) for _ in range(3))
    m = self_attention_mistakes(x, w_q, w_k, w_v)
    # scaling the queries by c scales every score by c: the unscaled scores are sqrt(d_k) times the right ones
    torch.testing.assert_close(m["the scores are not divided by sqrt(d_k)"], self_attention_forward(x, w_q * 2, w_k, w_v))
    torch.testing.assert_close(m["the scores are divided by d_k instead of sqrt(d_k)"],
                               self_attention_forward(x, w_q / 2, w_k, w_v))
    torch.testing.assert_close(m["the values are made with w_k instead of w_v"], self_attention_forward(x, w_q, w_k, w_k))
    torch.testing.assert_close(m["the scores are divided by sqrt(d) (the input width) instead of sqrt(d_k)"],
                               self_attention_forward(x, w_q * 2 / math.sqrt(6), w_k, w_v))
    scores = (x @ w_q) @ (x @ w_k).transpose(-2, -1) / 2
    by_query = torch.softmax(scores, -2)
    assert torch.allclose(by_query.sum(-2), torch.ones(2, 5, dtype=torch.float64))
    torch.testing.assert_close(m["the softmax runs over the queries (dim=-2) instead of over the keys (dim=-1)"],
                               by_query @ (x @ w_v))
    # with d_k == d, dividing by sqrt(d) is right: no such mistake is listed
    assert len(self_attention_mistakes(x, *(torch.randn(6, 6, dtype=torch.float64) for _ in range(3)))) == 4


@pytest.mark.parametrize("sizes", [(100, 12, 3, 30, 2), (7, 4, 2, 8, 1)])
def test_each_parameter_count_mistake_is_the_mistake_it_names(sizes):
    vocab, d, heads, d_ff, n = sizes
    right = transformer_parameter_count(*sizes)
    attention, norms = 4 * (d * d + d), 5 * n + 2  # per attention; LayerNorms in the whole model
    m = {why.split(" (")[0].split(",")[0]: count for why, count in parameter_count_mistakes(*sizes).items()}
    assert m["the biases of the linear layers are not counted"] == right - n * (12 * d + 2 * (d_ff + d))
    assert m["the feed-forward biases are not counted"] == right - 2 * n * (d_ff + d)
    assert m["two V x d matrices are counted"] == right + vocab * d
    assert m["the embedding is counted three times"] == right + 2 * vocab * d
    assert m["the LayerNorms are not counted"] == right - 2 * d * norms
    assert m["a LayerNorm is counted as d_model parameters"] == right - d * norms
    assert m["the two final LayerNorms of the pre-LN model"] == right - 4 * d
    assert m["the encoder layers are given a cross-attention too"] == right + n * (attention + 2 * d)
    assert m["the decoder layers are given one attention"] == right - n * (attention + 2 * d)
    assert m["each head gets its own d_model x d_model query"] == right + 3 * n * 3 * (heads - 1) * (d * d + d)


@pytest.mark.parametrize("sizes", [(1, 1, 1, 1, 1), (100, 12, 3, 30, 2), (37000, 512, 8, 2048, 6)])
def test_pytorch_transformer_parameter_count_is_the_reference_count(sizes):
    assert pytorch_transformer_parameter_count(*sizes) == transformer_parameter_count(*sizes)


def test_expect_count_accepts_integers_and_names_hints():
    assert expect_count(torch.tensor(12).item(), 12, "n") == 12
    with pytest.raises(AssertionError, match="expected an int, got bool"):
        expect_count(True, 1, "n")
    with pytest.raises(AssertionError, match=r"expected 10, got 12 \(a difference of \+2\)\.\nHint: count again"):
        expect_count(12, 10, "n", hint="count again")
    with pytest.raises(AssertionError, match="this is what you get when biases are left out"):
        expect_count(8, 10, "n", hints={"norms are left out": 9, "biases are left out": 8})


def test_expect_no_loop_over_positions_lets_a_parallel_answer_through():
    w = torch.randn(4, 4)
    expect_no_loop_over_positions(self_attention_forward, lambda n: (torch.randn(2, n, 4), w, w, w), "parallel")


def test_forbid_reference_catches_a_direct_call_a_wrapper_and_a_subclass():
    x = torch.randn(1, 3, 4)
    w = torch.randn(4, 4)

    def wrapper(x, w_q, w_k, w_v):
        return self_attention_forward(x, w_q, w_k, w_v) * 1.0

    class Subclass(MultiHeadAttention):
        pass

    for name, run in [("direct", lambda: self_attention_forward(x, w, w, w)), ("wrapper", lambda: wrapper(x, w, w, w)),
                      ("subclass", lambda: Subclass(4, 2)(x, x, x))]:
        with pytest.raises(AssertionError, match=r"calls the course's reference code \(llm_foundations\."):
            with forbid_reference(name):
                run()
    with forbid_reference("honest code"):  # its own code, and the package's non-reference helpers
        torch.softmax((x @ w) @ (x @ w).transpose(-2, -1) / 2, -1) @ (x @ w)
        pytorch_rnn_twin(*_rnn_weights(4, 3))(x)


def test_forbid_torch_calls_lets_other_calls_through():
    with forbid_torch_calls("rnn_forward", ch01.BUILTIN_RNN, "Write the loop."):
        rnn_forward(torch.randn(1, 2, 3), *_rnn_weights(3, 2))
    with pytest.raises(AssertionError, match=r"rnn_forward calls PyTorch's built-in \(.*lstm.*\)\. Write the loop\."):
        with forbid_torch_calls("rnn_forward", ch01.BUILTIN_RNN, "Write the loop."):
            nn.LSTM(3, 2, batch_first=True)(torch.randn(1, 2, 3))


def test_call_turns_known_errors_into_hints(expect_hint_table):
    expect_hint_table(ch01.call, ch01._ERROR_HINTS)
    with pytest.raises(AssertionError, match="In the RNN, x_t is"):
        ch01.call(lambda: torch.randn(2, 3) @ torch.randn(4, 5), what="rnn_forward")
    with pytest.raises(AssertionError, match="x.new_zeros"):
        ch01.call(lambda: torch.randn(2, 3) @ torch.randn(3, 5, dtype=torch.float64), what="rnn_forward")
