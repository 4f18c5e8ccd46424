"""PyTorch twins (llm_foundations.interop): the same weights in PyTorch's modules give the same function."""

import pytest
import torch
from torch import nn

from llm_foundations.attention import MultiHeadAttention
from llm_foundations.decoder import DecoderLayer, causal_mask
from llm_foundations.encoder import EncoderLayer
from llm_foundations.interop import to_pytorch


def _random_norms(layer: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():  # non-trivial gains and biases, so that a swapped norm would show
        for sub in layer.sublayers:
            sub.norm.weight.copy_(0.5 + torch.rand(sub.norm.weight.shape, generator=gen))
            sub.norm.bias.copy_(0.3 * torch.randn(sub.norm.bias.shape, generator=gen))


@pytest.mark.parametrize("bias", [True, False])
def test_attention_twin_gives_the_same_outputs_and_weights(bias):
    torch.manual_seed(0)
    ours = MultiHeadAttention(12, 3, bias=bias).eval()
    twin = to_pytorch(ours)
    assert isinstance(twin, nn.MultiheadAttention) and not twin.training
    q, kv = torch.randn(2, 4, 12), torch.randn(2, 6, 12)  # (B, L_q, d), (B, L_k, d)
    keep = torch.rand(2, 4, 6) > 0.3  # True = may attend
    keep[..., 0] = True
    expected = ours(q, kv, kv, mask=keep[:, None])
    got, weights = twin(q, kv, kv, attn_mask=~keep.repeat_interleave(3, 0), average_attn_weights=False)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weights, ours.attn_weights, atol=1e-5, rtol=1e-4)


def test_attention_twin_needs_the_head_count_when_the_module_does_not_say_it():
    ours = MultiHeadAttention(8, 2)
    del ours.n_heads
    with pytest.raises(TypeError, match="n_heads"):
        to_pytorch(ours)
    assert to_pytorch(ours, n_heads=2).num_heads == 2


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_layer_twin(norm_first):
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    ours = EncoderLayer(16, 4, 32, norm_first=norm_first).eval()
    _random_norms(ours, gen)
    twin = to_pytorch(ours, norm_first=norm_first)
    assert isinstance(twin, nn.TransformerEncoderLayer) and twin.norm_first == norm_first
    x, keep = torch.randn(2, 5, 16), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    expected = ours(x, keep[:, None, None, :])
    torch.testing.assert_close(twin(x, src_key_padding_mask=~keep), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_layer_twin(norm_first):
    gen = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    ours = DecoderLayer(16, 4, 32, norm_first=norm_first).eval()
    _random_norms(ours, gen)
    twin = to_pytorch(ours, norm_first=norm_first)
    assert isinstance(twin, nn.TransformerDecoderLayer)
    x, memory = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    expected = ours(x, memory, tgt_mask=causal_mask(4))
    got = twin(x, memory, tgt_mask=~causal_mask(4))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_a_layer_twin_takes_the_norms_in_the_order_given():
    torch.manual_seed(3)
    ours = EncoderLayer(8, 2, 16)
    _random_norms(ours, torch.Generator().manual_seed(3))
    first, second = (sub.norm for sub in ours.sublayers)
    twin = to_pytorch(ours, norms=[second, first])
    torch.testing.assert_close(twin.norm1.weight, second.weight)
    with pytest.raises(ValueError, match="2 LayerNorms"):
        to_pytorch(ours, norms=[first])
