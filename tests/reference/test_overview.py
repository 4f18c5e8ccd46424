"""llm_foundations.overview (chapter 1) against PyTorch's own modules, plus the chapter's diagram."""

import math

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from torch import nn

from llm_foundations.attention import MultiHeadAttention
from llm_foundations.diagrams import CHAPTERS, COMPONENTS, draw_transformer
from llm_foundations.overview import (
    last_output_gradient_norms,
    parameter_count_breakdown,
    rnn_forward,
    self_attention_forward,
    transformer_parameter_count,
)
from llm_foundations.checks.ch01_overview import (
    expect_no_loop_over_positions,
    pytorch_rnn_twin,
    pytorch_transformer_parameter_count,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _rnn_weights(d_in, d_h, dtype=torch.float32):
    return (torch.randn(d_in, d_h, dtype=dtype) / math.sqrt(d_in), torch.randn(d_h, d_h, dtype=dtype) / math.sqrt(d_h),
            torch.randn(d_h, dtype=dtype))


# ----------------------------------------------------------------------------------------- rnn_forward


@pytest.mark.parametrize("batch,length,d_in,d_h", [(1, 1, 1, 1), (2, 7, 3, 5), (4, 12, 9, 4), (3, 5, 6, 6)])
@pytest.mark.parametrize("with_h0", [False, True])
def test_rnn_forward_matches_nn_rnn(batch, length, d_in, d_h, with_h0):
    w_xh, w_hh, b_h = _rnn_weights(d_in, d_h)
    x = torch.randn(batch, length, d_in)
    h0 = torch.randn(batch, d_h) if with_h0 else None
    outputs, h_last = rnn_forward(x, w_xh, w_hh, b_h, h0)
    expected, expected_last = pytorch_rnn_twin(w_xh, w_hh, b_h)(x, None if h0 is None else h0[None])
    torch.testing.assert_close(outputs, expected)
    torch.testing.assert_close(h_last, expected_last[0])
    torch.testing.assert_close(h_last, outputs[:, -1])


def test_rnn_forward_equation_written_out():
    w_xh, w_hh, b_h = _rnn_weights(3, 2)
    x, h0 = torch.randn(1, 2, 3), torch.randn(1, 2)
    h1 = torch.tanh(x[:, 0] @ w_xh + h0 @ w_hh + b_h)
    h2 = torch.tanh(x[:, 1] @ w_xh + h1 @ w_hh + b_h)
    outputs, h_last = rnn_forward(x, w_xh, w_hh, b_h, h0)
    torch.testing.assert_close(outputs, torch.stack([h1, h2], dim=1))
    torch.testing.assert_close(h_last, h2)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 3), length=st.integers(2, 9), d_in=st.integers(1, 5), d_h=st.integers(1, 5),
       split=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_rnn_forward_can_be_resumed_from_h_last(batch, length, d_in, d_h, split, seed):
    """Reading a sequence in two chunks, the second starting from the first's h_last, is reading it once."""
    gen = torch.Generator().manual_seed(seed)
    split = min(split, length - 1)
    x = torch.randn(batch, length, d_in, generator=gen, dtype=torch.float64)
    w_xh, w_hh, b_h = (torch.randn(*s, generator=gen, dtype=torch.float64) for s in ((d_in, d_h), (d_h, d_h), (d_h,)))
    whole, last = rnn_forward(x, w_xh, w_hh, b_h)
    first, middle = rnn_forward(x[:, :split], w_xh, w_hh, b_h)
    second, last2 = rnn_forward(x[:, split:], w_xh, w_hh, b_h, middle)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    torch.testing.assert_close(last2, last)
    assert (whole.abs() < 1).all(), "tanh keeps every state inside (-1, 1)"


def test_rnn_forward_follows_dtype_and_handles_empty_sequences():
    w_xh, w_hh, b_h = _rnn_weights(3, 4, dtype=torch.float64)
    outputs, h_last = rnn_forward(torch.randn(2, 5, 3, dtype=torch.float64), w_xh, w_hh, b_h)
    assert outputs.dtype == h_last.dtype == torch.float64
    outputs, h_last = rnn_forward(torch.randn(2, 0, 3, dtype=torch.float64), w_xh, w_hh, b_h)
    assert outputs.shape == (2, 0, 4) and (h_last == 0).all()


