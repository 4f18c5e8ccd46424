"""Positional information for attention: sinusoidal, learned, relative and rotary (chapter 3).

Attention by itself is order-blind: permuting the tokens permutes the outputs in the same way.
This module holds the four classic ways of telling a Transformer where each token is.

- **Absolute** positions are added to the token embeddings before the first layer:
  :func:`sinusoidal_positional_encoding` (Vaswani et al., 2017, §3.5) and
  :class:`LearnedPositionalEmbedding` (a trained table, one row per position).
- **Relative** positions enter the attention scores themselves: :func:`relative_positions`
  gives the clipped distances of Shaw et al. (2018), which index the learned vectors of
  :class:`RelativePositionEmbedding` (used by :func:`relative_attention_scores`) or the learned
  scalars of :class:`RelativePositionBias`.
- **Rotary** position embeddings (RoPE, Su et al., RoFormer) rotate each pair of query/key
  features by an angle proportional to the position: :func:`rope_angles` and
  :func:`apply_rope` (:class:`RotaryEmbedding`: the same with its tables computed once, for a
  model). The dot product of a rotated query and a rotated key depends only on
  their relative position.

Dimension letters used in the shapes below:

- ``L``: sequence length; ``L_q``: number of queries; ``L_k``: number of keys
- ``B``: batch size; ``H``: number of heads
- ``d_model``: model width; ``head_dim``: width of one head's queries and keys
- ``D = 2 * max_distance + 1``: number of distinct clipped relative distances
- ``...``: any number of leading dimensions

Feature pairs. Both the sinusoidal encoding and RoPE work on pairs of features ``(2i, 2i + 1)``
(*interleaved* pairs, as in the papers), each pair with its own frequency
``omega_i = base ** (-2i / d)``. Some libraries (GPT-NeoX, Llama's Hugging Face port) pair
feature ``i`` with feature ``i + d/2`` instead ("rotate half"); that is the same method up to a
fixed permutation of the features, but it gives different numbers for the same input, and this
module follows the papers.

Precision. Angles grow with the position (``p * omega_0 = p`` radians), and float32 holds an
angle of 1000 rad only to about 6e-5 rad, so the angles are computed in float64 where the device
supports it (``float32`` on Apple's MPS, which has no float64) and the results are returned in
the dtype asked for (or ``x``'s dtype for :func:`apply_rope`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = [
    "LearnedPositionalEmbedding",
    "RelativePositionBias",
    "RelativePositionEmbedding",
    "RotaryEmbedding",
    "SinusoidalPositionalEncoding",
    "apply_rope",
    "relative_attention_scores",
    "relative_positions",
    "rope_angles",
    "rope_rotation_matrix",
    "sinusoidal_positional_encoding",
    "sinusoidal_shift_matrix",
]


# --------------------------------------------------------------------------------------------
# helpers


def _check_even(dim: int, name: str) -> None:
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0 or dim % 2 != 0:
        raise ValueError(
            f"{name} must be a positive even integer (features come in (sin, cos) / rotation "
            f"pairs), got {dim!r}"
        )


def _check_length(length: int, name: str) -> None:
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {length!r}")


def _angle_dtype(device: torch.device | str | None) -> torch.dtype:
    """float64 for computing angles, except on MPS, which has no float64."""
    return torch.float32 if torch.device(device or "cpu").type == "mps" else torch.float64


def _frequencies(dim: int, base: float, device=None, dtype=torch.float64) -> Tensor:
    """``omega_i = base ** (-2i / dim)`` for ``i = 0 .. dim/2 - 1``; shape ``(dim // 2,)``."""
    two_i = torch.arange(0, dim, 2, device=device, dtype=dtype)  # (dim/2,): 0, 2, 4, ...
    return base ** (-two_i / dim)  # (dim/2,)


# --------------------------------------------------------------------------------------------
# absolute positions: sinusoidal and learned


def sinusoidal_positional_encoding(
    seq_len: int,
    d_model: int,
    base: float = 10000.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""The sinusoidal position encoding of Vaswani et al. (2017, §3.5).

    .. math::
        PE_{(p, 2i)} = \sin\!\left(p / \mathrm{base}^{2i/d_\text{model}}\right), \qquad
        PE_{(p, 2i+1)} = \cos\!\left(p / \mathrm{base}^{2i/d_\text{model}}\right)

    Args:
        seq_len: number of positions ``L`` (positions ``0 .. L-1``).
        d_model: width of the encoding; must be even (one sine and one cosine per frequency).
        base: the constant 10000 of the paper; wavelengths grow geometrically from ``2 pi`` to
            ``base * 2 pi``.
        device: where to put the result (default: the CPU).
        dtype: the result's dtype (the angles are computed in float64 where possible).

    Shape:
        - output: ``(L, d_model)``

    Returns:
        ``PE`` with row ``p`` the encoding of position ``p``.

    Raises:
        ValueError: ``d_model`` is odd or not positive, or ``seq_len`` is negative.
    """
    _check_length(seq_len, "seq_len")
    _check_even(d_model, "d_model")
    work = _angle_dtype(device)
    position = torch.arange(seq_len, device=device, dtype=work)  # (L,)
    angle = position[:, None] * _frequencies(d_model, base, device, work)  # (L, d_model/2)
    pe = torch.stack((angle.sin(), angle.cos()), dim=-1)  # (L, d_model/2, 2): (sin, cos) pairs
    return pe.flatten(-2).to(dtype)  # (L, d_model): sin at even, cos at odd features


def sinusoidal_shift_matrix(
    offset: float, d_model: int, base: float = 10000.0, *, dtype: torch.dtype = torch.float32
) -> Tensor:
    r"""The fixed matrix ``M_k`` with ``PE(p + k) = M_k PE(p)`` for every position ``p``.

    For each frequency ``omega_i`` the pair ``(sin p w, cos p w)`` moves to
    ``(sin (p+k) w, cos (p+k) w)`` through the 2x2 block
    ``[[cos k w, sin k w], [-sin k w, cos k w]]``; ``M_k`` is block-diagonal with these blocks.
    It depends on the offset ``k`` only, never on ``p``: the property Vaswani et al. (§3.5)
    hoped would let the model attend by relative position.

    Args:
        offset: the shift ``k`` (any real number).
        d_model: width of the encoding (even).
        base: as in :func:`sinusoidal_positional_encoding`.
        dtype: the result's dtype.

    Shape:
        - output: ``(d_model, d_model)``; apply it to row vectors as ``pe @ M_k.T``.
    """
    _check_even(d_model, "d_model")
    angle = offset * _frequencies(d_model, base)  # (d_model/2,)
    cos, sin = angle.cos(), angle.sin()
    blocks = torch.stack((torch.stack((cos, sin), -1), torch.stack((-sin, cos), -1)), -2)  # (d/2, 2, 2)
    return torch.block_diag(*blocks).to(dtype)  # (d_model, d_model)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding to a batch of embeddings (Vaswani et al., 2017, §3.5).

    The table of the first ``max_len`` positions is a buffer (it moves with ``.to(device)`` and
    is saved with the model, but it is not trained); longer inputs compute the missing rows on
    the fly, since the formula works for any position.

    Args:
        d_model: model width (even).
        max_len: number of positions tabulated in advance.
        dropout: dropout probability on the sum (Vaswani et al. use 0.1).
        base: as in :func:`sinusoidal_positional_encoding`.
    """

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0, base: float = 10000.0):
        super().__init__()
        self.d_model, self.base = d_model, base
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model, base), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Return ``dropout(x + PE[offset : offset + L])``.

        Args:
            x: embeddings.
            offset: position of the first token (the number of tokens already in a KV cache).

        Shape:
            - x: ``(..., L, d_model)``
            - output: same as ``x``
        """
        length = x.size(-2)
        if offset + length <= self.pe.size(0):
            pe = self.pe[offset : offset + length]  # (L, d_model)
        else:
            pe = sinusoidal_positional_encoding(offset + length, self.d_model, self.base, device=x.device)[offset:]
        return self.dropout(x + pe.to(x.dtype))


class LearnedPositionalEmbedding(nn.Module):
    """A trained table of absolute position vectors, added to the token embeddings (BERT, GPT-2).

    Row ``p`` of ``.weight`` is the vector of position ``p``. It only exists for
    ``p < max_len``: a learned table cannot *extrapolate* to positions it has no row for (and
    rows that no training sequence reached stay at their random initial values), so asking for a
    position ``>= max_len`` raises a ``ValueError`` that says so.

    Args:
        max_len: number of positions (rows of the table).
        d_model: model width.

    Attributes:
        weight: ``(max_len, d_model)`` parameter, initialised from ``N(0, 0.02^2)`` (as GPT-2).
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        if max_len <= 0 or d_model <= 0:
            raise ValueError(f"max_len and d_model must be positive, got max_len={max_len}, d_model={d_model}")
        self.max_len, self.d_model = max_len, d_model
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Return ``x + weight[offset : offset + L]``.

        Args:
            x: embeddings.
            offset: position of the first token (the number of tokens already in a KV cache).

        Shape:
            - x: ``(..., L, d_model)``
            - output: same as ``x``

        Raises:
            ValueError: ``offset + L > max_len``: the table has no row for the last positions.
        """
        length = x.size(-2)
        if offset < 0 or offset + length > self.max_len:
            raise ValueError(
                f"positions {offset}..{offset + length - 1} do not fit a learned table of max_len="
                f"{self.max_len} positions (0..{self.max_len - 1}): learned absolute positions cannot "
                "extrapolate past the longest sequence they were built for"
            )
        return x + self.weight[offset : offset + length]  # (..., L, d_model)


# --------------------------------------------------------------------------------------------
# relative positions (Shaw et al., 2018)


def relative_positions(
    q_len: int, k_len: int, max_distance: int, *, device: torch.device | str | None = None
) -> Tensor:
    r"""Clipped relative distances used as indices, as in Shaw et al. (2018, §3.2).

    .. math:: \mathrm{index}_{ij} = \mathrm{clip}(j - i, -k, k) + k

    Query ``i`` looking at key ``j`` sees the distance ``j - i`` (negative: the key is earlier),
    clipped to ``[-max_distance, max_distance]`` (beyond that, every distance looks the same)
    and shifted by ``max_distance`` so that it indexes a table of ``2 * max_distance + 1`` rows.

    Args:
        q_len: number of queries ``L_q`` (query ``i`` is at position ``i``).
        k_len: number of keys ``L_k`` (key ``j`` is at position ``j``).
        max_distance: the clipping distance ``k >= 0``.
        device: where to put the result.

    Shape:
        - output: ``(L_q, L_k)``, dtype ``torch.long``, values in ``0 .. 2 * max_distance``.
    """
    _check_length(q_len, "q_len")
    _check_length(k_len, "k_len")
    _check_length(max_distance, "max_distance")
    i = torch.arange(q_len, device=device)[:, None]  # (L_q, 1)
    j = torch.arange(k_len, device=device)[None, :]  # (1, L_k)
    return (j - i).clamp(-max_distance, max_distance) + max_distance  # (L_q, L_k)


class RelativePositionEmbedding(nn.Module):
    """Shaw et al.'s learned relative position representations ``a_ij = w_{clip(j - i, k)}``.

    One learned vector per clipped distance; :func:`relative_attention_scores` adds them to the
    keys (``a^K``), and a second instance can be added to the values (``a^V``).

    Args:
        max_distance: the clipping distance ``k``.
        dim: width of each vector (the head width ``d_z`` in the paper).

    Attributes:
        embedding: ``nn.Embedding(2 * max_distance + 1, dim)``; row ``d + k`` is distance ``d``.
    """

    def __init__(self, max_distance: int, dim: int):
        super().__init__()
        _check_length(max_distance, "max_distance")
        self.max_distance = max_distance
        self.embedding = nn.Embedding(2 * max_distance + 1, dim)

    def forward(self, q_len: int, k_len: int) -> Tensor:
        """Shape: output ``(L_q, L_k, dim)``, entry ``[i, j]`` the vector of distance ``j - i``."""
        index = relative_positions(q_len, k_len, self.max_distance, device=self.embedding.weight.device)
        return self.embedding(index)  # (L_q, L_k, dim)


def relative_attention_scores(q: Tensor, k: Tensor, rel_k: Tensor) -> Tensor:
    r"""Attention scores with relative position vectors on the keys (Shaw et al., 2018, §3.1).

    .. math:: e_{ij} = \frac{q_i \cdot (k_j + a^K_{ij})}{\sqrt{d}}
              = \frac{q_i \cdot k_j + q_i \cdot a^K_{ij}}{\sqrt{d}}

    Args:
        q: queries.
        k: keys.
        rel_k: relative position vectors, e.g. ``RelativePositionEmbedding(...)(L_q, L_k)``.

    Shape:
        - q: ``(..., L_q, d)``
        - k: ``(..., L_k, d)``
        - rel_k: ``(L_q, L_k, d)``
        - output: ``(..., L_q, L_k)``, to be softmaxed over the keys like ordinary scores.
    """
    if rel_k.shape != (q.size(-2), k.size(-2), q.size(-1)):
        raise ValueError(
            f"rel_k must have shape (L_q, L_k, d) = {(q.size(-2), k.size(-2), q.size(-1))}, "
            f"got {tuple(rel_k.shape)}"
        )
    content = q @ k.transpose(-2, -1)  # (..., L_q, L_k)
    position = torch.einsum("...id,ijd->...ij", q, rel_k)  # (..., L_q, L_k)
    return (content + position) / math.sqrt(q.size(-1))


class RelativePositionBias(nn.Module):
    """One learned scalar per head and clipped distance, added to the attention scores.

    The scalar special case of Shaw et al.'s ``q_i . a^K_ij`` term (the form T5 uses, with
    clipped instead of bucketed distances): the bias does not depend on the content, only on
    ``j - i``. Add it to the scores before the softmax.

    Args:
        n_heads: number of heads ``H``.
        max_distance: the clipping distance ``k``.

    Attributes:
        bias: ``nn.Embedding(2 * max_distance + 1, n_heads)``, initialised at zero (no preference).
    """

    def __init__(self, n_heads: int, max_distance: int):
        super().__init__()
        _check_length(max_distance, "max_distance")
        self.n_heads, self.max_distance = n_heads, max_distance
        self.bias = nn.Embedding(2 * max_distance + 1, n_heads)
        nn.init.zeros_(self.bias.weight)

    def forward(self, q_len: int, k_len: int) -> Tensor:
        """Shape: output ``(H, L_q, L_k)``; it broadcasts against scores ``(B, H, L_q, L_k)``."""
        index = relative_positions(q_len, k_len, self.max_distance, device=self.bias.weight.device)
        return self.bias(index).permute(2, 0, 1)  # (H, L_q, L_k)


# --------------------------------------------------------------------------------------------
# rotary position embeddings (Su et al., RoFormer)


def rope_angles(
    seq_len: int,
    head_dim: int,
    base: float = 10000.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""The rotation angles of RoPE: ``theta[p, i] = p * base^(-2i / head_dim)``.

    Args:
        seq_len: number of positions ``L`` (positions ``0 .. L-1``).
        head_dim: width of a query/key head; must be even (features rotate in pairs).
        base: 10000 in RoFormer; larger bases rotate more slowly (used to stretch the context).
        device: where to put the result.
        dtype: the result's dtype (computed in float64 where possible).

    Shape:
        - output: ``(L, head_dim // 2)``: row ``p``, column ``i`` is the angle of pair ``i`` at
          position ``p``.

    Raises:
        ValueError: ``head_dim`` is odd or not positive, or ``seq_len`` is negative.
    """
    _check_length(seq_len, "seq_len")
    _check_even(head_dim, "head_dim")
    work = _angle_dtype(device)
    position = torch.arange(seq_len, device=device, dtype=work)  # (L,)
    return (position[:, None] * _frequencies(head_dim, base, device, work)).to(dtype)  # (L, head_dim/2)


