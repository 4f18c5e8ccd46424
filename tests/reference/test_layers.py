"""llm_foundations.layers against torch.nn."""

import pytest
import torch
from torch import nn

from llm_foundations.layers import FeedForward, LayerNorm, ResidualSublayer


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 5, 7)])
def test_layernorm_matches_torch(shape):
    ours, ref = LayerNorm(7), nn.LayerNorm(7)
    with torch.no_grad():
        for layer in (ours, ref):
            layer.weight.copy_(torch.linspace(0.5, 2.0, 7))
            layer.bias.copy_(torch.linspace(-1.0, 1.0, 7))
    x = torch.randn(shape) * 5 + 3
    torch.testing.assert_close(ours(x), ref(x))


def test_layernorm_defaults_and_constant_input():
    norm = LayerNorm(4, eps=1e-5)
    assert torch.equal(norm.weight, torch.ones(4)) and torch.equal(norm.bias, torch.zeros(4))
    x = torch.full((2, 4), 3.0)
    torch.testing.assert_close(norm(x), torch.zeros(2, 4))  # eps inside the root: no division by zero
    torch.testing.assert_close(LayerNorm(4, eps=0.1)(torch.tensor([[1.0, 2, 3, 4]])),
                               nn.LayerNorm(4, eps=0.1)(torch.tensor([[1.0, 2, 3, 4]])))
    with pytest.raises(ValueError, match="last dimension 4"):
        norm(torch.zeros(2, 5))


def test_layernorm_gradients_match_torch():
    ours, ref = LayerNorm(6), nn.LayerNorm(6)
    x1 = torch.randn(4, 6, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    (ours(x1) ** 2).sum().backward()
    (ref(x2) ** 2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)


def test_feedforward_is_linear_relu_linear():
    ffn = FeedForward(8, 32).eval()
    x = torch.randn(2, 3, 8)
    expected = ffn.linear2(torch.relu(ffn.linear1(x)))
    torch.testing.assert_close(ffn(x), expected)
    assert ffn.linear1.weight.shape == (32, 8) and ffn.linear2.weight.shape == (8, 32)
    # position-wise: each position is transformed on its own
    torch.testing.assert_close(ffn(x)[:, 1], ffn(x[:, 1]))


@pytest.mark.parametrize("norm_first", [True, False])
def test_residual_sublayer_matches_pytorch_encoder_layer(norm_first):
    """nn.TransformerEncoderLayer is two residual sublayers: check ours reproduces it."""
    d_model, d_ff = 8, 16
    ref = nn.TransformerEncoderLayer(d_model, 2, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    attn_block = ResidualSublayer(d_model, norm_first=norm_first)
    ffn_block = ResidualSublayer(d_model, norm_first=norm_first)
    ffn = FeedForward(d_model, d_ff)
    with torch.no_grad():
        attn_block.norm.weight.copy_(ref.norm1.weight), attn_block.norm.bias.copy_(ref.norm1.bias)
        ffn_block.norm.weight.copy_(ref.norm2.weight), ffn_block.norm.bias.copy_(ref.norm2.bias)
        ffn.linear1.load_state_dict(ref.linear1.state_dict())
        ffn.linear2.load_state_dict(ref.linear2.state_dict())
    x = torch.randn(2, 5, d_model)

    def self_attention(h):
        return ref.self_attn(h, h, h, need_weights=False)[0]

    ours = ffn_block(attn_block(x, self_attention), ffn)
    torch.testing.assert_close(ours, ref(x))


def test_residual_sublayer_dropout_only_in_training():
    block = ResidualSublayer(4, dropout=0.5)
    x = torch.randn(3, 4)
    block.eval()
    torch.testing.assert_close(block(x, lambda h: h * 2), x + 2 * block.norm(x))
    block.train()
    assert not torch.allclose(block(x, lambda h: h * 2), block(x, lambda h: h * 2))
