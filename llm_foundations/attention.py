"""Scaled dot-product attention and multi-head attention (chapter 4).

Dimension letters used in the shapes below:

- ``B``: batch size
- ``H``: number of heads
- ``L_q``: number of queries (target length); ``L_k``: number of keys and values (source length)
- ``d_model``: model width; ``d_k``: query/key width; ``d_v``: value width; ``d_head = d_model // H``
- ``...``: any number of leading dimensions

Masks are boolean and **True means "this query may attend to this key"**, the same convention as
:func:`torch.nn.functional.scaled_dot_product_attention`. :class:`torch.nn.MultiheadAttention`
uses the opposite convention for its boolean ``attn_mask`` and ``key_padding_mask`` (True means
"blocked"), so pass ``~mask`` to it. A query whose keys are all masked gets zero weights and a
zero output, never NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def attention_weights(q: Tensor, k: Tensor, mask: Tensor | None = None) -> Tensor:
    """Attention weights ``softmax(q k^T / sqrt(d_k))``, with masked keys given weight zero.

    Args:
        q: queries.
        k: keys.
        mask: optional boolean mask, True where a query may attend to a key; it must broadcast
            to ``(..., L_q, L_k)``.

    Shape:
        - q: ``(..., L_q, d_k)``
        - k: ``(..., L_k, d_k)``
        - mask: broadcastable to ``(..., L_q, L_k)``

    Returns:
        Weights of shape ``(..., L_q, L_k)``; each row sums to 1, or is all zeros when every key
        of that row is masked.
    """
    if q.size(-1) != k.size(-1):
        raise ValueError(
            f"queries and keys must have the same last dimension d_k, got q: {tuple(q.shape)} "
            f"and k: {tuple(k.shape)}"
        )
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., L_q, L_k)
    if mask is None:
        return torch.softmax(scores, dim=-1)
    mask = _checked_mask(mask, scores.shape)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    # A row with every key masked is softmax(-inf, ..., -inf) = NaN; it must read as "attend to
    # nothing". Zeroing every masked entry does that and leaves the other rows as they were.
    return weights.masked_fill(~mask, 0.0)


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    r"""Scaled dot-product attention (Vaswani et al., 2017, eq. 1).

    .. math:: \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V

    Args:
        q: queries.
        k: keys.
        v: values, one per key.
        mask: optional boolean mask, **True where a query may attend to a key**; it must
            broadcast to ``(..., L_q, L_k)``. A query with no allowed key gets zero weights and a
            zero output.

    Shape:
        - q: ``(..., L_q, d_k)``
        - k: ``(..., L_k, d_k)``
        - v: ``(..., L_k, d_v)``
        - mask: broadcastable to ``(..., L_q, L_k)``

    Returns:
        ``(output, weights)``: output ``(..., L_q, d_v)`` and weights ``(..., L_q, L_k)``.
    """
    if k.size(-2) != v.size(-2):
        raise ValueError(
            f"keys and values must come in pairs (same length L_k), got k: {tuple(k.shape)} "
            f"and v: {tuple(v.shape)}"
        )
    weights = attention_weights(q, k, mask)  # (..., L_q, L_k)
    return weights @ v, weights  # (..., L_q, d_v)


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """Split the feature dimension into ``n_heads`` heads and move the head axis before the sequence.

    Head ``h`` holds features ``h * d_head : (h + 1) * d_head``.

    Shape:
        - x: ``(B, L, d_model)`` (any leading dimensions work)
        - output: ``(B, H, L, d_model // H)``
    """
    d_model = x.size(-1)
    if n_heads <= 0 or d_model % n_heads != 0:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
    x = x.unflatten(-1, (n_heads, d_model // n_heads))  # (B, L, H, d_head)
    return x.transpose(-3, -2)  # (B, H, L, d_head)


def merge_heads(x: Tensor) -> Tensor:
    """Inverse of :func:`split_heads`: concatenate the heads back into one feature dimension.

    Shape:
        - x: ``(B, H, L, d_head)``
        - output: ``(B, L, H * d_head)``
    """
    if x.dim() < 3:
        raise ValueError(f"expected (B, H, L, d_head), got shape {tuple(x.shape)}")
    return x.transpose(-3, -2).flatten(-2)  # (B, L, H * d_head)


class KVCache:
    """The keys and values one attention layer has computed for the positions seen so far.

    During generation each new token only needs its own query; its keys and values are
    appended here and every earlier one is reused instead of recomputed (chapter 9).

    Shape:
        - keys, values: ``(B, H, T, d_head)`` with ``T`` the number of cached positions
    """

    def __init__(self) -> None:
        self.keys: Tensor | None = None
        self.values: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.size(-2)

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append the new positions' keys and values; return all of them, ``(B, H, T + L, d_head)``."""
        if self.keys is None:
            self.keys, self.values = k, v
        else:
            self.keys = torch.cat([self.keys, k], dim=-2)
            self.values = torch.cat([self.values, v], dim=-2)
        return self.keys, self.values


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention (Vaswani et al., 2017, §3.2.2).

    .. math::
        \mathrm{MultiHead}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_H) W^O,
        \quad \mathrm{head}_i = \mathrm{Attention}(Q W_i^Q, K W_i^K, V W_i^V)

    The per-head projections are stored as one ``d_model x d_model`` linear layer each
    (``w_q``, ``w_k``, ``w_v``); head ``h`` uses output features ``h * d_head : (h + 1) * d_head``.

    Args:
        d_model: model width; must be divisible by ``n_heads``.
        n_heads: number of heads ``H``.
        dropout: dropout probability on the attention weights (training only).
        bias: whether the four projections have biases.

    Attributes:
        attn_weights: the attention weights of the last forward call, ``(B, H, L_q, L_k)``,
            detached from the graph (for plotting).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if n_heads <= 0 or d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.attn_weights: Tensor | None = None

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> Tensor:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: the sequence asking (the decoder in cross-attention).
            key: the sequence being looked at.
            value: what is read from each key position (usually ``key`` itself).
            mask: optional boolean mask, **True where a query may attend to a key**; it must
                broadcast to ``(B, H, L_q, L_k)``: e.g. ``(L_q, L_k)`` for a causal mask or
                ``(B, 1, 1, L_k)`` for a padding mask. With a ``cache``, ``L_k`` counts the
                cached positions too.
            cache: optional :class:`KVCache` of earlier positions (self-attention during
                generation): the new keys and values are appended to it and the queries attend
                to all of them.

        Shape:
            - query: ``(B, L_q, d_model)``
            - key, value: ``(B, L_k, d_model)``
            - output: ``(B, L_q, d_model)``
        """
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.dim() != 3 or t.size(-1) != self.d_model:
                raise ValueError(
                    f"{name} must have shape (B, L, d_model={self.d_model}), got {tuple(t.shape)}"
                )
        q = split_heads(self.w_q(query), self.n_heads)  # (B, H, L_q, d_head)
        k = split_heads(self.w_k(key), self.n_heads)  # (B, H, L_k, d_head)
        v = split_heads(self.w_v(value), self.n_heads)  # (B, H, L_k, d_head)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, H, T + L_k, d_head)
        weights = attention_weights(q, k, mask)  # (B, H, L_q, L_k)
        self.attn_weights = weights.detach()
        heads = self.dropout(weights) @ v  # (B, H, L_q, d_head)
        return self.w_o(merge_heads(heads))  # (B, L_q, d_model)


def _checked_mask(mask: Tensor, scores_shape: torch.Size) -> Tensor:
    if mask.dtype != torch.bool:
        raise TypeError(
            f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}; "
            "build it with a comparison such as `ids != pad_id`"
        )
    try:
        broadcast = torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        broadcast = None
    if broadcast != scores_shape:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the attention scores' "
            f"shape {tuple(scores_shape)} (..., L_q, L_k)"
        )
    return mask


def padding_mask(ids: Tensor, pad_id: int) -> Tensor:
    """Boolean key mask that hides padding: True where ``ids != pad_id`` (the key may be attended to).

    Shape:
        - ids: ``(B, L)`` token ids
        - output: ``(B, 1, 1, L)``, ready to broadcast against ``(B, H, L_q, L_k)`` scores
    """
    if ids.dim() != 2:
        raise ValueError(f"ids must have shape (B, L), got {tuple(ids.shape)}")
    return (ids != pad_id)[:, None, None, :]


class AdditiveAttention(nn.Module):
    r"""Additive attention (Bahdanau et al., 2015): a small feed-forward network scores each pair.

    .. math:: e_{ij} = v^\top \tanh(W_q q_i + W_k k_j), \qquad
              \alpha_{ij} = \mathrm{softmax}_j(e_{ij}), \qquad o_i = \sum_j \alpha_{ij} v_j

    Args:
        d_query: width of the queries.
        d_key: width of the keys.
        d_hidden: width of the scoring network.

    Attributes:
        w_q: ``Linear(d_query, d_hidden, bias=False)``.
        w_k: ``Linear(d_key, d_hidden, bias=False)``.
        v: ``Linear(d_hidden, 1, bias=False)``.
    """

    def __init__(self, d_query: int, d_key: int, d_hidden: int):
        super().__init__()
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Score every (query, key) pair with the network, softmax over keys, average the values.

        Args:
            query: the decoder states asking.
            keys: the encoder states being scored.
            values: what is read from each key position.
            mask: optional boolean mask, **True where a query may attend to a key**, broadcastable
                to ``(B, L_q, L_k)`` (e.g. ``(B, 1, L_k)`` for padding).

        Shape:
            - query: ``(B, L_q, d_query)``
            - keys: ``(B, L_k, d_key)``
            - values: ``(B, L_k, d_v)``
            - output: ``(B, L_q, d_v)``; weights: ``(B, L_q, L_k)``
        """
        if keys.size(-2) != values.size(-2):
            raise ValueError(f"keys {tuple(keys.shape)} and values {tuple(values.shape)} differ in length")
        hidden = torch.tanh(self.w_q(query)[:, :, None, :] + self.w_k(keys)[:, None, :, :])  # (B, L_q, L_k, d_hidden)
        scores = self.v(hidden).squeeze(-1)  # (B, L_q, L_k)
        if mask is not None:
            mask = _checked_mask(mask, scores.shape)
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            weights = weights.masked_fill(~mask, 0.0)  # all-masked rows: zeros, not NaN
        return weights @ values, weights  # (B, L_q, d_v), (B, L_q, L_k)