def apply_rope(x: Tensor, positions: Tensor | None = None, base: float = 10000.0) -> Tensor:
    r"""Rotary position embedding (Su et al., RoFormer, §3.4.2) with interleaved pairs.

    Each pair of features ``(x[..., 2i], x[..., 2i+1])`` of the token at position ``p`` is
    rotated by the angle ``p * theta_i``, ``theta_i = base^(-2i / head_dim)``:

    .. math::
        \begin{pmatrix} x'_{2i} \\ x'_{2i+1} \end{pmatrix} =
        \begin{pmatrix} \cos p\theta_i & -\sin p\theta_i \\ \sin p\theta_i & \cos p\theta_i \end{pmatrix}
        \begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix}

    Apply it to the queries and the keys (never the values) after the projections; then
    ``apply_rope(q)[m] . apply_rope(k)[n]`` depends on ``m``, ``n`` only through ``n - m``.

    Args:
        x: queries or keys; the second-to-last axis is the sequence.
        positions: the position of each token, integers (floats also work, for interpolated
            positions). ``None`` means ``0 .. L-1``. With a KV cache holding ``t0`` tokens, new
            tokens use ``torch.arange(t0, t0 + L)``. Any device; it is moved to ``x``'s. A tensor
            of shape ``(..., L)`` that broadcasts against ``x.shape[:-1]`` gives every sequence of
            a batch its own positions.
        base: as in :func:`rope_angles`.

    Shape:
        - x: ``(..., L, head_dim)``, ``head_dim`` even
        - positions: ``(L,)`` (or broadcastable ``(..., L)``)
        - output: same shape, dtype and device as ``x``

    Raises:
        ValueError: ``head_dim`` is odd, or ``positions`` does not have ``L`` entries.
        TypeError: ``positions`` is not a real-valued tensor.
    """
    if x.dim() < 2:
        raise ValueError(f"x must have shape (..., L, head_dim), got {tuple(x.shape)}")
    length, head_dim = x.shape[-2], x.shape[-1]
    _check_even(head_dim, "head_dim (the last dimension of x)")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    if positions is None:
        positions = torch.arange(length, device=x.device)  # (L,)
    if not isinstance(positions, Tensor) or positions.dtype == torch.bool or positions.is_complex():
        raise TypeError(f"positions must be a tensor of integer positions, got {positions!r:.80}")
    if positions.dim() == 0 or positions.size(-1) != length:
        raise ValueError(f"positions must have L={length} entries along its last axis, got shape {tuple(positions.shape)}")
    angles = positions.to(x.device, work)[..., None] * _frequencies(head_dim, base, x.device, work)  # (..., L, d/2)
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., 0::2].to(work), x[..., 1::2].to(work)  # (..., L, d/2): first and second of each pair
    return _rotate_pairs(x1, x2, cos, sin).flatten(-2).to(x.dtype)  # (..., L, head_dim), pairs interleaved again


