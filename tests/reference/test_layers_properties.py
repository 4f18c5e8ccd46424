"""llm_foundations.layers: properties every correct answer has (random shapes, eps, weights)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from llm_foundations.layers import FeedForward, LayerNorm, ResidualSublayer
from llm_foundations.checks.ch06_residual_connections import feedforward_expected, load_norm, pytorch_encoder_layer


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------- LayerNorm


@settings(max_examples=40, deadline=None)
@given(
    lead=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    d=st.integers(1, 33),
    eps=st.sampled_from([1e-6, 1e-5, 1e-3, 0.1, 1.0, 10.0]),
    scale=st.floats(1e-2, 1e2),
    shift=st.floats(-10, 10),
    seed=st.integers(0, 2**16),
)
def test_layernorm_matches_torch_for_any_shape_eps_and_weights(lead, d, eps, scale, shift, seed):
    gen = torch.Generator().manual_seed(seed)
    ours, ref = LayerNorm(d, eps=eps).double(), nn.LayerNorm(d, eps=eps).double()
    with torch.no_grad():
        w, b = torch.randn(d, generator=gen, dtype=torch.float64), torch.randn(d, generator=gen, dtype=torch.float64)
        for layer in (ours, ref):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    x = torch.randn(*lead, d, generator=gen, dtype=torch.float64) * scale + shift
    torch.testing.assert_close(ours(x), ref(x), atol=1e-10, rtol=1e-8)


@settings(max_examples=25, deadline=None)
@given(d=st.integers(2, 64), scale=st.floats(0.1, 100.0), shift=st.floats(-50, 50), seed=st.integers(0, 2**16))
def test_layernorm_output_has_zero_mean_unit_mean_square_and_ignores_shift_and_scale(d, scale, shift, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, d, generator=gen, dtype=torch.float64)
    norm = LayerNorm(d, eps=1e-12).double()  # a tiny eps: the pure normalisation
    y = norm(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(5, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(5, dtype=torch.float64), atol=1e-6, rtol=0)  # biased var
    torch.testing.assert_close(norm(x * scale + shift), y, atol=1e-6, rtol=1e-6)


def test_layernorm_gradients_match_torch_in_float64_with_constant_rows():
    ours, ref = LayerNorm(8, eps=1e-3).double(), nn.LayerNorm(8, eps=1e-3).double()
    with torch.no_grad():
        w, b = torch.rand(8, dtype=torch.float64) + 0.5, torch.randn(8, dtype=torch.float64)
        for layer in (ours, ref):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    x = torch.randn(3, 4, 8, dtype=torch.float64)
    x[1, 2] = -0.75  # a constant row: variance 0
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    upstream = torch.randn(3, 4, 8, dtype=torch.float64)
    (ours(x1) * upstream).sum().backward()
    (ref(x2) * upstream).sum().backward()
    assert torch.isfinite(x1.grad).all()
    for got, expected in ((x1.grad, x2.grad), (ours.weight.grad, ref.weight.grad), (ours.bias.grad, ref.bias.grad)):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-8)


def test_layernorm_on_the_device_follows_its_input():
    from llm_foundations import get_device

    device = get_device()
    norm = LayerNorm(6).to(device)
    x = torch.randn(2, 6, device=device)
    assert norm(x).device.type == device.type


# ---------------------------------------------------------------- FeedForward


@settings(max_examples=25, deadline=None)
@given(d_model=st.integers(1, 24), d_ff=st.integers(1, 48), length=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_feedforward_is_position_wise_and_follows_the_equation(d_model, d_ff, length, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ffn = FeedForward(d_model, d_ff, dropout=0.3).double().eval()
    x = torch.randn(2, length, d_model, generator=gen, dtype=torch.float64)
    y = ffn(x)
    torch.testing.assert_close(y, feedforward_expected(ffn, x), atol=1e-10, rtol=1e-8)
    perm = torch.randperm(length, generator=gen)
    torch.testing.assert_close(ffn(x[:, perm]), y[:, perm])
    torch.testing.assert_close(ffn(x[1, -1]), y[1, -1])


def test_feedforward_parameter_count():
    assert sum(p.numel() for p in FeedForward(512, 2048).parameters()) == 2 * 512 * 2048 + 2048 + 512


# ---------------------------------------------------------------- ResidualSublayer


@pytest.mark.parametrize("norm_first", [True, False])
def test_residual_sublayer_with_a_zero_sublayer_is_the_identity_or_the_norm(norm_first):
    block = ResidualSublayer(8, dropout=0.5, norm_first=norm_first).train()
    x = torch.randn(4, 3, 8)
    out = block(x, torch.zeros_like)  # dropout acts on the sublayer's output only: nothing to drop
    torch.testing.assert_close(out, x if norm_first else block.norm(x))


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("d_model,n_heads,d_ff", [(8, 2, 16), (24, 4, 48)])
def test_two_residual_sublayers_reproduce_the_encoder_layer(norm_first, d_model, n_heads, d_ff):
    layer, attention, feed_forward = pytorch_encoder_layer(d_model, n_heads, d_ff, norm_first, seed=d_model)
    first, second = ResidualSublayer(d_model, norm_first=norm_first), ResidualSublayer(d_model, norm_first=norm_first)
    load_norm(first.norm, layer.norm1)
    load_norm(second.norm, layer.norm2)
    x = torch.randn(3, 5, d_model)
    torch.testing.assert_close(second(first(x, attention), feed_forward), layer(x))


def test_pre_ln_stack_is_input_plus_all_writes_and_keeps_an_identity_gradient():
    d, n = 16, 8
    ffns = [FeedForward(d, 4 * d) for _ in range(n)]
    blocks = [ResidualSublayer(d) for _ in range(n)]
    for ffn in ffns:  # sublayers that write nothing: the stack is exactly the identity
        nn.init.zeros_(ffn.linear2.weight)
        nn.init.zeros_(ffn.linear2.bias)
    x = torch.randn(5, d, requires_grad=True)
    h, writes = x, []
    for ffn, block in zip(ffns, blocks):
        writes.append(ffn(block.norm(h)))
        h = block(h, ffn)
    torch.testing.assert_close(h, x + sum(writes))
    h.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))  # d(x + 0)/dx = I
