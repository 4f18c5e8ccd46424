"""Checks for the positional-encoding exercise (chapter 3): what common mistakes return, an
independent RoPE to compare with, and a guard against calling the course's reference.

Used by the test cells of ``solutions/03_positional_encoding``; :mod:`llm_foundations.checks.core`
holds the general checks (``expect_close`` and friends).
"""

from __future__ import annotations

import math
import sys

import torch
from torch import Tensor

import llm_foundations.positional as _reference
import llm_foundations.checks.core as core


def _frequencies(dim: int, base: float) -> Tensor:
    return base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)


def rope_complex(x: Tensor, positions: Tensor | None = None, base: float = 10000.0) -> Tensor:
    """RoPE written independently of the reference: each pair ``(x_2i, x_2i+1)`` is the complex
    number ``x_2i + 1j * x_2i+1``, multiplied by ``exp(1j * p * theta_i)``.

    Returns float64 (compare with a tolerance). ``x: (..., L, d)``, ``positions: (L,)``.
    """
    d, length = x.size(-1), x.size(-2)
    positions = torch.arange(length) if positions is None else positions.detach().cpu()
    angle = positions.double()[:, None] * _frequencies(d, base)  # (L, d/2)
    z = torch.view_as_complex(x.detach().cpu().double().unflatten(-1, (d // 2, 2)).contiguous())  # (..., L, d/2)
    return torch.view_as_real(z * torch.polar(torch.ones_like(angle), angle)).flatten(-2)  # (..., L, d)


def sinusoidal_mistakes(seq_len: int, d_model: int, base: float = 10000.0) -> dict[str, Tensor]:
    """What common mistakes in the sinusoidal encoding return: ``{explanation: (L, d_model)}``."""
    half = d_model // 2
    p = torch.arange(seq_len, dtype=torch.float64)[:, None]  # (L, 1)

    def interleave(even: Tensor, odd: Tensor) -> Tensor:
        return torch.stack((even, odd), -1).flatten(-2)

    right = p * _frequencies(d_model, base)  # (L, d/2)
    i_not_2i = p * base ** (-torch.arange(half, dtype=torch.float64) / d_model)
    reciprocal = p * base ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    from_one = (p + 1) * _frequencies(d_model, base)
    return {
        "sin and cos are swapped: even features 2i take the sine, odd features 2i+1 the cosine":
            interleave(right.cos(), right.sin()),
        "the exponent uses the pair index i instead of 2i (base^(i/d_model)): the frequencies fall too slowly":
            interleave(i_not_2i.sin(), i_not_2i.cos()),
        "positions are multiplied by base^(2i/d_model) instead of divided: the frequencies grow instead of fall":
            interleave(reciprocal.sin(), reciprocal.cos()),
        "the sines fill the first half and the cosines the second half; they must alternate (sin, cos, sin, cos, ...)":
            torch.cat((right.sin(), right.cos()), dim=-1),
        "positions start at 1; the first position is 0":
            interleave(from_one.sin(), from_one.cos()),
    }


def relative_positions_mistakes(q_len: int, k_len: int, max_distance: int) -> dict[str, Tensor]:
    """What common mistakes in Shaw et al.'s clipped distances return: ``{explanation: (L_q, L_k)}``."""
    i = torch.arange(q_len)[:, None]
    j = torch.arange(k_len)[None, :]
    k = max_distance
    return {
        "the distance is i - j; it must be j - i (key minus query, so earlier keys are negative)":
            (i - j).clamp(-k, k) + k,
        "the +max_distance offset is missing: indices of a table must start at 0":
            (j - i).clamp(-k, k),
        "the distances are clipped to one less than max_distance on one side (off by one in the clamp)":
            (j - i).clamp(-k, k - 1) + k,
        "the absolute distance |j - i| is used, so 'two before' and 'two after' look the same":
            (j - i).abs().clamp(max=k) + k,
    }


def rope_angles_mistakes(seq_len: int, head_dim: int, base: float = 10000.0) -> dict[str, Tensor]:
    """What common mistakes in the RoPE angles return: ``{explanation: (L, head_dim // 2)}``."""
    p = torch.arange(seq_len, dtype=torch.float64)[:, None]
    half = head_dim // 2
    return {
        "the exponent uses the pair index i instead of 2i (base^(-i/head_dim))":
            p * base ** (-torch.arange(half, dtype=torch.float64) / head_dim),
        "the exponent has the wrong sign: base^(+2i/head_dim) makes the frequencies grow":
            p * base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim),
        "positions start at 1; the first position is 0": (p + 1) * _frequencies(head_dim, base),
    }


def apply_rope_mistakes(x: Tensor, positions: Tensor | None = None, base: float = 10000.0) -> dict[str, Tensor]:
    """What common mistakes in :func:`apply_rope` return: ``{explanation: tensor like x}`` (float64)."""
    d, length = x.size(-1), x.size(-2)
    positions = torch.arange(length) if positions is None else positions.detach().cpu()
    xd = x.detach().cpu().double()
    angle = positions.double()[:, None] * _frequencies(d, base)  # (L, d/2)

    def rotate(a: Tensor, direction: float = 1.0, layout: str = "interleaved") -> Tensor:
        cos, sin = a.cos(), direction * a.sin()
        if layout == "halves":  # GPT-NeoX: feature i pairs with i + d/2
            x1, x2 = xd[..., : d // 2], xd[..., d // 2 :]
            return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
        x1, x2 = xd[..., 0::2], xd[..., 1::2]
        first, second = x1 * cos - x2 * sin, x1 * sin + x2 * cos
        if layout == "concatenated":
            return torch.cat((first, second), dim=-1)
        return torch.stack((first, second), dim=-1).flatten(-2)

    mistakes = {
        "features i and i + head_dim/2 are paired (GPT-NeoX's 'rotate_half'); this course pairs (2i, 2i+1)":
            rotate(angle, layout="halves"),
        "the rotation goes the wrong way (the signs of the sin terms are swapped)": rotate(angle, -1.0),
        "the rotated halves are concatenated ([all x'_2i, all x'_2i+1]) instead of interleaved back into pairs":
            rotate(angle, layout="concatenated"),
        "the exponent uses the pair index i instead of 2i":
            rotate(positions.double()[:, None] * base ** (-torch.arange(d // 2, dtype=torch.float64) / d)),
        "the exponent has the wrong sign (base^(+2i/head_dim))":
            rotate(positions.double()[:, None] * base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)),
    }
    default = torch.arange(length, dtype=torch.float64)[:, None] * _frequencies(d, base)
    if not torch.equal(positions.double(), torch.arange(length, dtype=torch.float64)):
        mistakes["the positions argument is ignored (positions 0..L-1 are used instead)"] = rotate(default)
    mistakes["positions start at 1; the first position is 0"] = rotate(
        (positions.double() + 1)[:, None] * _frequencies(d, base))
    return mistakes


def expected_sinusoidal(seq_len: int, d_model: int, base: float = 10000.0) -> Tensor:
    """The sinusoidal encoding written as the paper's double loop, in float64: ``(L, d_model)``."""
    rows = []
    for p in range(seq_len):
        row = []
        for i in range(d_model // 2):
            angle = p / base ** (2 * i / d_model)
            row += [math.sin(angle), math.cos(angle)]
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).reshape(seq_len, d_model)


def expected_relative_positions(q_len: int, k_len: int, max_distance: int) -> Tensor:
    """Shaw et al.'s clipped distances written as a double loop: ``(L_q, L_k)``, dtype long."""
    rows = [[min(max(j - i, -max_distance), max_distance) + max_distance for j in range(k_len)] for i in range(q_len)]
    return torch.tensor(rows, dtype=torch.long).reshape(q_len, k_len)


def expected_rope_angles(seq_len: int, head_dim: int, base: float = 10000.0) -> Tensor:
    """``p * base^(-2i/head_dim)`` written as a double loop, in float64: ``(L, head_dim // 2)``."""
    rows = [[p * base ** (-2 * i / head_dim) for i in range(head_dim // 2)] for p in range(seq_len)]
    return torch.tensor(rows, dtype=torch.float64).reshape(seq_len, head_dim // 2)


#: Fail if the code in the block calls the course's reference module or this one (whose helpers
#: compute the expected answers), however it was reached.
forbid_reference = core.reference_guard(modules=(_reference, sys.modules[__name__]))
