"""The Transformer decoder (chapter 9): causal masking, the decoder layer and stack, the KV cache.

The decoder generates a sequence one token at a time, so position ``i`` may only look at
positions ``<= i`` of its own sequence (the *causal* mask), and, in an encoder–decoder model,
at every position of the encoder's output (*cross-attention*, chapter 5). The pieces:

- :func:`causal_mask`: True on and below the diagonal;
- :class:`DecoderLayer`: masked self-attention, cross-attention, feed-forward network, each in
  a :class:`~llm_foundations.layers.ResidualSublayer`;
- :class:`Decoder`: embeddings and sinusoidal positions, ``n_layers`` decoder layers, a final
  LayerNorm (pre-LN);
- generation with a KV cache: pass ``caches`` (one :class:`~llm_foundations.attention.KVCache`
  per layer) and only the new tokens; earlier keys and values are reused, not recomputed.

Dimension letters: ``B`` batch, ``L_t`` target (decoder) length, ``L_s`` source (encoder) length,
``T`` tokens already cached, ``H`` heads, ``d_model`` model width, ``V`` vocabulary size.

Masks are boolean and **True means "this query may attend to this key"**.
:class:`torch.nn.TransformerDecoderLayer` reads ``tgt_mask``/``memory_mask`` the other way (True =
blocked): pass it ``~mask``.

Attribute names mirror :class:`~llm_foundations.encoder.EncoderLayer`: ``.self_attn``,
``.cross_attn``, ``.ffn`` and ``.sublayers`` (three ResidualSublayer: around the self-attention,
the cross-attention and the feed-forward network; ``norm1``/``norm2``/``norm3`` in PyTorch).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from llm_foundations.attention import KVCache, MultiHeadAttention
from llm_foundations.embeddings import TokenEmbedding
from llm_foundations.layers import FeedForward, LayerNorm, ResidualSublayer
from llm_foundations.positional import SinusoidalPositionalEncoding

__all__ = ["Decoder", "DecoderLayer", "causal_mask", "kv_cache_bytes"]


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> Tensor:
    """Boolean ``(seq_len, seq_len)`` mask, True on and below the diagonal: query ``i`` may attend to keys ``j <= i``."""
    if seq_len < 0:
        raise ValueError(f"seq_len must be >= 0, got {seq_len}")
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()


def _cached_causal_mask(new: int, cached: int, device: torch.device) -> Tensor:
    """``(new, cached + new)``: each new query sees every cached key and the new keys up to itself."""
    return torch.ones(new, cached + new, dtype=torch.bool, device=device).tril(diagonal=cached)


def kv_cache_bytes(n_layers: int, batch: int, seq_len: int, d_model: int, bytes_per_value: int = 4) -> int:
    """Memory a full KV cache takes: keys and values for every layer, sequence and position.

    ``2 * n_layers * batch * seq_len * d_model * bytes_per_value`` (``d_model = H * d_head``).
    """
    return 2 * n_layers * batch * seq_len * d_model * bytes_per_value


class DecoderLayer(nn.Module):
    r"""One decoder layer (Vaswani et al., 2017, §3.1): masked self-attention, cross-attention, FFN.

    pre-LN (``norm_first=True``):

    .. math:: h_1 = x + \mathrm{SelfAttn}(\mathrm{LN}_1 x), \quad
              h_2 = h_1 + \mathrm{CrossAttn}(\mathrm{LN}_2 h_1, m), \quad
              y = h_2 + \mathrm{FFN}(\mathrm{LN}_3 h_2)

    post-LN (``norm_first=False``): each sum is normalised instead, ``h_1 = LN_1(x + SelfAttn(x))``...
    With ``dropout=0`` it matches ``nn.TransformerDecoderLayer(..., batch_first=True)`` with the
    same weights.

    Args:
        d_model: model width; divisible by ``n_heads``.
        n_heads: attention heads.
        d_ff: hidden width of the feed-forward network.
        dropout: dropout probability (training only).
        norm_first: pre-LN when True, post-LN when False.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout=dropout)
        self.sublayers = nn.ModuleList(
            ResidualSublayer(d_model, dropout=dropout, norm_first=norm_first) for _ in range(3)
        )

    def forward(
        self, x: Tensor, memory: Tensor, tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> Tensor:
        """Run the three sublayers.

        Args:
            x: the target token vectors (only the new ones when ``cache`` is given).
            memory: the encoder's output.
            tgt_mask: boolean, True = may attend, broadcastable to ``(B, H, L_t, T + L_t)``;
                normally the causal mask (the caller, e.g. :class:`Decoder`, builds it).
            memory_mask: boolean, True = may attend, broadcastable to ``(B, H, L_t, L_s)``;
                normally ``padding_mask(src_ids, pad_id)``.
            cache: the self-attention's :class:`~llm_foundations.attention.KVCache`, or None.

        Shape:
            - x: ``(B, L_t, d_model)``; memory: ``(B, L_s, d_model)``; output: ``(B, L_t, d_model)``
        """
        x = self.sublayers[0](x, lambda h: self.self_attn(h, h, h, mask=tgt_mask, cache=cache))
        x = self.sublayers[1](x, lambda h: self.cross_attn(h, memory, memory, mask=memory_mask))
        return self.sublayers[2](x, self.ffn)  # (B, L_t, d_model)


class Decoder(nn.Module):
    r"""The decoder stack: embeddings, positions, ``n_layers`` decoder layers, final LayerNorm (pre-LN).

    Args:
        vocab_size: number of target token ids ``V``.
        d_model: model width (even).
        n_heads: attention heads per layer.
        d_ff: hidden width of each feed-forward network.
        n_layers: number of decoder layers.
        dropout: dropout probability on the embeddings and inside every layer (training only).
        max_len: the longest target sequence accepted (cached tokens included).
        norm_first: pre-LN layers and a final LayerNorm when True; post-LN and none when False.

    Attributes:
        embedding, positions, layers (``nn.ModuleList`` of :class:`DecoderLayer`), norm (or None).
    """

    def __init__(
        self, vocab_size: int, d_model: int, n_heads: int, d_ff: int, n_layers: int,
        dropout: float = 0.0, max_len: int = 512, norm_first: bool = True,
    ):
        super().__init__()
        self.max_len = max_len
        self.embedding = TokenEmbedding(vocab_size, d_model)
        self.positions = SinusoidalPositionalEncoding(d_model, max_len=max_len, dropout=dropout)
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, n_heads, d_ff, dropout=dropout, norm_first=norm_first) for _ in range(n_layers)
        )
        self.norm = LayerNorm(d_model) if norm_first else None

    def new_caches(self) -> list[KVCache]:
        """One empty KV cache per layer, for :meth:`forward`'s ``caches``."""
        return [KVCache() for _ in self.layers]

    def forward(
        self, tgt_ids: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None, caches: list[KVCache] | None = None, causal: bool = True,
    ) -> Tensor:
        """Decode ``tgt_ids`` while attending to ``memory``.

        Args:
            tgt_ids: target ids (with ``caches``: only the tokens not yet in the caches).
            memory: the encoder's output.
            tgt_mask: boolean, True = may attend, broadcastable to ``(B, H, L_t, T + L_t)``, e.g. a
                target padding mask ``padding_mask(tgt_ids, pad_id)``. It is **combined** with the
                causal mask (``causal & tgt_mask``), never substituted for it: passing only a padding
                mask keeps the decoder causal. None: the causal mask alone (with ``caches``: the
                causal mask offset by the number of cached tokens).
            memory_mask: boolean, True = may attend, e.g. ``padding_mask(src_ids, pad_id)``.
            caches: from :meth:`new_caches`; the new tokens' keys and values are appended.
            causal: False drops the causal mask, so ``tgt_mask`` alone decides (None: every position
                sees every position). Only for experiments (chapter 9's leak test): a decoder trained
                that way reads the future.

        Shape:
            - tgt_ids: ``(B, L_t)``; memory: ``(B, L_s, d_model)``; output: ``(B, L_t, d_model)``
        """
        if tgt_ids.dim() != 2:
            raise ValueError(f"tgt_ids must have shape (B, L_t), got {tuple(tgt_ids.shape)}")
        cached = len(caches[0]) if caches else 0
        length = tgt_ids.size(1)
        if cached + length > self.max_len:
            raise ValueError(f"{cached + length} target positions exceed max_len={self.max_len}")
        if causal:
            future = _cached_causal_mask(length, cached, tgt_ids.device)  # (L_t, T + L_t)
            tgt_mask = future if tgt_mask is None else future & tgt_mask  # a given mask narrows, never widens
        x = self.positions(self.embedding(tgt_ids), offset=cached)  # (B, L_t, d_model)
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, tgt_mask, memory_mask, cache=caches[i] if caches else None)
        return x if self.norm is None else self.norm(x)