def test_rnn_forward_gradients_flow_to_every_weight():
    w_xh, w_hh, b_h = (t.requires_grad_() for t in _rnn_weights(3, 4))
    outputs, _ = rnn_forward(torch.randn(2, 6, 3), w_xh, w_hh, b_h)
    outputs.sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (w_xh, w_hh, b_h))


def test_rnn_forward_rejects_bad_shapes():
    w_xh, w_hh, b_h = _rnn_weights(3, 4)
    x = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="x must have shape"):
        rnn_forward(torch.randn(5, 3), w_xh, w_hh, b_h)
    with pytest.raises(ValueError, match="w_xh"):
        rnn_forward(x, w_xh.T, w_hh, b_h)
    with pytest.raises(ValueError, match="w_hh"):
        rnn_forward(x, w_xh, torch.randn(4, 5), b_h)
    with pytest.raises(ValueError, match="b_h"):
        rnn_forward(x, w_xh, w_hh, torch.randn(3))
    with pytest.raises(ValueError, match="h0"):
        rnn_forward(x, w_xh, w_hh, b_h, torch.randn(3, 4))


# ------------------------------------------------------------------------------ self_attention_forward


@pytest.mark.parametrize("batch,length,d,d_k,d_v", [(1, 1, 1, 1, 1), (2, 6, 8, 4, 3), (3, 10, 5, 16, 7)])
def test_self_attention_forward_matches_pytorch(batch, length, d, d_k, d_v):
    x = torch.randn(batch, length, d)
    w_q, w_k, w_v = torch.randn(d, d_k), torch.randn(d, d_k), torch.randn(d, d_v)
    expected = F.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v)
    torch.testing.assert_close(self_attention_forward(x, w_q, w_k, w_v), expected)


def test_self_attention_forward_equals_one_head_of_nn_multiheadattention():
    d = 6
    mha = nn.MultiheadAttention(d, 1, bias=False, batch_first=True).eval()
    w_q, w_k, w_v = mha.in_proj_weight.detach().chunk(3)  # (d, d) each, (out, in) layout
    x = torch.randn(2, 5, d)
    expected, _ = mha(x, x, x)
    torch.testing.assert_close(self_attention_forward(x, w_q.T, w_k.T, w_v.T) @ mha.out_proj.weight.detach().T, expected)


def test_self_attention_forward_is_permutation_equivariant_and_parallel():
    x = torch.randn(2, 7, 4)
    w_q, w_k, w_v = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 5)
    perm = torch.randperm(7)
    torch.testing.assert_close(self_attention_forward(x[:, perm], w_q, w_k, w_v),
                               self_attention_forward(x, w_q, w_k, w_v)[:, perm])
    expect_no_loop_over_positions(self_attention_forward, lambda n: (torch.randn(2, n, 4), w_q, w_k, w_v),
                                  "self_attention_forward")


def test_self_attention_forward_rejects_bad_shapes():
    x = torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match="x must have shape"):
        self_attention_forward(torch.randn(5, 4), torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="w_v"):
        self_attention_forward(x, torch.randn(4, 3), torch.randn(4, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match="same width d_k"):
        self_attention_forward(x, torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 3))


# ------------------------------------------------------------------------- transformer_parameter_count


def test_base_model_count():
    assert transformer_parameter_count(37000, 512, 8, 2048, 6) == 63_084_544
    assert transformer_parameter_count(37000, 1024, 16, 4096, 6) == 214_249_472  # "big": the paper says 213M


@pytest.mark.parametrize("sizes", [(1, 1, 1, 1, 1), (37000, 512, 8, 2048, 6), (100, 12, 3, 30, 2), (50257, 768, 12, 3072, 12),
                                   (7, 8, 8, 5, 3), (250_000, 4096, 32, 16384, 48)])
def test_count_equals_pytorch_transformer_plus_one_embedding(sizes):
    """nn.Transformer (with its final encoder and decoder norms) + one V x d embedding, built on the meta device."""
    assert transformer_parameter_count(*sizes) == pytorch_transformer_parameter_count(*sizes)


