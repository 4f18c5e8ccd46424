"""The pieces around attention in every Transformer layer (chapter 6): LayerNorm, the position-wise
feed-forward network, and the residual connection that wraps each sublayer.

Dimension letters: ``B`` batch, ``L`` sequence length, ``d_model`` model width, ``d_ff`` width of
the feed-forward hidden layer, ``...`` any leading dimensions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


class LayerNorm(nn.Module):
    r"""Layer normalisation (Ba et al., 2016) over the last dimension, matching :class:`torch.nn.LayerNorm`.

    .. math:: y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \cdot \gamma + \beta

    with :math:`\mu` and :math:`\sigma^2` the mean and the *biased* variance (divide by
    ``d_model``, not ``d_model - 1``) of each feature vector, and :math:`\epsilon` inside the
    square root, so a constant vector maps to :math:`\beta` instead of dividing by zero.

    Args:
        d_model: width of the normalised (last) dimension.
        eps: added to the variance for numerical stability.

    Shape:
        - x: ``(..., d_model)``; output: same shape.

    Attributes:
        weight: :math:`\gamma`, ``(d_model,)``, initialised to ones.
        bias: :math:`\beta`, ``(d_model,)``, initialised to zeros.
    """

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: Tensor) -> Tensor:
        if x.size(-1) != self.weight.numel():
            raise ValueError(f"expected last dimension {self.weight.numel()}, got shape {tuple(x.shape)}")
        mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
        var = (x - mean).pow(2).mean(dim=-1, keepdim=True)  # (..., 1): biased
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class FeedForward(nn.Module):
    r"""Position-wise feed-forward network (Vaswani et al., 2017, eq. 2), applied to every position alike.

    .. math:: \mathrm{FFN}(x) = \max(0, x W_1 + b_1) W_2 + b_2

    Args:
        d_model: input and output width.
        d_ff: hidden width (4 x d_model in the paper).
        dropout: dropout probability after the ReLU (training only).

    Shape:
        - x: ``(..., d_model)``; output: same shape.
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(torch.relu(self.linear1(x))))  # (..., d_model)


class ResidualSublayer(nn.Module):
    r"""A sublayer wrapped in a residual connection and a LayerNorm, before or after the sum.

    - pre-LN (``norm_first=True``, most modern models): :math:`x + \mathrm{Dropout}(f(\mathrm{LN}(x)))`
    - post-LN (``norm_first=False``, the original paper): :math:`\mathrm{LN}(x + \mathrm{Dropout}(f(x)))`

    Args:
        d_model: width of ``x``.
        dropout: dropout probability on the sublayer's output (training only).
        norm_first: pre-LN when True, post-LN when False.

    Shape:
        - x: ``(..., d_model)``; ``sublayer`` maps ``(..., d_model)`` to the same shape; output: same shape.
    """

    def __init__(self, d_model: int, dropout: float = 0.0, norm_first: bool = True):
        super().__init__()
        self.norm = LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        if self.norm_first:
            return x + self.dropout(sublayer(self.norm(x)))
        return self.norm(x + self.dropout(sublayer(x)))
