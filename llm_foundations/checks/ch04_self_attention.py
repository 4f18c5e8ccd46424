"""Chapter 4's checks (self-attention): the hints for wrong attention and multi-head answers.

Used by the test cells of ``solutions/04_self_attention`` next to :mod:`llm_foundations.checks.core`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

import llm_foundations.attention as _attention
from llm_foundations.checks.core import close


def scaled_dot_product_attention_mistakes(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> dict[str, tuple[Tensor, Tensor]]:
    """What common mistakes in scaled dot-product attention return: ``{explanation: (output, weights)}``.

    Used to turn "wrong values" into a specific hint.
    """
    d_k = q.size(-1)
    raw = q @ k.transpose(-2, -1)

    def run(scores: Tensor, dim: int = -1, keep: Tensor | None = mask, fill: float = float("-inf")):
        if keep is not None:
            scores = scores.masked_fill(~keep, fill)
        weights = torch.softmax(scores, dim=dim)
        return weights @ v, weights

    mistakes = {
        "the scores are not divided by sqrt(d_k)": run(raw),
        "the scores are divided by d_k instead of sqrt(d_k)": run(raw / d_k),
        "softmax runs over the queries (dim=-2) instead of over the keys (dim=-1)": run(raw / math.sqrt(d_k), dim=-2),
    }
    if mask is not None:
        mistakes["the mask is inverted: True must mean 'may attend', so fill where the mask is False"] = run(
            raw / math.sqrt(d_k), keep=~mask
        )
        mistakes[
            "masked scores are filled with a large finite number: rows whose keys are all masked must "
            "give zero weights, not a uniform distribution"
        ] = run(raw / math.sqrt(d_k), fill=-1e9)
    return mistakes


def multihead_hint(hint: str, attention: Callable, split_heads: Callable, merge_heads: Callable) -> Callable[[], str]:
    """A hint for a wrong ``MultiHeadAttention``, for :func:`expect_close`: ``hint``, unless one of
    the student's own building blocks is wrong, which is then the likelier cause and is named.

    Args:
        hint: what to say when the building blocks are right.
        attention: the student's ``scaled_dot_product_attention(q, k, v, mask=None) -> (output, weights)``.
        split_heads: the student's ``split_heads(x, n_heads)``, ``(B, L, d_model) -> (B, H, L, d_head)``.
        merge_heads: the student's ``merge_heads(x)``, its inverse.
    """

    def find() -> str:
        gen = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(2, 2, 4, 3, generator=gen, dtype=torch.float64) for _ in range(3))
        x = torch.randn(2, 4, 6, generator=gen, dtype=torch.float64)
        heads = _attention.split_heads(x, 2)  # (B, H, L, d_head)
        causal = torch.tril(torch.ones(4, 4, dtype=torch.bool))
        checks = {
            "scaled_dot_product_attention": lambda: all(
                close(attention(q, k, v, mask)[0].double(), _attention.scaled_dot_product_attention(q, k, v, mask)[0],
                       1e-6, 1e-5) for mask in (None, causal)),
            "split_heads": lambda: close(split_heads(x, 2).double(), heads, 1e-9, 0.0),
            "merge_heads": lambda: close(merge_heads(heads).double(), x, 1e-9, 0.0),
        }
        for name, check in checks.items():
            try:
                right = check()
            except Exception:  # noqa: BLE001 - a failing block is what we are looking for
                right = False
            if not right:
                return (f"your {name} does not pass its own tests yet. If MultiHeadAttention uses it, fix "
                        f"{name} first (its test cells above say what is wrong), then run this cell again.")
        return hint

    return find
