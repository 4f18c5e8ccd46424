r"""Why attention: a recurrent network against self-attention, and the size of the whole model (chapter 1).

Dimension letters used in the shapes below:

- ``B``: batch size
- ``L``: sequence length (number of positions)
- ``d_in``: width of the RNN's inputs; ``d_h``: width of its hidden state
- ``d``: width of the attention's inputs; ``d_k``: query/key width; ``d_v``: value width

The two sequence layers compared in the chapter:

- an **Elman RNN** (Elman, 1990) walks the sequence one step at a time,
  :math:`h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)`, so position 1 reaches position
  ``L`` only through ``L - 1`` sequential updates;
- **self-attention** (Vaswani et al., 2017, eq. 1) relates every pair of positions in one
  parallel step, :math:`\mathrm{softmax}(QK^\top / \sqrt{d_k})\,V` with
  :math:`Q = XW^Q, K = XW^K, V = XW^V`.

:func:`transformer_parameter_count` gives the number of trainable parameters of the course's
encoder-decoder Transformer (chapter 10) in closed form, without building it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
from torch import Tensor

from llm_foundations.attention import scaled_dot_product_attention


def rnn_forward(
    x: Tensor, w_xh: Tensor, w_hh: Tensor, b_h: Tensor, h0: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    r"""Run an Elman RNN over a batch of sequences, one position at a time.

    .. math:: h_t = \tanh\left(x_t W_{xh} + h_{t-1} W_{hh} + b_h\right), \qquad t = 1, \dots, L

    This is :class:`torch.nn.RNN` (``nonlinearity="tanh"``, ``batch_first=True``) with
    ``weight_ih_l0 = w_xh.T``, ``weight_hh_l0 = w_hh.T``, ``bias_ih_l0 = b_h`` and
    ``bias_hh_l0 = 0``.

    Args:
        x: the input sequences.
        w_xh: input-to-hidden weights (inputs multiply from the left: ``x_t @ w_xh``).
        w_hh: hidden-to-hidden weights.
        b_h: hidden bias.
        h0: the initial hidden state; ``None`` means zeros (on ``x``'s device, in its dtype).

    Shape:
        - x: ``(B, L, d_in)``
        - w_xh: ``(d_in, d_h)``; w_hh: ``(d_h, d_h)``; b_h: ``(d_h,)``
        - h0: ``(B, d_h)`` or ``None``
        - outputs: ``(B, L, d_h)``; h_last: ``(B, d_h)``

    Returns:
        ``(outputs, h_last)``: ``outputs[:, t]`` is :math:`h_{t+1}`, the state *after* reading
        ``x[:, t]``, and ``h_last`` is the state after the last position (``outputs[:, -1]``;
        ``h0`` itself when ``L == 0``).

    Raises:
        ValueError: the shapes do not fit together.
    """
    if x.dim() != 3:
        raise ValueError(f"x must have shape (B, L, d_in), got {tuple(x.shape)}")
    batch, length, d_in = x.shape
    if w_xh.dim() != 2 or w_xh.size(0) != d_in:
        raise ValueError(f"w_xh must have shape (d_in={d_in}, d_h), got {tuple(w_xh.shape)}")
    d_h = w_xh.size(1)
    if tuple(w_hh.shape) != (d_h, d_h):
        raise ValueError(f"w_hh must have shape (d_h, d_h) = {(d_h, d_h)}, got {tuple(w_hh.shape)}")
    if tuple(b_h.shape) != (d_h,):
        raise ValueError(f"b_h must have shape (d_h,) = {(d_h,)}, got {tuple(b_h.shape)}")
    if h0 is None:
        h = x.new_zeros(batch, d_h)  # (B, d_h)
    elif tuple(h0.shape) != (batch, d_h):
        raise ValueError(f"h0 must have shape (B, d_h) = {(batch, d_h)}, got {tuple(h0.shape)}")
    else:
        h = h0
    outputs = []
    for t in range(length):  # the recurrence: step t needs the result of step t - 1
        h = torch.tanh(x[:, t] @ w_xh + h @ w_hh + b_h)  # (B, d_h)
        outputs.append(h)
    if not outputs:
        return x.new_zeros(batch, 0, d_h), h
    return torch.stack(outputs, dim=1), h  # (B, L, d_h), (B, d_h)


def self_attention_forward(x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor) -> Tensor:
    r"""Single-head, unmasked self-attention over every position at once (Vaswani et al., 2017, eq. 1).

    .. math::
        Q = XW^Q,\quad K = XW^K,\quad V = XW^V,\qquad
        \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V

    No loop over positions: three projections, one score matrix, one softmax, one product, so
    the number of sequential steps does not grow with ``L``.

    Args:
        x: the input sequences.
        w_q, w_k: query and key projections.
        w_v: value projection.

    Shape:
        - x: ``(B, L, d)``
        - w_q, w_k: ``(d, d_k)``; w_v: ``(d, d_v)``
        - output: ``(B, L, d_v)``

    Raises:
        ValueError: the shapes do not fit together.
    """
    if x.dim() != 3:
        raise ValueError(f"x must have shape (B, L, d), got {tuple(x.shape)}")
    d = x.size(-1)
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v)):
        if w.dim() != 2 or w.size(0) != d:
            raise ValueError(f"{name} must have shape (d={d}, ...), got {tuple(w.shape)}")
    if w_q.size(1) != w_k.size(1):
        raise ValueError(
            f"w_q and w_k must project to the same width d_k, got {tuple(w_q.shape)} and {tuple(w_k.shape)}"
        )
    q, k, v = x @ w_q, x @ w_k, x @ w_v  # (B, L, d_k), (B, L, d_k), (B, L, d_v)
    output, _ = scaled_dot_product_attention(q, k, v)  # (B, L, d_v)
    return output


def parameter_count_breakdown(
    vocab_size: int, d_model: int, n_heads: int, d_ff: int, n_layers: int
) -> dict[str, int]:
    """The terms of :func:`transformer_parameter_count`, grouped by where the parameters live.

    Returns:
        ``{"shared embedding": ..., "encoder layers": ..., "decoder layers": ..., "final norms": ...}``
        (the generator is tied to the embedding, so it adds nothing); the values sum to
        :func:`transformer_parameter_count`.
    """
    _check_sizes(vocab_size, d_model, n_heads, d_ff, n_layers)
    vocab_size, d, d_ff, n_layers = int(vocab_size), int(d_model), int(d_ff), int(n_layers)
    attention = 4 * (d * d + d)  # W^Q, W^K, W^V, W^O with biases
    feed_forward = 2 * d * d_ff + d_ff + d  # Linear(d, d_ff) + Linear(d_ff, d)
    norm = 2 * d  # LayerNorm: a gain and a bias per feature
    return {
        "shared embedding": vocab_size * d,
        "encoder layers": n_layers * (attention + feed_forward + 2 * norm),
        "decoder layers": n_layers * (2 * attention + feed_forward + 3 * norm),
        "final norms": 2 * norm,
    }


def transformer_parameter_count(vocab_size: int, d_model: int, n_heads: int, d_ff: int, n_layers: int) -> int:
    r"""Trainable parameters of ``Transformer(V, V, d_model, n_heads, d_ff, n_layers, share_embeddings=True)``.

    Counted in closed form, without building the model. Writing :math:`V` for ``vocab_size``,
    :math:`d` for ``d_model`` and :math:`N` for ``n_layers``:

    .. math::
        P = \underbrace{V d}_{\text{shared embedding}}
          + N \underbrace{\big(4(d^2 + d) + 2 d\, d_{ff} + d_{ff} + d + 2 \cdot 2d\big)}_{\text{encoder layer}}
          + N \underbrace{\big(8(d^2 + d) + 2 d\, d_{ff} + d_{ff} + d + 3 \cdot 2d\big)}_{\text{decoder layer}}
          + \underbrace{2 \cdot 2d}_{\text{final norms}}
        = V d + N\,(12 d^2 + 4 d\, d_{ff} + 2 d_{ff} + 24 d) + 4 d

    - one embedding matrix ``(V, d)`` is shared by the source embedding, the target embedding
      and the generator (``Linear(d, V, bias=False)``, tied); sinusoidal positions have no
      parameters;
    - a multi-head attention has four ``Linear(d, d)`` with biases, :math:`4(d^2 + d)`,
      whatever the number of heads;
    - a feed-forward block is ``Linear(d, d_ff)`` then ``Linear(d_ff, d)``:
      :math:`2 d\, d_{ff} + d_{ff} + d`;
    - a LayerNorm has :math:`2d` (gain and bias); an encoder layer has two, a decoder layer
      (self-attention, cross-attention, feed-forward) three, and the pre-LN model
      (``norm_first=True``) one more after each stack.

    For the base model of Vaswani et al. (2017) (``V = 37000``, ``d = 512``, ``d_ff = 2048``,
    ``N = 6``) this gives 63,084,544; the paper's Table 3 reports 65M.

    Args:
        vocab_size: size of the shared source/target vocabulary ``V``.
        d_model: model width ``d``.
        n_heads: number of attention heads; it must divide ``d_model`` and does not change the count.
        d_ff: inner width of the feed-forward blocks.
        n_layers: number of encoder layers, and of decoder layers.

    Returns:
        The number of trainable parameters, a Python ``int``.

    Raises:
        ValueError: a size is not a positive integer, or ``d_model % n_heads != 0``.
    """
    _check_sizes(vocab_size, d_model, n_heads, d_ff, n_layers)
    vocab_size, d, d_ff, n_layers = int(vocab_size), int(d_model), int(d_ff), int(n_layers)
    return vocab_size * d + n_layers * (12 * d * d + 4 * d * d_ff + 2 * d_ff + 24 * d) + 4 * d


def last_output_gradient_norms(layer: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    r"""How strongly the last output of ``layer`` depends on each input position.

    For every position :math:`j` this is the Frobenius norm of the Jacobian
    :math:`\partial y_L / \partial x_j`, averaged over the batch: the size of the gradient that
    a loss on the last output sends back to input :math:`j`, at distance :math:`L - j`.

    Args:
        layer: a sequence layer, ``(B, L, d_in) -> (B, L, d_out)``; sequences must not interact.
        x: the inputs.

    Shape:
        - x: ``(B, L, d_in)``
        - output: ``(L,)``; entry ``j`` belongs to distance ``L - 1 - j`` from the last position.
    """
    x = x.detach().requires_grad_(True)
    last = layer(x)[:, -1]  # (B, d_out)
    squares = torch.zeros_like(x)  # (B, L, d_in): sums of squared Jacobian entries
    for i in range(last.size(-1)):  # one backward pass per output feature
        (grad,) = torch.autograd.grad(last[:, i].sum(), x, retain_graph=i + 1 < last.size(-1))
        squares += grad.square()  # sequences do not interact, so row b is sequence b's own gradient
    return squares.sum(-1).sqrt().mean(0).detach()  # (L,)


def _check_sizes(vocab_size: int, d_model: int, n_heads: int, d_ff: int, n_layers: int) -> None:
    sizes = {"vocab_size": vocab_size, "d_model": d_model, "n_heads": n_heads, "d_ff": d_ff, "n_layers": n_layers}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if d_model % n_heads != 0:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
