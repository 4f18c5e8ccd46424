"""The chapter-3 checks (llm_foundations.checks.ch03_positional_encoding): the independent computations
agree with the reference, every named mistake is that mistake, and the guard catches the reference."""

import math

import pytest
import torch

from llm_foundations.positional import (
    SinusoidalPositionalEncoding,
    apply_rope,
    relative_positions,
    rope_angles,
    sinusoidal_positional_encoding,
)
from llm_foundations.checks.ch03_positional_encoding import (
    apply_rope_mistakes,
    expected_relative_positions,
    expected_rope_angles,
    expected_sinusoidal,
    forbid_reference,
    relative_positions_mistakes,
    rope_angles_mistakes,
    rope_complex,
    sinusoidal_mistakes,
)
from mistakes import named


@pytest.mark.parametrize("length,d", [(1, 2), (7, 8), (12, 6)])
def test_expected_helpers_agree_with_the_reference(length, d):
    torch.testing.assert_close(expected_sinusoidal(length, d), sinusoidal_positional_encoding(length, d, dtype=torch.float64))
    torch.testing.assert_close(expected_sinusoidal(length, d, 100.0),
                               sinusoidal_positional_encoding(length, d, 100.0, dtype=torch.float64))
    assert torch.equal(expected_relative_positions(length, length + 2, 3), relative_positions(length, length + 2, 3))
    torch.testing.assert_close(expected_rope_angles(length, d), rope_angles(length, d).double())
    x = torch.randn(2, 3, length, d, dtype=torch.float64)
    torch.testing.assert_close(rope_complex(x), apply_rope(x))
    positions = torch.randperm(3 * length)[:length]
    torch.testing.assert_close(rope_complex(x, positions, 500.0), apply_rope(x, positions, 500.0))


def test_rope_complex_rotates_pairs_and_depends_on_offsets_only():
    q, k = torch.randn(1, 8, dtype=torch.float64), torch.randn(1, 8, dtype=torch.float64)
    rq = [rope_complex(q, torch.tensor([p])) for p in range(6)]
    rk = [rope_complex(k, torch.tensor([p])) for p in range(6)]
    torch.testing.assert_close(rq[3].unflatten(-1, (4, 2)).norm(dim=-1), q.unflatten(-1, (4, 2)).norm(dim=-1))
    torch.testing.assert_close((rq[4] * rk[1]).sum(), (rq[5] * rk[2]).sum())  # offset 3 both times
    angle = 2.0 * 10000.0 ** 0  # pair 0 turns by the position itself
    torch.testing.assert_close(rope_complex(torch.tensor([[1.0, 0.0]]), torch.tensor([2])),
                               torch.tensor([[math.cos(angle), math.sin(angle)]], dtype=torch.float64))


def test_sinusoidal_mistakes_are_the_mistakes_they_name():
    right = expected_sinusoidal(6, 8)
    m = sinusoidal_mistakes(6, 8)
    swapped = named(m, "sin and cos are swapped")
    torch.testing.assert_close(swapped[:, 0::2], right[:, 1::2])
    torch.testing.assert_close(swapped[:, 1::2], right[:, 0::2])
    torch.testing.assert_close(named(m, "the sines fill the first half"), torch.cat((right[:, 0::2], right[:, 1::2]), -1))
    torch.testing.assert_close(named(m, "positions start at 1"), expected_sinusoidal(7, 8)[1:])
    # base^(i/d) with d = 8 is base^(2i/16): the pairs of a 16-wide encoding, first half
    torch.testing.assert_close(named(m, "the exponent uses the pair index i"), expected_sinusoidal(6, 16)[:, :8])
    torch.testing.assert_close(named(m, "positions are multiplied"), expected_sinusoidal(6, 8, 1 / 10000.0))
    for why, wrong in m.items():
        assert wrong.shape == right.shape and not torch.allclose(wrong, right), why


def test_relative_positions_mistakes_are_the_mistakes_they_name():
    right = expected_relative_positions(5, 7, 2)
    m = relative_positions_mistakes(5, 7, 2)
    assert torch.equal(named(m, "the distance is i - j"), 4 - right)
    assert torch.equal(named(m, "the +max_distance offset is missing"), right - 2)
    assert torch.equal(named(m, "the distances are clipped to one less"), right.clamp(max=3))
    assert torch.equal(named(m, "the absolute distance"), (right - 2).abs() + 2)
    for why, wrong in m.items():
        assert wrong.shape == right.shape and not torch.equal(wrong, right), why


def test_rope_angles_and_apply_rope_mistakes_are_the_mistakes_they_name():
    right = expected_rope_angles(5, 8)
    m = rope_angles_mistakes(5, 8)
    torch.testing.assert_close(named(m, "positions start at 1"), expected_rope_angles(6, 8)[1:])
    torch.testing.assert_close(named(m, "the exponent uses the pair index i"), expected_rope_angles(5, 16)[:, :4])
    for why, wrong in m.items():
        assert not torch.allclose(wrong, right), why

    x = torch.randn(2, 5, 8, dtype=torch.float64)
    positions = torch.tensor([3, 0, 7, 1, 2])
    right = rope_complex(x, positions)
    m = apply_rope_mistakes(x, positions)
    torch.testing.assert_close(named(m, "the rotation goes the wrong way"), rope_complex(x, -positions))
    torch.testing.assert_close(named(m, "positions start at 1"), rope_complex(x, positions + 1))
    torch.testing.assert_close(named(m, "the positions argument is ignored"), rope_complex(x))
    torch.testing.assert_close(named(m, "the rotated halves are concatenated"), torch.cat((right[..., 0::2], right[..., 1::2]), -1))
    # rotate_half: the course's rotation applied to x with features i and i + d/2 made neighbours
    neighbours = torch.stack((x[..., :4], x[..., 4:]), -1).flatten(-2)
    rotated = rope_complex(neighbours, positions)
    torch.testing.assert_close(named(m, "features i and i + head_dim/2 are paired"),
                               torch.cat((rotated[..., 0::2], rotated[..., 1::2]), -1))
    for why, wrong in m.items():
        assert wrong.shape == x.shape and not torch.allclose(wrong, right), why
    assert not any("ignored" in why for why in apply_rope_mistakes(x))  # nothing to ignore without positions


def test_forbid_reference_catches_a_direct_call_a_wrapper_a_subclass_and_the_checks_own_helpers():
    def wrapper(length, d):
        return sinusoidal_positional_encoding(length, d) + 0

    class Subclass(SinusoidalPositionalEncoding):
        pass

    for name, run in [("direct", lambda: rope_angles(4, 8)), ("wrapper", lambda: wrapper(4, 8)),
                      ("subclass", lambda: Subclass(8, max_len=4)(torch.zeros(1, 4, 8))),
                      ("the expected answer", lambda: expected_sinusoidal(4, 8))]:
        with pytest.raises(AssertionError, match="calls the course's reference code"):
            with forbid_reference(name):
                run()
    with forbid_reference("honest code"):
        p = torch.arange(4.0)[:, None]
        angle = p / 10000.0 ** (torch.arange(0, 8, 2) / 8)
        torch.stack((angle.sin(), angle.cos()), -1).flatten(-2)
