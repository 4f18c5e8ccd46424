"""llm_foundations.attention against PyTorch's own attention."""
import math

import pytest
import torch
import torch.nn.functional as F

from llm_foundations.attention import (
    AdditiveAttention,
    KVCache,
    MultiHeadAttention,
    attention_weights,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)
from llm_foundations.interop import to_pytorch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("lead", [(), (3,), (2, 4)])
@pytest.mark.parametrize("l_q,l_k", [(1, 1), (5, 5), (4, 7)])
def test_sdpa_matches_pytorch_without_mask(lead, l_q, l_k):
    q, k, v = torch.randn(*lead, l_q, 8), torch.randn(*lead, l_k, 8), torch.randn(*lead, l_k, 3)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    assert weights.shape == (*lead, l_q, l_k)
    torch.testing.assert_close(weights.sum(-1), torch.ones(*lead, l_q))


def test_sdpa_weights_are_softmax_of_scaled_scores():
    q, k, v = torch.randn(2, 3, 16), torch.randn(2, 6, 16), torch.randn(2, 6, 4)
    _, weights = scaled_dot_product_attention(q, k, v)
    expected = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(16), dim=-1)
    torch.testing.assert_close(weights, expected)


@pytest.mark.parametrize("mask_shape", [(6, 9), (2, 1, 6, 9), (2, 3, 6, 9), (1, 1, 1, 9)])
def test_sdpa_matches_pytorch_with_boolean_mask(mask_shape):
    q, k, v = torch.randn(2, 3, 6, 8), torch.randn(2, 3, 9, 8), torch.randn(2, 3, 9, 5)
    mask = torch.rand(mask_shape) > 0.3
    mask[..., 0] = True  # every row keeps at least one key here
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert not weights.masked_select(~mask.expand_as(weights)).any(), "masked keys got weight"


def test_fully_masked_rows_give_zero_weights_and_output_like_pytorch():
    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 3)
    mask = torch.ones(2, 4, 5, dtype=torch.bool)
    mask[0, 2] = False
    mask[1] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert (out[0, 2] == 0).all() and (out[1] == 0).all()
    assert (weights[0, 2] == 0).all() and (weights[1] == 0).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_fully_masked_rows_have_finite_gradients():
    q = torch.randn(1, 3, 4, requires_grad=True)
    k, v = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
    assert (q.grad[0, 1] == 0).all()


def test_causal_mask_matches_pytorch_is_causal():
    q, k, v = torch.randn(2, 7, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 8)
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    out, _ = scaled_dot_product_attention(q, k, v, causal)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_sdpa_rejects_bad_inputs_with_clear_errors():
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match="same last dimension"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 7), v)
    with pytest.raises(ValueError, match="same length"):
        scaled_dot_product_attention(q, k, torch.randn(2, 4, 4))
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(q, k, v, torch.ones(3, 5))
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, k, v, torch.ones(5, 3, dtype=torch.bool))


def test_attention_weights_is_the_weights_half_of_sdpa():
    q, k, v = torch.randn(3, 4, 8), torch.randn(3, 6, 8), torch.randn(3, 6, 2)
    mask = torch.rand(3, 4, 6) > 0.5
    torch.testing.assert_close(attention_weights(q, k, mask), scaled_dot_product_attention(q, k, v, mask)[1])


def test_split_heads_layout_and_merge_inverse():
    x = torch.arange(2 * 3 * 12, dtype=torch.float32).reshape(2, 3, 12)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 3)
    for h in range(4):
        torch.testing.assert_close(heads[:, h], x[..., 3 * h : 3 * (h + 1)])
    torch.testing.assert_close(merge_heads(heads), x)
    with pytest.raises(ValueError, match="divisible"):
        split_heads(x, 5)



def test_multihead_matches_nn_multiheadattention_self_attention():
    mha = MultiHeadAttention(16, 4).eval()
    ref = to_pytorch(mha)
    x = torch.randn(3, 5, 16)
    expected, expected_weights = ref(x, x, x, average_attn_weights=False)
    torch.testing.assert_close(mha(x, x, x), expected)
    torch.testing.assert_close(mha.attn_weights, expected_weights)


def test_multihead_cross_attention_with_padding_mask_matches_pytorch_convention():
    """Our True = may attend; nn.MultiheadAttention's key_padding_mask True = ignore: pass ~mask."""
    mha = MultiHeadAttention(12, 3).eval()
    ref = to_pytorch(mha)
    query, memory = torch.randn(2, 4, 12), torch.randn(2, 6, 12)
    lengths = torch.tensor([6, 3])
    keep = torch.arange(6) < lengths[:, None]  # (B, L_k), True = real token
    ours = mha(query, memory, memory, mask=keep[:, None, None, :])
    expected, _ = ref(query, memory, memory, key_padding_mask=~keep)
    torch.testing.assert_close(ours, expected)


