"""llm_foundations.positional against explicit formulas, an independent complex-number RoPE, and
the properties every correct answer has (relative-only RoPE scores, shift matrices, norms)."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_foundations.positional import (
    LearnedPositionalEmbedding,
    RelativePositionBias,
    RelativePositionEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rope,
    relative_attention_scores,
    relative_positions,
    rope_angles,
    rope_rotation_matrix,
    sinusoidal_positional_encoding,
    sinusoidal_shift_matrix,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def rope_complex(x, positions, base=10000.0):
    """RoPE written independently: pairs as complex numbers, times exp(i * p * theta)."""
    d = x.size(-1)
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    angle = positions.double()[:, None] * theta  # (L, d/2)
    z = torch.view_as_complex(x.double().unflatten(-1, (d // 2, 2)).contiguous())  # (..., L, d/2)
    return torch.view_as_real(z * torch.polar(torch.ones_like(angle), angle)).flatten(-2)


# ---------------------------------------------------------------- sinusoidal


@pytest.mark.parametrize("seq_len,d_model,base", [(1, 2, 10000.0), (7, 6, 10000.0), (50, 32, 10000.0), (9, 10, 100.0)])
def test_sinusoidal_matches_the_double_loop_of_the_paper(seq_len, d_model, base):
    pe = sinusoidal_positional_encoding(seq_len, d_model, base)
    assert pe.shape == (seq_len, d_model) and pe.dtype == torch.float32
    expected = torch.zeros(seq_len, d_model, dtype=torch.float64)
    for p in range(seq_len):
        for i in range(d_model // 2):
            expected[p, 2 * i] = math.sin(p / base ** (2 * i / d_model))
            expected[p, 2 * i + 1] = math.cos(p / base ** (2 * i / d_model))
    torch.testing.assert_close(pe.double(), expected, atol=1e-6, rtol=0)


def test_sinusoidal_options_and_errors():
    pe = sinusoidal_positional_encoding(3000, 16, dtype=torch.float64)
    assert pe.dtype == torch.float64
    assert math.isclose(pe[2999, 0].item(), math.sin(2999), abs_tol=1e-12)  # computed in float64
    assert sinusoidal_positional_encoding(0, 4).shape == (0, 4)
    for bad in (7, 0, -2):
        with pytest.raises(ValueError, match="even"):
            sinusoidal_positional_encoding(5, bad)
    with pytest.raises(ValueError, match="seq_len"):
        sinusoidal_positional_encoding(-1, 4)


@pytest.mark.parametrize("offset", [1, 5, 37, -3])
def test_shift_matrix_moves_every_position_by_the_same_offset(offset):
    pe = sinusoidal_positional_encoding(100, 24, dtype=torch.float64)
    m_k = sinusoidal_shift_matrix(offset, 24, dtype=torch.float64)
    lo, hi = max(0, -offset), min(100, 100 - offset)
    torch.testing.assert_close(pe[lo:hi] @ m_k.T, pe[lo + offset : hi + offset])
    torch.testing.assert_close(m_k @ m_k.T, torch.eye(24, dtype=torch.float64))  # a rotation


def test_sinusoidal_dot_product_depends_only_on_the_offset():
    pe = sinusoidal_positional_encoding(80, 32, dtype=torch.float64)
    gram = pe @ pe.T  # (L, L)
    torch.testing.assert_close(gram[1:, 1:], gram[:-1, :-1])  # constant along diagonals
    k = torch.arange(80, dtype=torch.float64)
    expected = torch.cos(k[:, None] * 10000.0 ** (-torch.arange(0, 32, 2) / 32)).sum(-1)  # sum_i cos(k w_i)
    torch.testing.assert_close(gram[0], expected)
    torch.testing.assert_close(gram, gram.T)


def test_sinusoidal_module_adds_the_table_and_extends_it():
    module = SinusoidalPositionalEncoding(8, max_len=10)
    x = torch.randn(2, 6, 8)
    torch.testing.assert_close(module(x), x + sinusoidal_positional_encoding(6, 8))
    torch.testing.assert_close(module(x, offset=7), x + sinusoidal_positional_encoding(13, 8)[7:])
    assert "pe" not in module.state_dict() and not list(module.parameters())


# ---------------------------------------------------------------- learned


def test_learned_positions_add_rows_and_refuse_to_extrapolate():
    module = LearnedPositionalEmbedding(max_len=8, d_model=4)
    assert module.weight.shape == (8, 4) and module.weight.requires_grad
    x = torch.randn(3, 5, 4)
    torch.testing.assert_close(module(x), x + module.weight[:5])
    torch.testing.assert_close(module(x, offset=3), x + module.weight[3:8])
    with pytest.raises(ValueError, match="max_len=8"):
        module(torch.randn(1, 9, 4))
    with pytest.raises(ValueError, match="cannot extrapolate"):
        module(x, offset=4)
    with pytest.raises(ValueError):
        LearnedPositionalEmbedding(0, 4)


def test_learned_positions_get_no_gradient_beyond_the_training_length():
    module = LearnedPositionalEmbedding(max_len=10, d_model=4)
    module(torch.randn(2, 6, 4)).pow(2).sum().backward()
    assert (module.weight.grad[:6].norm(dim=-1) > 0).all() and (module.weight.grad[6:] == 0).all()


# ---------------------------------------------------------------- relative


@pytest.mark.parametrize("q_len,k_len,max_distance", [(1, 1, 0), (4, 4, 2), (3, 7, 1), (6, 2, 3), (5, 5, 10), (4, 6, 0)])
def test_relative_positions_match_the_loop(q_len, k_len, max_distance):
    got = relative_positions(q_len, k_len, max_distance)
    assert got.dtype == torch.long and got.shape == (q_len, k_len)
    for i in range(q_len):
        for j in range(k_len):
            assert got[i, j] == min(max(j - i, -max_distance), max_distance) + max_distance
    assert got.min() >= 0 and got.max() <= 2 * max_distance


def test_relative_positions_are_translation_invariant_and_reject_negatives():
    r = relative_positions(9, 9, 3)
    assert torch.equal(r[1:, 1:], r[:-1, :-1])
    assert torch.equal(r.diagonal(), torch.full((9,), 3))
    with pytest.raises(ValueError, match="max_distance"):
        relative_positions(3, 3, -1)


def test_relative_position_embedding_and_shaw_scores_match_a_loop():
    rel = RelativePositionEmbedding(max_distance=2, dim=8)
    table = rel(5, 6)  # (L_q, L_k, d)
    assert table.shape == (5, 6, 8)
    torch.testing.assert_close(table[0, 4], rel.embedding.weight[4])  # distance +4 clipped to +2 -> row 4
    torch.testing.assert_close(table[3, 0], rel.embedding.weight[0])  # distance -3 clipped to -2 -> row 0
    q, k = torch.randn(2, 5, 8), torch.randn(2, 6, 8)
    scores = relative_attention_scores(q, k, table)
    expected = torch.empty(2, 5, 6)
    for b in range(2):
        for i in range(5):
            for j in range(6):
                expected[b, i, j] = q[b, i] @ (k[b, j] + table[i, j]) / math.sqrt(8)
    torch.testing.assert_close(scores, expected)
    with pytest.raises(ValueError, match="rel_k"):
        relative_attention_scores(q, k, table[:, :5])


def test_relative_position_bias_shape_and_lookup():
    bias = RelativePositionBias(n_heads=3, max_distance=2)
    assert torch.equal(bias(4, 4), torch.zeros(3, 4, 4))  # starts without a preference
    with torch.no_grad():
        bias.bias.weight.copy_(torch.arange(15.0).reshape(5, 3))
    out = bias(4, 6)
    assert out.shape == (3, 4, 6)
    index = relative_positions(4, 6, 2)
    for h in range(3):
        torch.testing.assert_close(out[h], bias.bias.weight[index, h])


# ---------------------------------------------------------------- RoPE


def test_rope_angles_match_the_formula_and_validate():
    angles = rope_angles(20, 12)
    assert angles.shape == (20, 6) and angles.dtype == torch.float32
    for p in (0, 1, 19):
        for i in range(6):
            assert math.isclose(angles[p, i].item(), p * 10000.0 ** (-2 * i / 12), rel_tol=1e-6, abs_tol=1e-7)
    torch.testing.assert_close(rope_angles(5, 4, base=100.0, dtype=torch.float64),
                               torch.arange(5.0, dtype=torch.float64)[:, None] * torch.tensor([1.0, 0.1], dtype=torch.float64))
    with pytest.raises(ValueError, match="even"):
        rope_angles(4, 7)


@pytest.mark.parametrize("shape", [(1, 2), (6, 8), (3, 5, 16), (2, 3, 7, 32)])
@pytest.mark.parametrize("base", [10000.0, 500.0])
def test_apply_rope_matches_a_complex_number_implementation(shape, base):
    x = torch.randn(shape)
    positions = torch.arange(shape[-2])
    got = apply_rope(x, base=base)
    assert got.shape == x.shape and got.dtype == x.dtype
    torch.testing.assert_close(got.double(), rope_complex(x, positions, base), atol=1e-5, rtol=1e-5)


def test_apply_rope_matches_the_rotation_matrices_and_rope_angles():
    x = torch.randn(4, 10, 8)
    positions = torch.tensor([0, 3, 1, 7, 100, 2, 2, 5, 9, 64])
    got = apply_rope(x, positions)
    for t, p in enumerate(positions.tolist()):
        torch.testing.assert_close(got[:, t], x[:, t] @ rope_rotation_matrix(p, 8).T)
    angles = rope_angles(10, 8)  # same angles as apply_rope uses for 0..9
    x1, x2 = x[..., 0::2], x[..., 1::2]
    torch.testing.assert_close(apply_rope(x)[..., 0::2], x1 * angles.cos() - x2 * angles.sin())
    torch.testing.assert_close(apply_rope(x)[..., 1::2], x1 * angles.sin() + x2 * angles.cos())


def test_rope_rotation_matrices_compose_by_difference():
    for m, n in [(0, 5), (3, 11), (40, 7)]:
        r_m, r_n = rope_rotation_matrix(m, 16, dtype=torch.float64), rope_rotation_matrix(n, 16, dtype=torch.float64)
        torch.testing.assert_close(r_m.T @ r_n, rope_rotation_matrix(n - m, 16, dtype=torch.float64))


@settings(max_examples=25, deadline=None)
@given(
    head_dim=st.sampled_from([2, 4, 8, 64]),
    m=st.integers(0, 500),
    n=st.integers(0, 500),
    shift=st.integers(0, 2000),
    seed=st.integers(0, 2**16),
)
def test_rope_scores_depend_only_on_the_relative_position(head_dim, m, n, shift, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(1, head_dim, generator=gen, dtype=torch.float64), torch.randn(1, head_dim, generator=gen, dtype=torch.float64)

    def score(pm, pn):
        return (apply_rope(q, torch.tensor([pm])) @ apply_rope(k, torch.tensor([pn])).T).item()

    assert math.isclose(score(m, n), score(m + shift, n + shift), rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(score(m, n), score(0, n - m), rel_tol=1e-9, abs_tol=1e-9)


def test_rope_score_matrix_is_toeplitz_and_norms_are_preserved():
    q, k = torch.randn(64), torch.randn(64)
    positions = torch.arange(1000, 1030)
    qs = apply_rope(q.expand(30, 64), positions)  # (L, d): the same query at 30 positions
    ks = apply_rope(k.expand(30, 64), positions)
    scores = qs @ ks.T  # (L, L)
    torch.testing.assert_close(scores[1:, 1:], scores[:-1, :-1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(qs.norm(dim=-1), q.norm().expand(30))
    torch.testing.assert_close(apply_rope(q[None], torch.tensor([0])), q[None])  # position 0: identity


def test_apply_rope_with_an_offset_equals_the_slice_of_a_longer_sequence():
    """The KV-cache story: t0 tokens are cached, the new ones sit at positions t0, t0 + 1, ..."""
    x = torch.randn(2, 4, 20, 16)
    full = apply_rope(x)
    t0 = 13
    torch.testing.assert_close(apply_rope(x[..., t0:, :], torch.arange(t0, 20)), full[..., t0:, :])
    assert not torch.allclose(apply_rope(x[..., t0:, :]), full[..., t0:, :])  # forgetting the offset


@settings(max_examples=40, deadline=None)
@given(head_half=st.integers(1, 12), length=st.integers(1, 9), offset=st.integers(0, 20),
       transposed=st.booleans(), seed=st.integers(0, 2**16))
def test_rotary_embedding_equals_apply_rope_at_the_same_positions(head_half, length, offset, transposed, seed):
    """The model's module (tables once, complex multiplication) and chapter 3's function agree."""
    gen = torch.Generator().manual_seed(seed)
    head_dim = 2 * head_half
    rotary = RotaryEmbedding(head_dim, max_len=offset + length)
    if transposed:  # (B, H, L, d) as split_heads returns it: not contiguous
        x = torch.randn(2, length, 3, head_dim, generator=gen).transpose(1, 2)
    else:
        x = torch.randn(2, 3, length, head_dim, generator=gen)
    torch.testing.assert_close(rotary(x, offset), apply_rope(x, torch.arange(offset, offset + length)),
                               atol=1e-5, rtol=1e-5)


def test_rotary_embedding_dtypes_gradients_buffers_and_errors():
    rotary = RotaryEmbedding(8, max_len=6)
    assert dict(rotary.state_dict()) == {} and not list(rotary.parameters())
    x = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    y = rotary(x)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, apply_rope(x))
    y.square().sum().backward()  # a rotation keeps norms: d|Rx|^2/dx = 2x
    torch.testing.assert_close(x.grad, 2 * x.detach())
    assert rotary(torch.randn(2, 3, 8).bfloat16()).dtype == torch.bfloat16
    odd = torch.randn(1, 7)[:, 1:].expand(3, 6)[..., None].expand(3, 6, 8)  # strides no complex view accepts
    torch.testing.assert_close(rotary(odd), apply_rope(odd))
    with pytest.raises(ValueError, match="head_dim=8"):
        rotary(torch.randn(3, 6))
    with pytest.raises(ValueError, match="max_len=6"):
        rotary(torch.randn(4, 8), offset=3)
    with pytest.raises(ValueError):
        RotaryEmbedding(7, max_len=4)


def test_apply_rope_dtypes_positions_and_errors():
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    out = apply_rope(x, torch.arange(5, dtype=torch.int32))
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, rope_complex(x, torch.arange(5)), atol=1e-12, rtol=1e-12)
    half = apply_rope(x.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.double(), out, atol=0.05, rtol=0.05)
    # per-sequence positions broadcast against (B, H, L, d)
    xs = torch.randn(2, 3, 4, 8)
    starts = torch.tensor([0, 6])
    pos = (starts[:, None] + torch.arange(4))[:, None, :]  # (B, 1, L)
    out = apply_rope(xs, pos)
    for b in range(2):
        torch.testing.assert_close(out[b], apply_rope(xs[b], pos[b, 0]))
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.randn(4, 7))
    with pytest.raises(ValueError, match="L=4"):
        apply_rope(torch.randn(4, 8), torch.arange(5))
    with pytest.raises(TypeError, match="positions"):
        apply_rope(torch.randn(4, 8), [0, 1, 2, 3])


def test_interleaved_and_rotate_half_pairings_are_equal_up_to_a_feature_permutation():
    """GPT-NeoX pairs feature i with i + d/2; permuting the features turns one into the other."""
    d = 12
    x = torch.randn(7, d)
    half = d // 2
    to_halves = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])  # interleaved -> halves layout
    angles = rope_angles(7, d)
    xh = x[:, to_halves]
    cos, sin = angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)
    rotate_half = torch.cat([-xh[:, half:], xh[:, :half]], dim=-1)
    neox = xh * cos + rotate_half * sin
    torch.testing.assert_close(neox, apply_rope(x)[:, to_halves])
    assert not torch.allclose(neox, apply_rope(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_apply_rope_follows_x_to_the_gpu_with_positions_anywhere():
    x = torch.randn(2, 9, 16, device="cuda")
    out = apply_rope(x, torch.arange(3, 12))  # positions on the CPU
    assert out.device == x.device
    torch.testing.assert_close(out.cpu(), apply_rope(x.cpu(), torch.arange(3, 12)), atol=1e-5, rtol=1e-5)
    assert sinusoidal_positional_encoding(4, 8, device="cuda").device.type == "cuda"
    assert relative_positions(3, 3, 1, device="cuda").device.type == "cuda"
