"""The full models (chapter 10): the encoder–decoder Transformer and a decoder-only GPT.

Both are assembled from the earlier chapters' parts; nothing new is computed here:

- :class:`Transformer`: :class:`~llm_foundations.encoder.Encoder` (chapter 8),
  :class:`~llm_foundations.decoder.Decoder` (chapter 9) and a linear ``generator`` that turns
  each decoder output into logits over the target vocabulary (Vaswani et al., 2017, §3);
- :func:`greedy_decode` and :func:`beam_decode`: the two deterministic decoding strategies of
  chapter 7, run on the model, greedy with the KV cache of chapter 9;
- :class:`GPT`: embeddings and learned positions, a stack of causal self-attention blocks
  (a decoder layer without cross-attention), a final LayerNorm and a tied output layer, with
  GPT-2's initialisation (an initial loss near ln V) and nanoGPT's options (GELU, no biases);
  :meth:`GPT.generate` samples with chapter 7's temperature, top-k and top-p, with or without
  the KV cache (the same tokens either way), cropping the context to the window as it goes.
  :mod:`llm_foundations.pretrained` loads GPT-2's published weights into it.

Dimension letters: ``B`` batch, ``L_s`` source length, ``L_t`` target length, ``L`` length,
``V`` vocabulary size, ``d_model`` model width.

Masks are boolean and **True means "this query may attend to this key"** (DESIGN.md).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from llm_foundations.attention import KVCache, MultiHeadAttention, attention_weights, merge_heads, split_heads
from llm_foundations.decoder import Decoder, _cached_causal_mask
from llm_foundations.encoder import Encoder
from llm_foundations.layers import FeedForward, LayerNorm, ResidualSublayer
from llm_foundations.positional import LearnedPositionalEmbedding, RotaryEmbedding
from llm_foundations.sampling import beam_search, sample_next_token

__all__ = ["ACTIVATIONS", "FusedLayerNorm", "GPT", "GPTBlock", "GPTFeedForward", "Transformer", "beam_decode", "greedy_decode"]


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

        ``tgt_mask`` (e.g. a target padding mask) is combined with the causal mask; ``memory_mask`` is the source's padding mask;
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
            tgt_mask: boolean, True = may attend, broadcastable to ``(B, H, L_t, L_t)``; always combined with the causal mask.

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


#: The feed-forward activations a :class:`GPT` can use: the paper's ReLU, GELU (Hendrycks and
#: Gimpel, 2016; nanoGPT), and GELU's tanh approximation (what GPT-2 was trained with).
ACTIVATIONS = {
    "relu": torch.relu,
    "gelu": nn.functional.gelu,
    "gelu_tanh": lambda x: nn.functional.gelu(x, approximate="tanh"),
}


class GPTFeedForward(FeedForward):
    """Chapter 6's :class:`~llm_foundations.layers.FeedForward` with a choice of activation and of biases.

    Attributes ``.linear1`` (``d_model -> d_ff``), ``.dropout``, ``.linear2`` (``d_ff -> d_model``)
    as in chapter 6; ``activation`` is a key of :data:`ACTIVATIONS`.
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu", bias: bool = True):
        super().__init__(d_model, d_ff, dropout)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        if not bias:
            self.linear1 = nn.Linear(d_model, d_ff, bias=False)
            self.linear2 = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(ACTIVATIONS[self.activation](self.linear1(x))))  # (..., d_model)


class FusedLayerNorm(LayerNorm):
    """Chapter 6's :class:`~llm_foundations.layers.LayerNorm` (same ``.weight``, ``.bias``, ``.eps``),
    computed by PyTorch's fused kernel :func:`torch.nn.functional.layer_norm`: the same numbers up
    to rounding, in one operation instead of nine (a small model's step spends a tenth of its time there)."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


def _layer_norm(d_model: int, bias: bool, eps: float, fused: bool) -> LayerNorm:
    """Chapter 6's LayerNorm; without ``bias`` its shift is a constant zero (a buffer, not a parameter)."""
    norm = (FusedLayerNorm if fused else LayerNorm)(d_model, eps=eps)
    if not bias:
        del norm.bias
        norm.register_buffer("bias", torch.zeros(d_model), persistent=False)
    return norm


