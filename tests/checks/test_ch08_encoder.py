"""The chapter-8 checks (llm_foundations.checks.ch08_encoder): the PyTorch twins reproduce the reference
layer, the parameter counts and the independent stack agree with the reference and PyTorch, every named
mistake is that mistake, the mask_tokens checks, and the guard against the reference and PyTorch."""

import pytest
import torch
from torch import nn

import llm_foundations.checks.ch08_encoder as ch08
from llm_foundations.attention import MultiHeadAttention, padding_mask
from llm_foundations.encoder import Encoder, EncoderLayer, mask_tokens
from llm_foundations.checks.ch08_encoder import (
    check_mask_tokens_output,
    encoder_layer_mistakes,
    encoder_layer_param_count,
    encoder_mistakes,
    encoder_param_count,
    encoder_reference,
    expect_mask_tokens_split,
    forbid_reference,
    input_gradient_map,
    layer_norms,
    mask_tokens_split,
    pytorch_encoder_layer_output,
    pytorch_encoder_layer_twin,
    randomize_norms,
)
from mistakes import named


def _layer(d_model=16, n_heads=4, d_ff=24, norm_first=True, seed=0):
    torch.manual_seed(seed)
    layer = EncoderLayer(d_model, n_heads, d_ff, norm_first=norm_first)
    randomize_norms(layer, d_model, torch.Generator().manual_seed(seed + 100))
    return layer


def _encoder(norm_first=True, vocab=30, d_model=16, n_layers=2, max_len=64, seed=0):
    torch.manual_seed(seed)
    enc = Encoder(vocab, d_model, 4, 24, n_layers, max_len=max_len, norm_first=norm_first)
    randomize_norms(enc, d_model, torch.Generator().manual_seed(seed + 7))
    return enc


def test_twin_accepts_either_norm_order():
    """A layer that registers the FFN's norm first computes the same function: the helper finds the right twin."""
    layer = _layer()
    x = torch.randn(2, 5, 16)
    got = layer(x)
    torch.testing.assert_close(pytorch_encoder_layer_output(layer, x, None, True, got=got), got, atol=1e-5, rtol=1e-4)
    swapped = pytorch_encoder_layer_twin(layer, True, swap_norms=True)(x)
    assert not torch.allclose(swapped, got, atol=1e-3)


def test_encoder_mistake_hints_differ_from_the_answer():
    enc = _encoder()
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 0, 0]])
    mask = padding_mask(ids, 0)
    right = enc(ids, mask)
    for why, wrong in encoder_mistakes(enc, ids, mask, 30, 16, True).items():
        assert not torch.allclose(wrong, right, atol=1e-4), why


def test_forbid_reference_catches_the_reference_and_pytorch():
    x = torch.randn(1, 3, 8)
    with pytest.raises(AssertionError, match="reference"):
        with forbid_reference("EncoderLayer", "EncoderLayer"):
            EncoderLayer(8, 2, 8)(x)
    with pytest.raises(AssertionError, match="PyTorch"):
        with forbid_reference("EncoderLayer", "EncoderLayer"):
            nn.TransformerEncoderLayer(8, 2, 8, batch_first=True)(x)
    with forbid_reference("an own layer", "EncoderLayer"):
        MultiHeadAttention(8, 2)(x, x, x)  # earlier chapters' components stay allowed


@pytest.mark.parametrize("norm_first", [True, False])
def test_the_twin_reproduces_the_reference_layer_with_padding(norm_first):
    layer = _layer(norm_first=norm_first).eval()
    x = torch.randn(2, 5, 16)
    keep = torch.tensor([[True] * 5, [True, True, True, False, False]])
    twin = pytorch_encoder_layer_twin(layer, norm_first)
    assert isinstance(twin, nn.TransformerEncoderLayer) and twin.norm_first == norm_first
    ours = layer(x, keep[:, None, None, :])
    torch.testing.assert_close(twin(x, src_key_padding_mask=~keep)[keep], ours[keep], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pytorch_encoder_layer_output(layer, x, keep, norm_first)[keep], ours[keep],
                               atol=1e-5, rtol=1e-4)


def test_layer_norms_and_the_parameter_counts():
    layer = _layer()
    assert layer_norms(layer, 16) == [layer.sublayers[0].norm, layer.sublayers[1].norm]
    layer.sublayers[1].norm = layer.sublayers[0].norm  # one norm shared by both sublayers
    assert layer_norms(layer, 16) == [layer.sublayers[0].norm]
    with pytest.raises(AssertionError, match="needs two LayerNorms of width 16 .* found 1"):
        pytorch_encoder_layer_twin(layer, True)
    assert encoder_layer_mistakes(layer, torch.randn(1, 2, 16), None, True) == {}
    theirs = nn.TransformerEncoderLayer(16, 4, 24)
    assert encoder_layer_param_count(16, 24) == sum(p.numel() for p in theirs.parameters())
    for norm_first in (True, False):
        enc = _encoder(norm_first)
        assert encoder_param_count(30, 16, 24, 2, norm_first) == sum(p.numel() for p in enc.parameters())


