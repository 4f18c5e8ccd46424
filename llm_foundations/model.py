"""The full models (chapter 10): the encoder–decoder Transformer and a decoder-only GPT.

Both are assembled from the earlier chapters' parts; nothing new is computed here:

- :class:`Transformer`: :class:`~llm_foundations.encoder.Encoder` (chapter 8),
  :class:`~llm_foundations.decoder.Decoder` (chapter 9) and a linear ``generator`` that turns
  each decoder output into logits over the target vocabulary (Vaswani et al., 2017, §3);
- :func:`greedy_decode` and :func:`beam_decode`: the two deterministic decoding strategies of
  chapter 7, run on the model, greedy with the KV cache of chapter 9;
- :class:`GPT`: embeddings and learned positions, a stack of causal self-attention blocks
  (a decoder layer without cross-attention), a final LayerNorm and a tied output layer;
  :meth:`GPT.generate` samples with chapter 7's temperature, top-k and top-p, with or without
  the KV cache (the same tokens either way).

Dimension letters: ``B`` batch, ``L_s`` source length, ``L_t`` target length, ``L`` length,
``V`` vocabulary size, ``d_model`` model width.

Masks are boolean and **True means "this query may attend to this key"** (DESIGN.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from llm_foundations.attention import KVCache, MultiHeadAttention
from llm_foundations.decoder import Decoder
from llm_foundations.embeddings import TokenEmbedding
from llm_foundations.encoder import Encoder
from llm_foundations.layers import FeedForward, LayerNorm, ResidualSublayer
from llm_foundations.positional import LearnedPositionalEmbedding
from llm_foundations.sampling import beam_search, sample_next_token

__all__ = ["GPT", "GPTBlock", "Transformer", "beam_decode", "greedy_decode"]


class Transformer(nn.Module):
    r"""The encoder–decoder Transformer (Vaswani et al., 2017).

    .. math::
        m = \mathrm{Encoder}(x), \qquad
        \mathrm{logits} = \mathrm{Decoder}(y_{<t}, m)\, W_\text{gen}^\top

    Args:
        src_vocab_size: source token ids ``0..V_s-1``.
        tgt_vocab_size: target token ids ``0..V_t-1``.
        d_model: model width (even, for the sinusoidal positions; divisible by ``n_heads``).
        n_heads: attention heads per layer.
        d_ff: hidden width of every feed-forward network.
        n_layers: encoder layers, and decoder layers.
        dropout: dropout probability (embeddings, attention weights, sublayer outputs; training only).
        max_len: the longest source and target sequences accepted.
        norm_first: pre-LN (and a final LayerNorm after each stack) when True, post-LN when False.
        share_embeddings: tie the source embedding, the target embedding and the generator to one
            ``(V, d_model)`` matrix (§3.4); needs ``src_vocab_size == tgt_vocab_size``.

    Attributes:
        encoder, decoder, generator (``nn.Linear(d_model, V_t, bias=False)``).

    The matrices are initialised with Xavier-uniform (as in the paper's reference code), the
    biases and LayerNorms as PyTorch does. The parameter count with ``share_embeddings=True`` is
    :func:`~llm_foundations.overview.transformer_parameter_count`.
    """

    def __init__(
        self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 512, n_heads: int = 8, d_ff: int = 2048,
        n_layers: int = 6, dropout: float = 0.1, max_len: int = 512, norm_first: bool = True,
        share_embeddings: bool = False,
    ):
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError(
                f"share_embeddings needs one vocabulary for source and target, got {src_vocab_size} and {tgt_vocab_size}")
        self.encoder = Encoder(src_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.decoder = Decoder(tgt_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        if share_embeddings:
            self.decoder.embedding.weight = self.encoder.embedding.weight
            self.generator.weight = self.encoder.embedding.weight

    def encode(self, src_ids: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """The encoder's output ``(B, L_s, d_model)``; ``src_mask`` e.g. ``padding_mask(src_ids, pad)``."""
        return self.encoder(src_ids, src_mask)

    def decode(
        self, tgt_ids: Tensor, memory: Tensor, tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
        caches: list[KVCache] | None = None,
    ) -> Tensor:
        """The decoder's output ``(B, L_t, d_model)`` (not yet logits: see :attr:`generator`).

        ``tgt_mask`` defaults to the causal mask; ``memory_mask`` is the source's padding mask;
        ``caches`` (from ``model.decoder.new_caches()``) as in :class:`~llm_foundations.decoder.Decoder`.
        """
        return self.decoder(tgt_ids, memory, tgt_mask, memory_mask, caches=caches)

    def forward(
        self, src_ids: Tensor, tgt_ids: Tensor, src_mask: Tensor | None = None, tgt_mask: Tensor | None = None,
    ) -> Tensor:
        """Next-token logits for every target position (teacher forcing).

        Args:
            src_ids: source ids.
            tgt_ids: target ids, starting with BOS (the targets shifted right).
            src_mask: boolean, True = may attend, broadcastable to ``(B, H, L_s, L_s)``; used by
                the encoder and by the decoder's cross-attention. Usually ``padding_mask(src_ids, pad)``.
            tgt_mask: boolean, True = may attend, broadcastable to ``(B, H, L_t, L_t)``; default causal.

        Shape:
            - src_ids: ``(B, L_s)``; tgt_ids: ``(B, L_t)``; output: ``(B, L_t, V_t)``
        """
        memory = self.encode(src_ids, src_mask)  # (B, L_s, d_model)
        return self.generator(self.decode(tgt_ids, memory, tgt_mask, src_mask))  # (B, L_t, V_t)


@torch.no_grad()
def greedy_decode(
    model: Transformer, src_ids: Tensor, bos_id: int, eos_id: int, max_len: int, src_mask: Tensor | None = None,
) -> Tensor:
    """Greedy decoding: at each step append the most likely next token, reusing the KV cache.

    The model runs in eval mode (dropout off) and is put back in the mode it was in.

    Args:
        model: a :class:`Transformer` (or anything with ``encode``, ``decode``, ``generator``, ``decoder``).
        src_ids: source ids ``(B, L_s)``.
        bos_id: the first token of every output.
        eos_id: a row is finished once it produces ``eos_id``; positions after it hold ``eos_id``.
        max_len: the most tokens a row has, ``bos_id`` and ``eos_id`` included.
        src_mask: the source's padding mask, as for :meth:`Transformer.forward`.

    Returns:
        ``(B, n)`` long tensor with ``n <= max_len``, each row starting with ``bos_id``. Decoding
        stops early once every row has produced ``eos_id``.
    """
    if max_len < 1:
        raise ValueError(f"max_len counts the BOS token, so it must be >= 1, got {max_len}")
    was_training = model.training
    model.eval()
    try:
        memory = model.encode(src_ids, src_mask)  # (B, L_s, d_model)
        ids = torch.full((src_ids.size(0), 1), bos_id, dtype=torch.long, device=src_ids.device)  # (B, 1)
        finished = torch.zeros(src_ids.size(0), dtype=torch.bool, device=src_ids.device)  # (B,)
        caches = model.decoder.new_caches()
        new = ids
        while ids.size(1) < max_len and not finished.all():
            hidden = model.decode(new, memory, memory_mask=src_mask, caches=caches)  # (B, len(new), d_model)
            next_id = model.generator(hidden[:, -1]).argmax(-1)  # (B,)
            next_id = next_id.masked_fill(finished, eos_id)  # finished rows only repeat EOS
            finished |= next_id == eos_id
            new = next_id[:, None]  # (B, 1): only the new token goes through the decoder next time
            ids = torch.cat([ids, new], dim=1)
        return ids
    finally:
        model.train(was_training)


@torch.no_grad()
def beam_decode(
    model: Transformer, src_ids: Tensor, bos_id: int, eos_id: int, max_len: int, beam_size: int = 4,
    src_mask: Tensor | None = None,
) -> list[list[int]]:
    """Beam search (chapter 7's :func:`~llm_foundations.sampling.beam_search`) on each source row.

    Returns one token list per row of ``src_ids``, starting with ``bos_id``, at most ``max_len``
    tokens. Scores are total log-probabilities without length normalisation.
    """
    was_training = model.training
    model.eval()
    try:
        device = src_ids.device
        results = []
        for row in range(src_ids.size(0)):
            row_mask = None if src_mask is None else src_mask[row : row + 1]
            memory = model.encode(src_ids[row : row + 1], row_mask)  # (1, L_s, d_model)

            def step(prefixes: Tensor) -> Tensor:
                prefixes = prefixes.to(device)  # (n, t)
                n = prefixes.size(0)
                hidden = model.decode(prefixes, memory.expand(n, -1, -1), memory_mask=row_mask)  # (n, t, d_model)
                return torch.log_softmax(model.generator(hidden[:, -1]).float(), dim=-1).cpu()  # (n, V)

            results.append(beam_search(step, bos_id, eos_id, beam_size, max_len))
        return results
    finally:
        model.train(was_training)


class GPTBlock(nn.Module):
    """Causal self-attention then a feed-forward network, each in a pre-LN residual sublayer.

    A decoder layer (chapter 9) without the cross-attention, which a model with no encoder
    has nothing to attend to. Attributes ``.self_attn``, ``.ffn``, ``.sublayers`` (two).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout=dropout)
        self.sublayers = nn.ModuleList(ResidualSublayer(d_model, dropout=dropout, norm_first=True) for _ in range(2))

    def forward(self, x: Tensor, mask: Tensor, cache: KVCache | None = None) -> Tensor:
        """``x``: ``(B, L, d_model)``; ``mask``: True = may attend, broadcastable to ``(B, H, L, T + L)``."""
        x = self.sublayers[0](x, lambda h: self.self_attn(h, h, h, mask=mask, cache=cache))
        return self.sublayers[1](x, self.ffn)  # (B, L, d_model)


class GPT(nn.Module):
    r"""A decoder-only language model (Radford et al., 2018; Brown et al., 2020).

    .. math::
        x_0 = \sqrt{d}\,E[\text{ids}] + P, \qquad x_l = \mathrm{Block}_l(x_{l-1}), \qquad
        \mathrm{logits} = \mathrm{LN}(x_N)\, E^\top

    Positions are learned (as in GPT-2): a generated sequence never runs past ``max_len``.
    The output layer shares the token embedding matrix ``E``.

    Args:
        vocab_size: token ids ``0..V-1``.
        d_model: model width (divisible by ``n_heads``).
        n_heads: attention heads per block.
        d_ff: hidden width of each feed-forward network.
        n_layers: number of blocks.
        max_len: the context length: the most positions one forward pass may see.
        dropout: dropout probability (embeddings, attention weights, sublayer outputs; training only).

    Attributes:
        embedding, positions, dropout, layers (``nn.ModuleList`` of :class:`GPTBlock`), norm, head.
    """

    def __init__(self, vocab_size: int, d_model: int, n_heads: int, d_ff: int, n_layers: int, max_len: int,
                 dropout: float = 0.0):
        super().__init__()
        self.max_len = max_len
        self.embedding = TokenEmbedding(vocab_size, d_model)
        self.positions = LearnedPositionalEmbedding(max_len, d_model)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(GPTBlock(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.norm = LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embedding.weight  # tied: one matrix reads and writes tokens

    def new_caches(self) -> list[KVCache]:
        """One empty KV cache per block, for :meth:`forward`'s ``caches``."""
        return [KVCache() for _ in self.layers]

    def forward(self, ids: Tensor, caches: list[KVCache] | None = None) -> Tensor:
        """Next-token logits ``(B, L, V)`` for ``ids`` ``(B, L)``.

        With ``caches`` (from :meth:`new_caches`), ``ids`` are only the tokens not yet cached;
        they sit at positions ``T..T+L-1`` and attend to every cached position.
        """
        if ids.dim() != 2:
            raise ValueError(f"ids must have shape (B, L), got {tuple(ids.shape)}")
        cached = len(caches[0]) if caches else 0
        length = ids.size(1)
        mask = torch.ones(length, cached + length, dtype=torch.bool, device=ids.device).tril(diagonal=cached)
        x = self.dropout(self.positions(self.embedding(ids), offset=cached))  # (B, L, d_model)
        for i, block in enumerate(self.layers):
            x = block(x, mask, cache=caches[i] if caches else None)  # (B, L, d_model)
        return self.head(self.norm(x))  # (B, L, V)

    @torch.no_grad()
    def generate(
        self, ids: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
        top_p: float | None = None, generator: torch.Generator | None = None, use_cache: bool = True,
    ) -> Tensor:
        """Continue each row of ``ids`` ``(B, L)`` by ``max_new_tokens`` sampled tokens.

        Sampling is chapter 7's :func:`~llm_foundations.sampling.sample_next_token` (temperature,
        then top-k, then top-p). ``temperature=0`` is greedy. With ``use_cache`` each step runs
        only the new token through the blocks; without, the whole sequence again (the same
        tokens under the same ``generator``). Runs in eval mode and restores the mode after.

        Returns:
            ``(B, L + max_new_tokens)`` long tensor: the prompt followed by the new tokens.

        Raises:
            ValueError: ``L + max_new_tokens > max_len`` (learned positions end there).
        """
        if ids.size(1) + max_new_tokens > self.max_len:
            raise ValueError(
                f"{ids.size(1)} prompt tokens + {max_new_tokens} new ones exceed the context of max_len={self.max_len}")
        was_training = self.training
        self.eval()
        try:
            caches = self.new_caches() if use_cache else None
            new = ids
            for _ in range(max_new_tokens):
                logits = self(new if use_cache else ids, caches=caches)[:, -1].float()  # (B, V)
                if temperature == 0:
                    next_id = logits.argmax(-1)
                else:
                    next_id = sample_next_token(logits, temperature, top_k, top_p, generator=generator)
                new = next_id.view(-1, 1).to(ids.device)  # (B, 1)
                ids = torch.cat([ids, new], dim=1)
            return ids
        finally:
            self.train(was_training)