def _rotate_pairs(x1: Tensor, x2: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Each pair ``(x1, x2)`` turned by the angle whose cosine and sine are given: ``(..., d/2, 2)``."""
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class RotaryEmbedding(nn.Module):
    """:func:`apply_rope` for a model: its cosines and sines computed once, for positions ``0..max_len-1``.

    A model rotates the queries and keys of every layer at every step; this module keeps the
    tables as buffers (they follow the model to its device and are not saved in its state dict)
    and gives the same numbers as :func:`apply_rope`, up to float32 rounding. It has no parameters.

    Args:
        head_dim: width of a query/key head; must be even.
        max_len: number of positions the tables cover.
        base: as in :func:`rope_angles`.

    Attributes:
        cos, sin: ``(max_len, head_dim // 2)`` float32 buffers, ``cos(p * theta_i)`` and ``sin(p * theta_i)``.
    """

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0):
        super().__init__()
        _check_length(max_len, "max_len")
        angles = rope_angles(max_len, head_dim, base, dtype=torch.float64)  # (max_len, head_dim/2)
        self.head_dim, self.max_len = head_dim, max_len
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Rotate ``x`` as the tokens at positions ``offset .. offset + L - 1``.

        Args:
            x: queries or keys.
            offset: position of the first token (the number of tokens already in a KV cache).

        Shape:
            - x: ``(..., L, head_dim)``
            - output: same shape and dtype as ``x`` (computed in at least float32)

        Raises:
            ValueError: the last axis is not ``head_dim``, or ``offset + L > max_len``.
        """
        length = x.size(-2) if x.dim() >= 2 else 0
        if x.dim() < 2 or x.size(-1) != self.head_dim:
            raise ValueError(f"x must have shape (..., L, head_dim={self.head_dim}), got {tuple(x.shape)}")
        if offset < 0 or offset + length > self.max_len:
            raise ValueError(f"positions {offset}..{offset + length - 1} are outside the tables of "
                             f"max_len={self.max_len} positions; build a RotaryEmbedding with a larger max_len")
        work = torch.promote_types(x.dtype, torch.float32)  # a bfloat16 rotation would lose the angle's digits
        cos = self.cos[offset : offset + length].to(work)  # (L, head_dim/2)
        sin = self.sin[offset : offset + length].to(work)
        pairs = x.to(work).unflatten(-1, (-1, 2))  # (..., L, head_dim/2, 2): the two features of each pair
        if x.device.type == "mps":  # no complex numbers there: the rotation written out, as apply_rope does
            rotated = _rotate_pairs(pairs[..., 0], pairs[..., 1], cos, sin)  # (..., L, head_dim/2, 2)
        else:  # a pair is the complex number x1 + i x2, rotated by multiplying with e^{i p theta}:
            # one operation forward and one backward instead of a dozen (a tenth of a small GPT's step)
            try:
                as_complex = torch.view_as_complex(pairs)
            except RuntimeError:  # strides that pair up no complex numbers (an odd offset, say): copy first
                as_complex = torch.view_as_complex(pairs.contiguous())
            rotated = torch.view_as_real(as_complex * torch.complex(cos, sin))
        return rotated.flatten(-2).to(x.dtype)  # (..., L, head_dim)


def rope_rotation_matrix(position: float, head_dim: int, base: float = 10000.0, *,
                         dtype: torch.dtype = torch.float32) -> Tensor:
    r"""The block-diagonal rotation ``R_p`` that :func:`apply_rope` applies at position ``p``.

    ``apply_rope(x, positions=torch.tensor([p]))`` equals ``x @ R_p.T``, and
    ``R_m^T R_n = R_{n-m}``: the reason RoPE scores depend only on relative positions.

    Shape:
        - output: ``(head_dim, head_dim)``
    """
    _check_even(head_dim, "head_dim")
    angle = position * _frequencies(head_dim, base)  # (head_dim/2,)
    cos, sin = angle.cos(), angle.sin()
    blocks = torch.stack((torch.stack((cos, -sin), -1), torch.stack((sin, cos), -1)), -2)  # (d/2, 2, 2)
    return torch.block_diag(*blocks).to(dtype)  # (head_dim, head_dim)
