"""The chapter-5 check helpers (llm_foundations.checks.ch05_cross_attention) agree with the reference,
tell mistakes apart from right answers, and catch answers that call the reference."""

import pytest
import torch

from llm_foundations.attention import AdditiveAttention, MultiHeadAttention, padding_mask
from llm_foundations.interop import to_pytorch
from llm_foundations.checks.ch05_cross_attention import (
    additive_attention_loop,
    additive_attention_mistakes,
    call,
    cross_attend,
    cross_attend_mistakes,
    forbid_reference,
    padding_mask_mistakes,
)


@pytest.mark.parametrize("mask_shape", [None, (2, 1, 6), (2, 4, 6), (4, 6)])
def test_loop_matches_the_reference_and_every_mistake_differs(mask_shape):
    attn = AdditiveAttention(5, 7, 6)
    q, k, v = torch.randn(2, 4, 5), torch.randn(2, 6, 7), torch.randn(2, 6, 3)
    mask = None if mask_shape is None else torch.rand(mask_shape) > 0.4
    if mask is not None:
        mask.view(-1, 6)[0] = False  # a fully masked row
        mask.view(-1, 6)[-1, 0] = True
    out, weights = attn(q, k, v, mask)
    loop_out, loop_weights = additive_attention_loop(attn, q, k, v, mask)
    torch.testing.assert_close(weights.double(), loop_weights)
    torch.testing.assert_close(out.double(), loop_out)
    for name, (_, mistake) in additive_attention_mistakes(attn, q, k, v, mask).items():
        assert not torch.allclose(mistake, loop_weights, atol=1e-5), name


def test_loop_ignores_a_stray_bias():
    attn = AdditiveAttention(3, 3, 4)
    attn.w_q = torch.nn.Linear(3, 4)  # with a bias, as a mistaken answer would have
    q, k = torch.randn(1, 2, 3), torch.randn(1, 5, 3)
    with torch.no_grad():
        attn.w_q.bias.fill_(1.0)
    _, weights = additive_attention_loop(attn, q, k, k)
    attn.w_q.bias = None
    torch.testing.assert_close(weights, AdditiveAttention.forward(attn, q, k, k)[1].double())


def test_reference_cross_attend_matches_pytorch_and_mistakes_differ():
    mha = MultiHeadAttention(16, 4).eval()
    ids = torch.tensor([[4, 5, 6, 9, 9], [4, 9, 9, 9, 9]])
    dec, enc = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    out = cross_attend(mha, dec, enc, ids, 9)
    expected, _ = to_pytorch(mha)(dec, enc, enc, key_padding_mask=(ids == 9))
    torch.testing.assert_close(out, expected)
    kept = mha.attn_weights
    mistakes = cross_attend_mistakes(mha, dec, enc, ids, 9)
    assert mha.attn_weights is kept, "computing the mistakes must not change what the student's call left"
    for name, mistake in mistakes.items():
        assert not torch.allclose(mistake, expected, atol=1e-5), name


def test_padding_mask_mistakes_differ():
    ids = torch.tensor([[1, 2, 3, 3], [0, 3, 3, 3]])
    right = padding_mask(ids, 3)
    for name, mistake in padding_mask_mistakes(ids, 3).items():
        assert mistake.shape == right.shape and not torch.equal(mistake, right), name


def test_forbid_reference_catches_the_reference_and_allows_multihead_attention():
    ids = torch.tensor([[1, 2, 0]])
    with pytest.raises(AssertionError, match="reference code"):
        with forbid_reference("padding_mask", "padding_mask"):
            padding_mask(ids, 0)

    class Inherited(AdditiveAttention):  # inherits the reference's __init__ and forward
        pass

    with pytest.raises(AssertionError, match=r"AdditiveAttention\.__init__"):
        with forbid_reference("AdditiveAttention", "AdditiveAttention"):
            Inherited(2, 2, 3)(torch.randn(1, 2, 2), torch.randn(1, 3, 2), torch.randn(1, 3, 2))
    with forbid_reference("cross_attend", "cross_attend"):  # chapter 4's module is allowed here
        mha = MultiHeadAttention(8, 2)
        mha(torch.randn(1, 2, 8), torch.randn(1, 3, 8), torch.randn(1, 3, 8), mask=padding_mask(ids, 0))


def test_call_adds_the_chapter_hints():
    attn = AdditiveAttention(4, 6, 8)
    with pytest.raises(AssertionError, match="w_q takes the queries' width"):
        call(attn, torch.randn(1, 2, 6), torch.randn(1, 3, 6), torch.randn(1, 3, 2), what="additive")
    with pytest.raises(AssertionError, match="you have not written this part yet"):
        call(lambda: (_ for _ in ()).throw(NotImplementedError()), what="stub")