@pytest.mark.parametrize("norm_first", [True, False])
def test_each_encoder_layer_mistake_is_the_mistake_it_names(norm_first):
    layer = _layer(norm_first=norm_first).double().eval()
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    mask = padding_mask(torch.tensor([[1, 2, 3, 4, 5], [1, 2, 3, 0, 0]]), 0)
    right = layer(x, mask)
    m = encoder_layer_mistakes(layer, x, mask, norm_first)
    causal = torch.tril(torch.ones(5, 5, dtype=torch.bool))
    torch.testing.assert_close(named(m, "a causal mask is applied"), layer(x, causal & mask))
    torch.testing.assert_close(named(m, "the mask is not passed"), layer(x))
    torch.testing.assert_close(named(m, "the mask is inverted"), layer(x, ~mask))
    # the same weights, the other norm order
    other = pytorch_encoder_layer_twin(layer, not norm_first)(x, src_key_padding_mask=~mask[:, 0, 0, :])
    torch.testing.assert_close(named(m, "the layer is p"), other.detach(), atol=1e-10, rtol=1e-8)
    for why, wrong in m.items():
        assert not torch.allclose(wrong, right, atol=1e-4), why
    assert not any("mask" in why.split(":")[0] and "causal" not in why for why in encoder_layer_mistakes(
        layer, x, None, norm_first))


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_reference_is_the_encoder_and_the_mistakes_are_what_they_name(norm_first):
    enc = _encoder(norm_first).eval()
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 0, 0]])
    mask = padding_mask(ids, 0)
    right = enc(ids, mask)
    torch.testing.assert_close(encoder_reference(enc, ids, mask, 30, 16, norm_first), right)
    m = encoder_mistakes(enc, ids, mask, 30, 16, norm_first)
    torch.testing.assert_close(named(m, "the mask is not passed on"), enc(ids))
    if norm_first:
        final, enc.norm = enc.norm, None
        torch.testing.assert_close(named(m, "the final LayerNorm is missing"), enc(ids, mask))
        enc.norm = final
    else:
        torch.testing.assert_close(named(m, "a final LayerNorm is applied"), nn.functional.layer_norm(right, (16,)))
    for why, wrong in m.items():
        assert not torch.allclose(wrong, right, atol=1e-4), why


def test_input_gradient_map_is_the_norm_of_the_jacobian_blocks():
    layer = _layer(d_model=8, n_heads=2, d_ff=8).double().eval()
    x = torch.randn(1, 4, 8, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: layer(t[None])[0], x[0])  # (L, d, L, d)
    torch.testing.assert_close(input_gradient_map(layer, x), jac.pow(2).sum(dim=(1, 3)).sqrt())
    causal = torch.tril(torch.ones(4, 4, dtype=torch.bool))
    assert torch.equal(input_gradient_map(lambda t: layer(t, causal), x) > 0, causal)


def test_mask_tokens_checks_accept_the_reference_and_name_the_faults():
    ids = torch.randint(5, 50, (40, 50))
    gen = torch.Generator().manual_seed(0)
    inputs, labels = check_mask_tokens_output(ids, mask_tokens(ids, 1, 50, 0.15, gen), 1, "mask_tokens", 0.15)
    split = mask_tokens_split(ids, inputs, labels, 1)
    assert abs(split["selected"] - 0.15) < 0.01 and abs(split["mask"] - 0.8) < 0.05
    assert split["mask"] + split["same"] + split["other"] == pytest.approx(1.0)
    expect_mask_tokens_split(split, 0.15, "mask_tokens")
    with pytest.raises(AssertionError, match="must return a tuple"):
        check_mask_tokens_output(ids, inputs, 1, "mask_tokens")
    with pytest.raises(AssertionError, match="the labels hold the corrupted inputs"):
        check_mask_tokens_output(ids, (inputs, torch.where(labels == -100, labels, inputs)), 1, "mask_tokens")
    with pytest.raises(AssertionError, match="keeps its original id"):
        check_mask_tokens_output(ids, (inputs.masked_fill(labels == -100, 1), labels), 1, "mask_tokens")
    with pytest.raises(AssertionError, match="no label is -100"):
        check_mask_tokens_output(ids, (ids, ids), 1, "mask_tokens", 0.15)
    every = labels != -100
    all_masked = mask_tokens_split(ids, ids.masked_fill(every, 1), labels, 1)
    with pytest.raises(AssertionError, match="every selected position became mask_id"):
        expect_mask_tokens_split(all_masked, 0.15, "mask_tokens")
    with pytest.raises(AssertionError, match="the comparison is reversed"):
        expect_mask_tokens_split({**split, "selected": 0.85}, 0.15, "mask_tokens")


def test_forbid_reference_catches_a_wrapper_a_subclass_and_the_checks_helpers():
    x = torch.randn(1, 3, 8)

    def wrapper(ids):
        return mask_tokens(ids, 1, 9)

    class Subclass(EncoderLayer):
        pass

    encoder, ids = _encoder(), torch.ones(1, 2, dtype=torch.long)
    for task, run in [("mask_tokens", lambda: wrapper(ids)), ("EncoderLayer", lambda: Subclass(8, 2, 8)(x)),
                      ("Encoder", lambda: encoder_reference(encoder, ids, None, 30, 16, True))]:
        with pytest.raises(AssertionError, match="reference code"):
            with forbid_reference(task, task):
                run()
    with forbid_reference("Encoder", "Encoder"):  # the chapter's building blocks stay allowed
        MultiHeadAttention(8, 2)(x, x, x, padding_mask(torch.tensor([[1, 2, 0]]), 0))


def test_call_turns_known_errors_into_hints(expect_hint_table):
    expect_hint_table(ch08.call, ch08._ERROR_HINTS)
