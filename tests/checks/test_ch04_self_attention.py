"""The chapter-4 checks (llm_foundations.checks.ch04_self_attention): every named attention mistake is
that mistake (against PyTorch's own attention) and differs from the answer, and the multi-head hint
names the student's broken building block."""

import pytest
import torch
import torch.nn.functional as F

from llm_foundations.attention import merge_heads, scaled_dot_product_attention, split_heads
from llm_foundations.checks.ch04_self_attention import multihead_hint, scaled_dot_product_attention_mistakes
from llm_foundations.checks.core import expect_close


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


def test_each_attention_mistake_is_the_mistake_it_names():
    q, k, v = (torch.randn(2, 3, 5, 4, dtype=torch.float64) for _ in range(3))
    keep = torch.rand(5, 5) > 0.4
    keep[:, 0], keep[:, 1] = True, False  # no row is fully masked, and none fully kept (for the inverted mask)
    right, right_weights = scaled_dot_product_attention(q, k, v, keep)
    torch.testing.assert_close(right, F.scaled_dot_product_attention(q, k, v, attn_mask=keep))
    m = scaled_dot_product_attention_mistakes(q, k, v, keep)
    torch.testing.assert_close(m["the scores are not divided by sqrt(d_k)"][0],
                               F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1.0))
    torch.testing.assert_close(m["the scores are divided by d_k instead of sqrt(d_k)"][0],
                               F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1 / 4))
    inverted = next(value for why, value in m.items() if why.startswith("the mask is inverted"))
    torch.testing.assert_close(inverted[0], F.scaled_dot_product_attention(q, k, v, attn_mask=~keep))
    by_query = m["softmax runs over the queries (dim=-2) instead of over the keys (dim=-1)"][1]
    columns = [0, 2, 3, 4]  # key 1 is masked for every query: its column is all NaN
    torch.testing.assert_close(by_query.sum(-2)[..., columns], torch.ones(2, 3, 4, dtype=torch.float64))
    for why, (out, weights) in m.items():
        if not why.startswith("masked scores are filled with a large finite number"):  # the same here: below
            assert not torch.allclose(out, right) and not torch.allclose(weights, right_weights), why
    # a large finite fill differs only where a whole row is masked: uniform weights instead of zeros
    keep[2] = False
    right, right_weights = scaled_dot_product_attention(q, k, v, keep)
    finite = next(value for why, value in scaled_dot_product_attention_mistakes(q, k, v, keep).items()
                  if why.startswith("masked scores are filled with a large finite number"))
    torch.testing.assert_close(finite[1][..., 2, :], torch.full((2, 3, 5), 0.2, dtype=torch.float64))
    torch.testing.assert_close(right_weights[..., 2, :], torch.zeros(2, 3, 5, dtype=torch.float64))
    torch.testing.assert_close(finite[0][..., [0, 1, 3, 4], :], right[..., [0, 1, 3, 4], :])
    assert len(scaled_dot_product_attention_mistakes(q, k, v)) == 3  # no mask, no mask mistakes