class _CourseShapedTransformer(nn.Module):
    """The parameter layout of the chapter-10 model, assembled from chapter 4's MultiHeadAttention."""

    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers):
        super().__init__()

        def feed_forward():
            return nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))

        def layer(n_attention):
            return nn.ModuleDict({
                "attention": nn.ModuleList(MultiHeadAttention(d_model, n_heads) for _ in range(n_attention)),
                "ffn": feed_forward(),
                "norms": nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_attention + 1)),
            })

        self.embedding = nn.Embedding(vocab_size, d_model)
        self.encoder = nn.ModuleList(layer(1) for _ in range(n_layers))
        self.decoder = nn.ModuleList(layer(2) for _ in range(n_layers))
        self.final_norms = nn.ModuleList([nn.LayerNorm(d_model), nn.LayerNorm(d_model)])
        self.generator = nn.Linear(d_model, vocab_size, bias=False)
        self.generator.weight = self.embedding.weight  # tied: the same Parameter object


@pytest.mark.parametrize("sizes", [(11, 8, 2, 16, 1), (40, 12, 3, 20, 3)])
def test_count_equals_a_model_built_from_the_course_pieces(sizes):
    model = _CourseShapedTransformer(*sizes)
    assert transformer_parameter_count(*sizes) == sum(p.numel() for p in model.parameters())  # tied counted once


def test_count_ignores_the_number_of_heads_and_validates():
    counts = {transformer_parameter_count(1000, 64, h, 256, 2) for h in (1, 2, 4, 8, 16, 32, 64)}
    assert len(counts) == 1
    with pytest.raises(ValueError, match="divisible"):
        transformer_parameter_count(1000, 64, 5, 256, 2)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="positive int"):
            transformer_parameter_count(1000, 64, 4, bad, 2)
    assert isinstance(transformer_parameter_count(1000, 64, 4, 256, 2), int)


def test_breakdown_sums_to_the_count():
    parts = parameter_count_breakdown(37000, 512, 8, 2048, 6)
    assert sum(parts.values()) == transformer_parameter_count(37000, 512, 8, 2048, 6)
    assert parts["shared embedding"] == 37000 * 512 and parts["final norms"] == 4 * 512


# --------------------------------------------------------------------------- last_output_gradient_norms


def test_last_output_gradient_norms_equals_the_jacobian():
    w_xh, w_hh, b_h = _rnn_weights(3, 4)
    x = torch.randn(2, 6, 3)

    def layer(inputs):
        return rnn_forward(inputs, w_xh, w_hh, b_h)[0]

    norms = last_output_gradient_norms(layer, x)
    for b in range(2):
        jac = torch.autograd.functional.jacobian(lambda seq: layer(seq[None])[0, -1], x[b])  # (d_h, L, d_in)
        assert jac.shape == (4, 6, 3)
    expected = torch.stack([
        torch.autograd.functional.jacobian(lambda seq: layer(seq[None])[0, -1], x[b]).square().sum((0, 2)).sqrt()
        for b in range(2)
    ]).mean(0)
    torch.testing.assert_close(norms, expected)
    identity = last_output_gradient_norms(lambda t: t * 1.0, x)
    torch.testing.assert_close(identity, torch.tensor([0.0] * 5 + [math.sqrt(3)]))


# ------------------------------------------------------------------------------------------- diagram


def test_draw_transformer_shows_the_pipeline_with_chapter_numbers():
    fig = draw_transformer()
    try:
        assert isinstance(fig, Figure)
        text = " ".join(t.get_text() for t in fig.axes[0].texts)
        for phrase in ("tokenizer", "token embedding", "positional", "self-attention", "cross-attention",
                       "feed-forward", "add & norm", "output projection", "softmax", "sampling", "memory"):
            assert phrase in text, phrase
        for chapter in range(2, 11):
            assert f"ch {chapter}" in text or f", {chapter})" in text, chapter
        assert all(str(n) in text for n in CHAPTERS)
    finally:
        plt.close(fig)


def _face_colours(fig):
    return [p.get_facecolor() for p in fig.axes[0].patches]


def test_draw_transformer_highlight_fades_the_other_boxes():
    plain, ch5, by_name, whole = (draw_transformer(h, figsize=(5, 5.5), legend=False)
                                  for h in (None, [5], "cross_attention", [1]))
    try:
        assert _face_colours(plain) == _face_colours(whole)  # chapter 1 is the whole map
        assert _face_colours(plain) != _face_colours(ch5)
        assert _face_colours(ch5) == _face_colours(by_name)
    finally:
        for fig in (plain, ch5, by_name, whole):
            plt.close(fig)
    for bad in (11, 0, "attention", True, 2.0):
        with pytest.raises(ValueError):
            draw_transformer(bad)
    assert "cross_attention" in COMPONENTS
