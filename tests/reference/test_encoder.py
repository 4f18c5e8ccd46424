"""llm_foundations.encoder against torch.nn.TransformerEncoderLayer, and the properties any encoder has."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from llm_foundations.attention import MultiHeadAttention, padding_mask
from llm_foundations.encoder import IGNORE_INDEX, Encoder, EncoderLayer, mask_tokens
from llm_foundations.layers import FeedForward, LayerNorm, ResidualSublayer
from llm_foundations.positional import sinusoidal_positional_encoding
from llm_foundations.checks.ch08_encoder import (
    encoder_layer_param_count,
    encoder_param_count,
    encoder_reference,
    input_gradient_map,
    layer_norms,
    mask_tokens_split,
    pytorch_encoder_layer_twin,
    randomize_norms,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _layer(d_model=16, n_heads=4, d_ff=24, norm_first=True, seed=0):
    torch.manual_seed(seed)
    layer = EncoderLayer(d_model, n_heads, d_ff, norm_first=norm_first)
    randomize_norms(layer, d_model, torch.Generator().manual_seed(seed + 100))
    return layer


# ------------------------------------------------------------------------------------------------
# EncoderLayer


def test_encoder_layer_structure():
    layer = EncoderLayer(16, 4, 24)
    assert isinstance(layer.self_attn, MultiHeadAttention) and layer.self_attn.n_heads == 4
    assert isinstance(layer.ffn, FeedForward) and layer.ffn.linear1.out_features == 24
    assert isinstance(layer.sublayers, nn.ModuleList) and len(layer.sublayers) == 2
    assert all(isinstance(s, ResidualSublayer) for s in layer.sublayers)
    assert layer.sublayers[0] is not layer.sublayers[1]
    assert layer_norms(layer, 16) == [layer.sublayers[0].norm, layer.sublayers[1].norm]
    count = sum(p.numel() for p in layer.parameters())
    assert count == encoder_layer_param_count(16, 24)
    # the same count as PyTorch's layer
    assert count == sum(p.numel() for p in nn.TransformerEncoderLayer(16, 4, 24, batch_first=True).parameters())
    with pytest.raises(ValueError, match="divisible"):
        EncoderLayer(10, 4, 8)


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("d_model,n_heads,d_ff,length", [(16, 4, 24, 5), (8, 1, 8, 1), (12, 3, 40, 9)])
def test_encoder_layer_matches_pytorch(norm_first, d_model, n_heads, d_ff, length):
    layer = _layer(d_model, n_heads, d_ff, norm_first)
    twin = pytorch_encoder_layer_twin(layer, norm_first)
    x = torch.randn(3, length, d_model) * 2
    torch.testing.assert_close(layer(x), twin(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_layer_padding_mask_matches_pytorch(norm_first):
    layer = _layer(norm_first=norm_first)
    twin = pytorch_encoder_layer_twin(layer, norm_first)
    ids = torch.tensor([[3, 4, 5, 6, 7, 8], [3, 4, 5, 0, 0, 0], [9, 0, 0, 0, 0, 0]])
    keep = ids != 0  # (B, L): True = real token
    x = torch.randn(3, 6, 16)
    ours = layer(x, padding_mask(ids, 0))
    theirs = twin(x, src_key_padding_mask=~keep)  # PyTorch: True = padding
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    # forgetting the ~ gives something else
    assert not torch.allclose(ours[keep], twin(x, src_key_padding_mask=keep)[keep], atol=1e-3)


def test_encoder_layer_is_bidirectional_and_causal_mask_is_triangular():
    layer = _layer()
    x = torch.randn(1, 7, 16)
    full = input_gradient_map(lambda t: layer(t), x)  # (L, L)
    assert (full > 1e-6).all(), "every output must depend on every input"
    causal = torch.tril(torch.ones(7, 7, dtype=torch.bool))
    masked = input_gradient_map(lambda t: layer(t, causal), x)
    assert (masked[~causal] == 0).all() and (masked[causal] > 1e-6).all()


def test_encoder_layer_dropout_and_eval():
    layer = EncoderLayer(16, 4, 24, dropout=0.5)
    x = torch.randn(2, 5, 16)
    layer.train()
    assert not torch.allclose(layer(x), layer(x))
    layer.eval()
    torch.testing.assert_close(layer(x), pytorch_encoder_layer_twin(layer, True)(x), atol=1e-5, rtol=1e-4)


def test_encoder_layer_gradients_match_pytorch():
    layer = _layer(norm_first=False)
    twin = pytorch_encoder_layer_twin(layer, False)
    x1 = torch.randn(2, 4, 16, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    (layer(x1) ** 2).sum().backward()
    (twin(x2) ** 2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------
# Encoder


def _encoder(norm_first=True, vocab=30, d_model=16, n_layers=2, max_len=64, seed=0):
    torch.manual_seed(seed)
    enc = Encoder(vocab, d_model, 4, 24, n_layers, max_len=max_len, norm_first=norm_first)
    randomize_norms(enc, d_model, torch.Generator().manual_seed(seed + 7))
    return enc


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_structure(norm_first):
    enc = _encoder(norm_first)
    assert isinstance(enc.layers, nn.ModuleList) and len(enc.layers) == 2
    assert all(isinstance(layer, EncoderLayer) for layer in enc.layers)
    assert enc.layers[0] is not enc.layers[1]
    assert (enc.norm is not None) == norm_first
    if norm_first:
        assert isinstance(enc.norm, LayerNorm)
    assert sum(p.numel() for p in enc.parameters()) == encoder_param_count(30, 16, 24, 2, norm_first)
    assert sum(b.numel() for b in enc.buffers()) == 64 * 16  # the positions: a buffer, not trained


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_equals_its_formula(norm_first):
    enc = _encoder(norm_first)
    ids = torch.randint(0, 30, (3, 11))
    x = enc.embedding.weight[ids] * math.sqrt(16) + sinusoidal_positional_encoding(11, 16)
    for layer in enc.layers:
        x = layer(x)
    if norm_first:
        x = F.layer_norm(x, (16,), enc.norm.weight, enc.norm.bias)
    torch.testing.assert_close(enc(ids), x)
    torch.testing.assert_close(enc(ids), encoder_reference(enc, ids, None, 30, 16, norm_first))


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_matches_pytorch_transformer_encoder(norm_first):
    """The whole stack equals nn.TransformerEncoder built from twins of our layers (plus the final norm)."""
    enc = _encoder(norm_first, n_layers=3)
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 0, 0, 0]])
    keep = ids != 0
    x = enc.embedding(ids) + sinusoidal_positional_encoding(5, 16)
    for layer in enc.layers:
        x = pytorch_encoder_layer_twin(layer, norm_first)(x, src_key_padding_mask=~keep)
    if norm_first:
        x = F.layer_norm(x, (16,), enc.norm.weight, enc.norm.bias)
    torch.testing.assert_close(enc(ids, padding_mask(ids, 0)), x, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_padding_invariance(norm_first):
    enc = _encoder(norm_first)
    ids = torch.randint(1, 30, (2, 6))
    base = enc(ids, padding_mask(ids, 0))
    padded = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    again = enc(padded, padding_mask(padded, 0))
    torch.testing.assert_close(again[:, :6], base, atol=1e-5, rtol=1e-4)
    # without the mask, the padding changes the real positions
    assert not torch.allclose(enc(padded)[:, :6], base, atol=1e-4)


def test_encoder_is_bidirectional_through_the_embeddings():
    enc = _encoder()
    ids = torch.arange(1, 9)[None]  # (1, 8): distinct tokens
    emb = enc.positions(enc.embedding(ids)).detach()  # (1, 8, d)

    def body(x):
        for layer in enc.layers:
            x = layer(x)
        return enc.norm(x)

    grads = input_gradient_map(body, emb)
    assert (grads > 1e-6).all()


def test_encoder_max_len_and_errors():
    enc = _encoder(max_len=8)
    assert enc(torch.zeros(1, 8, dtype=torch.long)).shape == (1, 8, 16)
    with pytest.raises(ValueError, match="max_len=8"):
        enc(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        enc(torch.zeros(9, dtype=torch.long))
    with pytest.raises(TypeError):
        enc(torch.zeros(1, 3))


def test_encoder_dropout_is_active_only_in_training():
    enc = Encoder(30, 16, 4, 24, 2, dropout=0.3)
    ids = torch.randint(0, 30, (2, 5))
    enc.train()
    assert not torch.allclose(enc(ids), enc(ids))
    enc.eval()
    torch.testing.assert_close(enc(ids), enc(ids))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_encoder_on_gpu():
    enc = _encoder().cuda()
    ids = torch.randint(1, 30, (2, 7), device="cuda")
    ids[1, 4:] = 0
    out = enc(ids, padding_mask(ids, 0))
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), enc.cpu()(ids.cpu(), padding_mask(ids.cpu(), 0)), atol=1e-4, rtol=1e-4)
    inputs, labels = mask_tokens(ids, 29, 30, generator=torch.Generator(device="cuda").manual_seed(0))
    assert inputs.device.type == labels.device.type == "cuda"
    inputs, labels = mask_tokens(ids, 29, 30, generator=torch.Generator().manual_seed(0))  # CPU generator
    assert inputs.device.type == "cuda"


# ------------------------------------------------------------------------------------------------
# mask_tokens


def test_mask_tokens_statistics():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 999, (200, 500), generator=gen)  # mask_id 999 never occurs
    inputs, labels = mask_tokens(ids, 999, 1000, 0.15, generator=gen)
    assert inputs.shape == labels.shape == ids.shape and labels.dtype == torch.long
    selected = labels != IGNORE_INDEX
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(inputs[~selected], ids[~selected])
    split = mask_tokens_split(ids, inputs, labels, 999)
    assert abs(split["selected"] - 0.15) < 0.005
    assert abs(split["mask"] - 0.8) < 0.015 and abs(split["same"] - 0.1) < 0.01 and abs(split["other"] - 0.1) < 0.01


def test_mask_tokens_random_ids_are_uniform_over_the_vocabulary():
    ids = torch.full((300, 200), 1)
    inputs, labels = mask_tokens(ids, 5, 6, mask_prob=1.0, generator=torch.Generator().manual_seed(1))
    assert (labels == 1).all()
    freq = torch.bincount(inputs.flatten(), minlength=6).float() / inputs.numel()
    expected = torch.full((6,), 0.1 / 6)
    expected[5] += 0.8
    expected[1] += 0.1
    torch.testing.assert_close(freq, expected, atol=0.005, rtol=0)


def test_mask_tokens_reproducible_and_leaves_ids_alone():
    ids = torch.randint(0, 50, (4, 33))
    copy = ids.clone()
    a = mask_tokens(ids, 1, 50, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(123)  # the global stream is not used when a generator is given
    b = mask_tokens(ids, 1, 50, generator=torch.Generator().manual_seed(3))
    c = mask_tokens(ids, 1, 50, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert torch.equal(ids, copy)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=3), p=st.floats(0.0, 1.0), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([torch.long, torch.int32]))
def test_mask_tokens_any_shape(shape, p, seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 20, shape, generator=gen).to(dtype)
    inputs, labels = mask_tokens(ids, 19, 20, mask_prob=p, generator=gen)
    assert inputs.shape == labels.shape == ids.shape and inputs.dtype == dtype and labels.dtype == torch.long
    ignored = labels == IGNORE_INDEX
    assert torch.equal(inputs[ignored], ids[ignored]) and torch.equal(labels[~ignored], ids[~ignored].long())
    assert ((inputs >= 0) & (inputs < 20)).all()
    if p == 0.0:
        assert ignored.all()
    if p == 1.0:
        assert not ignored.any()


def test_mask_tokens_maskable_and_errors():
    ids = torch.tensor([[4, 5, 6, 0, 0]] * 400)
    _, labels = mask_tokens(ids, 1, 10, mask_prob=0.5, generator=torch.Generator().manual_seed(0), maskable=ids != 0)
    assert (labels[:, 3:] == IGNORE_INDEX).all() and (labels[:, :3] != IGNORE_INDEX).any()
    with pytest.raises(ValueError, match="mask_prob"):
        mask_tokens(ids, 1, 10, mask_prob=1.5)
    with pytest.raises(TypeError):
        mask_tokens(ids.float(), 1, 10)
    with pytest.raises(TypeError):
        mask_tokens(ids, 1, 10, maskable=(ids != 0).long())
    with pytest.raises(ValueError, match="vocab_size"):
        mask_tokens(ids, 1, 0)


def test_masked_lm_loss_ignores_unselected_positions():
    """The -100 labels are F.cross_entropy's ignore_index: only the selected positions count."""
    ids = torch.randint(0, 10, (4, 12))
    inputs, labels = mask_tokens(ids, 9, 10, generator=torch.Generator().manual_seed(0))
    logits = torch.randn(4, 12, 10)
    loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
    selected = labels.flatten() != IGNORE_INDEX
    manual = F.cross_entropy(logits.flatten(0, 1)[selected], labels.flatten()[selected])
    torch.testing.assert_close(loss, manual)