class GPTBlock(nn.Module):
    """Causal self-attention then a feed-forward network, each in a pre-LN residual sublayer.

    A decoder layer (chapter 9) without the cross-attention, which a model with no encoder
    has nothing to attend to. Attributes ``.self_attn`` (chapter 4's
    :class:`~llm_foundations.attention.MultiHeadAttention`), ``.ffn`` (:class:`GPTFeedForward`),
    ``.sublayers`` (two chapter-6 :class:`~llm_foundations.layers.ResidualSublayer`).

    With ``fused`` the attention's four projections are chapter 4's, but the softmax and the
    weighted sum go through :func:`torch.nn.functional.scaled_dot_product_attention`, and the
    LayerNorms through :class:`FusedLayerNorm` (the same numbers up to rounding, faster;
    ``.self_attn.attn_weights`` is then not kept); with ``fused=False``, through chapters 4 and
    6's own code, which keeps the attention weights for plotting.

    With ``rotary`` (a chapter-3 :class:`~llm_foundations.positional.RotaryEmbedding`) the
    queries and keys are rotated by their positions before the scores (RoPE); a token's
    position is the number of tokens before it in the cache plus its place in ``x``.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu",
                 bias: bool = True, norm_eps: float = 1e-5, fused: bool = True,
                 rotary: RotaryEmbedding | None = None):
        super().__init__()
        self.rotary = rotary
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.ffn = GPTFeedForward(d_model, d_ff, dropout=dropout, activation=activation, bias=bias)
        self.sublayers = nn.ModuleList(ResidualSublayer(d_model, dropout=dropout, norm_first=True) for _ in range(2))
        for sublayer in self.sublayers:
            sublayer.norm = _layer_norm(d_model, bias, norm_eps, fused)
        self.fused = fused

    def _attend(self, h: Tensor, mask: Tensor | None, cache: KVCache | None) -> Tensor:
        attn = self.self_attn
        if not self.fused and self.rotary is None:
            return attn(h, h, h, mask=mask, cache=cache)
        q, k, v = (split_heads(w(h), attn.n_heads) for w in (attn.w_q, attn.w_k, attn.w_v))  # (B, H, L, d_head)
        if self.rotary is not None:
            offset = len(cache) if cache is not None else 0
            q, k = self.rotary(q, offset), self.rotary(k, offset)  # the values are not rotated
        if cache is not None:
            k, v = cache.update(k, v)  # (B, H, T + L, d_head)
        if not self.fused:  # chapter 4's attention on the rotated queries and keys
            weights = attention_weights(q, k, _cached_causal_mask(q.size(-2), 0, q.device) if mask is None else mask)
            attn.attn_weights = weights.detach()
            return attn.w_o(merge_heads(attn.dropout(weights) @ v))  # (B, L, d_model)
        causal = mask is None  # no cache before these tokens: the plain causal mask, which the kernel knows
        heads = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, dropout_p=attn.dropout.p if self.training else 0.0)
        attn.attn_weights = None
        return attn.w_o(merge_heads(heads))  # (B, L, d_model)

    def forward(self, x: Tensor, mask: Tensor | None, cache: KVCache | None = None) -> Tensor:
        """``x``: ``(B, L, d_model)``; ``mask``: True = may attend, broadcastable to ``(B, H, L, T + L)``.

        ``mask=None`` means the causal mask of ``L`` tokens with nothing cached before them.
        """
        if mask is None and not self.fused:
            mask = _cached_causal_mask(x.size(1), 0, x.device)
        x = self.sublayers[0](x, lambda h: self._attend(h, mask, cache))
        return self.sublayers[1](x, self.ffn)  # (B, L, d_model)


class GPT(nn.Module):
    r"""A decoder-only language model (Radford et al., 2018, 2019; Brown et al., 2020), as GPT-2 builds it.

    .. math::
        x_0 = E[\text{ids}] + P, \qquad x_l = \mathrm{Block}_l(x_{l-1}), \qquad
        \mathrm{logits} = \mathrm{LN}(x_N)\, E^\top

    Positions are learned (as in GPT-2), or with ``positional="rope"`` rotary (chapter 3: RoPE,
    as in Llama; no table is added to the embeddings), and the output layer shares the token embedding matrix
    ``E``. Unlike chapter 2's :class:`~llm_foundations.embeddings.TokenEmbedding` (the original
    Transformer's), the embedding is **not** multiplied by :math:`\sqrt{d}`: GPT-2 does not, and
    with a tied output layer the factor would make every initial logit :math:`\sqrt{d}` times
    too large (an initial loss far above :math:`\ln V`).

    Initialisation (GPT-2's, as in nanoGPT): every matrix and both tables from
    :math:`\mathcal{N}(0, 0.02^2)`, biases zero, LayerNorms the identity, and the two projections
    that write into the residual stream of each block (the attention's ``w_o``, the feed-forward
    network's ``linear2``) scaled down by :math:`1/\sqrt{2 N}` for :math:`N` blocks, so the
    stream's variance does not grow with depth. The initial loss is then close to :math:`\ln V`.

    Args:
        vocab_size: token ids ``0..V-1``.
        d_model: model width (divisible by ``n_heads``).
        n_heads: attention heads per block.
        d_ff: hidden width of each feed-forward network.
        n_layers: number of blocks.
        max_len: the context length: the most positions one forward pass may see.
        dropout: dropout probability (embeddings, attention weights, sublayer outputs; training only).
        activation: the feed-forward activation, ``"gelu"`` (default, nanoGPT), ``"gelu_tanh"``
            (GPT-2) or ``"relu"`` (the original Transformer).
        bias: biases in every linear layer and LayerNorm (GPT-2: True; nanoGPT's small models: False).
        norm_eps: the LayerNorms' epsilon (GPT-2: 1e-5).
        fused: compute attention and LayerNorm with PyTorch's fused kernels (see :class:`GPTBlock`);
            False: with chapters 4 and 6's code. The parameters are the same either way.
        positional: ``"learned"`` (default: GPT-2, nanoGPT; what GPT-2's weights need) or
            ``"rope"``. At nanoGPT's small character settings RoPE reaches a lower loss in the
            same number of steps (``benchmarks/gpt_char.py``).

    Attributes:
        embedding (``nn.Embedding``), positions (a
        :class:`~llm_foundations.positional.LearnedPositionalEmbedding`, or ``None`` with RoPE),
        rotary (``None``, or the :class:`~llm_foundations.positional.RotaryEmbedding` every block shares), dropout, layers (``nn.ModuleList`` of
        :class:`GPTBlock`), norm, head (``nn.Linear(d_model, V, bias=False)``, tied to ``embedding``).
    """

    def __init__(self, vocab_size: int, d_model: int, n_heads: int, d_ff: int, n_layers: int, max_len: int,
                 dropout: float = 0.0, activation: str = "gelu", bias: bool = True, norm_eps: float = 1e-5,
                 fused: bool = True, positional: str = "learned"):
        super().__init__()
        if positional not in ("learned", "rope"):
            raise ValueError(f"positional must be 'learned' or 'rope', got {positional!r}")
        if n_heads <= 0 or d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.max_len = max_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        rope = positional == "rope"
        self.positions = None if rope else LearnedPositionalEmbedding(max_len, d_model)
        self.rotary = RotaryEmbedding(d_model // n_heads, max_len) if rope else None
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            GPTBlock(d_model, n_heads, d_ff, dropout, activation, bias, norm_eps, fused, rotary=self.rotary)
            for _ in range(n_layers))
        self.norm = _layer_norm(d_model, bias, norm_eps, fused)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embedding.weight  # tied: one matrix reads and writes tokens
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """GPT-2's initialisation (see the class docstring)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        if self.positions is not None:
            nn.init.normal_(self.positions.weight, mean=0.0, std=0.02)
        residual_std = 0.02 / math.sqrt(2 * max(1, len(self.layers)))
        for block in self.layers:
            nn.init.normal_(block.self_attn.w_o.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.ffn.linear2.weight, mean=0.0, std=residual_std)

    def new_caches(self) -> list[KVCache]:
        """One empty KV cache per block, for :meth:`forward`'s ``caches``."""
        return [KVCache() for _ in self.layers]

    def forward(self, ids: Tensor, caches: list[KVCache] | None = None) -> Tensor:
        """Next-token logits ``(B, L, V)`` for ``ids`` ``(B, L)``.

        With ``caches`` (from :meth:`new_caches`), ``ids`` are only the tokens not yet cached;
        they sit at positions ``T..T+L-1`` and attend to every cached position.
        ``T + L`` may not exceed ``max_len`` (the positions table ends there): crop the context first.
        """
        if ids.dim() != 2:
            raise ValueError(f"ids must have shape (B, L), got {tuple(ids.shape)}")
        cached = len(caches[0]) if caches else 0
        length = ids.size(1)
        mask = None if cached == 0 else _cached_causal_mask(length, cached, ids.device)  # None: plain causal
        if cached + length > self.max_len:
            raise ValueError(f"{cached} cached + {length} new tokens exceed the context of max_len={self.max_len}: "
                             "crop the context first")
        x = self.embedding(ids)  # (B, L, d_model)
        if self.positions is not None:
            x = self.positions(x, offset=cached)
        x = self.dropout(x)  # (B, L, d_model)
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
        then top-k, then top-p). ``temperature=0`` is greedy. Each step reads at most the last
        ``max_len`` tokens (the context window): a longer prompt, or a sample that runs past
        ``max_len``, is cropped to its last ``max_len`` tokens before the next prediction. With
        ``use_cache`` each step runs only the new token through the blocks; once the window
        slides, the positions of every token change, so the window is run again from a fresh
        cache at each step (what ``use_cache=False`` does at every step). Both give the same
        tokens under the same ``generator``. Runs in eval mode and restores the mode after.

        Returns:
            ``(B, L + max_new_tokens)`` long tensor: the prompt followed by the new tokens.
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        was_training = self.training
        self.eval()
        try:
            caches = None
            for _ in range(max_new_tokens):
                if use_cache and caches is not None and len(caches[0]) < self.max_len:
                    logits = self(ids[:, -1:], caches=caches)  # only the new token; the rest is cached
                else:  # the first step, no cache, or a window that slid: run the last max_len tokens
                    caches = self.new_caches() if use_cache else None
                    logits = self(ids[:, -self.max_len:], caches=caches)
                logits = logits[:, -1].float()  # (B, V)
                if temperature == 0:
                    next_id = logits.argmax(-1)
                else:
                    next_id = sample_next_token(logits, temperature, top_k, top_p, generator=generator)
                ids = torch.cat([ids, next_id.view(-1, 1).to(ids.device)], dim=1)
            return ids
        finally:
            self.train(was_training)