def test_multihead_causal_mask_matches_pytorch_attn_mask_convention():
    mha = MultiHeadAttention(8, 2).eval()
    ref = to_pytorch(mha)
    x = torch.randn(2, 6, 8)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()  # True = may attend
    expected, _ = ref(x, x, x, attn_mask=~causal)  # PyTorch: True = blocked
    torch.testing.assert_close(mha(x, x, x, mask=causal), expected)
    # the conversion matters: passing our mask unchanged gives a different answer
    wrong, _ = ref(x, x, x, attn_mask=causal)
    assert not torch.allclose(mha(x, x, x, mask=causal), wrong.nan_to_num(), atol=1e-3)


def test_multihead_without_bias_and_validation():
    mha = MultiHeadAttention(8, 2, bias=False)
    assert all(layer.bias is None for layer in (mha.w_q, mha.w_k, mha.w_v, mha.w_o))
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="d_model=8"):
        mha(torch.randn(2, 3, 7), torch.randn(2, 3, 8), torch.randn(2, 3, 8))


def test_multihead_dropout_only_in_training():
    mha = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 5, 8)
    mha.eval()
    torch.testing.assert_close(mha(x, x, x), mha(x, x, x))
    mha.train()
    assert not torch.allclose(mha(x, x, x), mha(x, x, x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_multihead_runs_on_gpu_and_matches_cpu():
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 5, 16)
    expected = mha(x, x, x)
    got = mha.cuda()(x.cuda(), x.cuda(), x.cuda()).cpu()
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_padding_mask_shape_and_meaning():
    ids = torch.tensor([[5, 6, 0, 0], [7, 0, 0, 0]])
    mask = padding_mask(ids, pad_id=0)
    assert mask.shape == (2, 1, 1, 4) and mask.dtype == torch.bool
    assert mask[:, 0, 0].tolist() == [[True, True, False, False], [True, False, False, False]]
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        padding_mask(torch.zeros(3), 0)


def test_padding_mask_makes_outputs_independent_of_appended_padding():
    mha = MultiHeadAttention(8, 2).eval()
    src = torch.tensor([[3, 4, 5, 0]])
    longer = torch.tensor([[3, 4, 5, 0, 0, 0]])
    emb = torch.nn.Embedding(6, 8)
    query = torch.randn(1, 2, 8)
    short_out = mha(query, emb(src), emb(src), mask=padding_mask(src, 0))
    long_out = mha(query, emb(longer), emb(longer), mask=padding_mask(longer, 0))
    torch.testing.assert_close(short_out, long_out)


def test_additive_attention_matches_formula_and_masks():
    attn = AdditiveAttention(d_query=6, d_key=5, d_hidden=7)
    assert attn.w_q.bias is None and attn.v.weight.shape == (1, 7)
    query, keys, values = torch.randn(2, 3, 6), torch.randn(2, 4, 5), torch.randn(2, 4, 2)
    out, weights = attn(query, keys, values)
    expected_scores = torch.stack([
        torch.stack([attn.v(torch.tanh(attn.w_q(query[b, i]) + attn.w_k(keys[b, j]))).squeeze(-1)
                     for j in range(4)], dim=-1)
        for b in range(2) for i in range(3)
    ]).reshape(2, 3, 4)
    torch.testing.assert_close(weights, torch.softmax(expected_scores, -1))
    torch.testing.assert_close(out, weights @ values)
    keep = torch.tensor([[True, True, False, False], [False, False, False, False]])[:, None, :]
    out, weights = attn(query, keys, values, mask=keep)
    assert (weights[0, :, 2:] == 0).all() and (weights[1] == 0).all() and (out[1] == 0).all()
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(3))


def test_kv_cache_gives_the_same_outputs_as_recomputing_everything():
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 7, 16)
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    full = mha(x, x, x, mask=causal)
    cache = KVCache()
    prefix = mha(x[:, :3], x[:, :3], x[:, :3], mask=causal[:3, :3], cache=cache)  # prefill 3 positions
    steps = [mha(x[:, t : t + 1], x[:, t : t + 1], x[:, t : t + 1], cache=cache) for t in range(3, 7)]
    torch.testing.assert_close(torch.cat([prefix, *steps], dim=1), full)
    assert len(cache) == 7 and cache.keys.shape == (2, 4, 7, 4)
