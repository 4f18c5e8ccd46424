"""Checks for the decoder exercise (chapter 9): a PyTorch twin of a decoder layer, an independent
reference for the decoder stack, what common mistakes return, the cached decoding paths, a
counter of the work a generation loop does, and a guard against calling the course's reference
or PyTorch's own decoder.

Used by the test cells of ``solutions/09_decoder``; :mod:`llm_foundations.checks.core` holds the
general checks (``expect_close`` and friends).

Dimension letters: ``B`` batch, ``L_t`` target (decoder) length, ``L_s`` source (memory) length,
``T`` positions already cached, ``H`` heads, ``d_model`` model width, ``d_ff`` feed-forward
width, ``V`` vocabulary size. Masks are boolean, **True = may attend**;
:class:`torch.nn.TransformerDecoderLayer` reads ``tgt_mask`` and ``memory_key_padding_mask`` the
other way (True = blocked), so its twin is given ``~mask``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import sys
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import llm_foundations.attention as _attention
import llm_foundations.decoder as _reference
import llm_foundations.checks.core as core
from llm_foundations.interop import to_pytorch
from llm_foundations.positional import sinusoidal_positional_encoding
from llm_foundations.checks.core import embedding_weight, randomize_norms  # noqa: F401 - the decoder's test cells import randomize_norms from here

__all__ = [
    "CachedDecoding",
    "call",
    "causal_mask_mistakes",
    "count_new_tokens",
    "course_caches",
    "course_decoder",
    "course_step_and_cache",
    "decoder_layer_mistakes",
    "decoder_layer_norms",
    "decoder_layer_param_count",
    "decoder_mistakes",
    "decoder_param_count",
    "decoder_reference",
    "expect_close_or_hint",
    "expect_one_token_per_step",
    "forbid_reference",
    "greedy_reference",
    "leak_matrix",
    "pytorch_decoder_layer_output",
    "pytorch_decoder_layer_twin",
    "randomize_norms",
    "reference_causal_mask",
    "reference_decode_step",
]


def expect_close_or_hint(got: object, expected: Tensor, what: str, mistakes: Callable[[], dict] | None = None,
                         hint: str = "", atol: float = 1e-5, rtol: float = 1e-4) -> Tensor:
    """:func:`llm_foundations.checks.core.expect_close`, computing the known mistakes only for a wrong answer.

    ``mistakes`` returns ``{explanation: what that mistake returns}``; it is called (once) only when
    ``got`` differs from ``expected``, so a right answer does not pay for running every mistake.
    """
    try:
        return core.expect_close(got, expected, what, hint=hint, atol=atol, rtol=rtol)
    except AssertionError:
        if mistakes is None:
            raise
    try:
        hints = mistakes()
    except Exception:  # noqa: BLE001 - no hint rather than a confusing error
        hints = {}
    return core.expect_close(got, expected, what, hints=hints, hint=hint, atol=atol, rtol=rtol)


def reference_causal_mask(seq_len: int, device: torch.device | str | None = None) -> Tensor:
    """``(seq_len, seq_len)`` boolean, True on and below the diagonal (built here, independently of the student)."""
    position = torch.arange(seq_len, device=device)
    return position[None, :] <= position[:, None]  # key j <= query i


# --------------------------------------------------------------------------------------------
# the decoder layer


def decoder_layer_norms(layer: nn.Module, d_model: int) -> list[nn.Module]:
    """The LayerNorms of a decoder layer, in the order they were registered.

    Any submodule outside ``.self_attn``, ``.cross_attn`` and ``.ffn`` with a ``weight`` and a
    ``bias`` of shape ``(d_model,)`` counts: ``sublayers[i].norm`` in the course's layout, or
    ``norm1``/``norm2``/``norm3`` in a layer written without ``ResidualSublayer``. A module
    registered twice (one norm shared by several sublayers) is listed once.
    """
    return core.sublayer_norms(layer, d_model, skip=("self_attn", "cross_attn", "ffn"))


def decoder_layer_param_count(d_model: int, d_ff: int) -> int:
    """Trainable parameters of one decoder layer: two attentions, the feed-forward network, three LayerNorms."""
    return 2 * 4 * (d_model * d_model + d_model) + (2 * d_model * d_ff + d_ff + d_model) + 3 * 2 * d_model


def _norms_or_fail(layer: nn.Module, d_model: int) -> list[nn.Module]:
    norms = decoder_layer_norms(layer, d_model)
    if len(norms) != 3:
        raise AssertionError(
            f"a decoder layer needs three LayerNorms of width {d_model} (one per residual sublayer: around the "
            f"self-attention, the cross-attention and the feed-forward network), found {len(norms)}. Hint: build "
            "three separate ResidualSublayer modules; [block] * 3 or reusing one module shares a single norm."
        )
    return norms


def pytorch_decoder_layer_twin(layer: nn.Module, norm_first: bool, order: Sequence[int] = (0, 1, 2)
                               ) -> nn.TransformerDecoderLayer:
    """An ``nn.TransformerDecoderLayer`` (batch_first, dropout 0) holding the same weights as ``layer``.

    ``layer`` follows the course's layout: ``.self_attn`` and ``.cross_attn`` with ``w_q, w_k,
    w_v, w_o`` (copied into ``self_attn`` and ``multihead_attn``: ``in_proj_weight``/``in_proj_bias``
    stacked as query, key, value, and ``out_proj``), ``.ffn`` with ``linear1``/``linear2``, and
    three LayerNorms: the registered ones, in the registration order permuted by ``order``, become
    ``norm1`` (self-attention), ``norm2`` (cross-attention) and ``norm3`` (feed-forward network).

    PyTorch's boolean ``tgt_mask`` and ``memory_key_padding_mask`` are True where attention is
    *blocked*: pass it ``~mask``.
    """
    norms = _norms_or_fail(layer, layer.self_attn.w_q.weight.shape[1])
    return to_pytorch(layer, norm_first=norm_first, norms=[norms[i] for i in order])


def pytorch_decoder_layer_output(layer: nn.Module, x: Tensor, memory: Tensor, tgt_mask: Tensor | None,
                                 memory_keep: Tensor | None, norm_first: bool, got: Tensor | None = None,
                                 tgt_keep: Tensor | None = None) -> Tensor:
    """What ``nn.TransformerDecoderLayer`` with ``layer``'s weights returns.

    ``tgt_mask``: ``(L_t, L_t)``, True = may attend (the course's convention), or None.
    ``memory_keep``: ``(B, L_s)``, True at real source tokens, or None; ``tgt_keep`` likewise for
    the target (PyTorch's ``tgt_key_padding_mask``, combined with ``tgt_mask``). A layer whose three
    LayerNorms were registered in another order computes the same function, so when ``got`` is
    given the assignment of norms whose output is closest to it is used.
    """
    def run(order):
        twin = pytorch_decoder_layer_twin(layer, norm_first, order)
        with torch.enable_grad():
            return twin(x, memory, tgt_mask=None if tgt_mask is None else ~tgt_mask,
                        tgt_key_padding_mask=None if tgt_keep is None else ~tgt_keep,
                        memory_key_padding_mask=None if memory_keep is None else ~memory_keep).detach()

    first = run((0, 1, 2))
    if got is None or not isinstance(got, Tensor) or got.shape != first.shape:
        return first
    got = got.detach().to(first)
    if core.close(got.double(), first.double(), 1e-5, 1e-4):
        return first
    outputs = [first] + [run(order) for order in itertools.permutations(range(3)) if order != (0, 1, 2)]
    return min(outputs, key=lambda out: float((out - got).abs().max()))


def _reference_layer(layer: nn.Module, norm_first: bool) -> _reference.DecoderLayer | None:
    """The course's DecoderLayer in float64 with ``layer``'s weights (norms in registration order)."""
    attn, cross, ffn = layer.self_attn, layer.cross_attn, layer.ffn
    d_model = attn.w_q.weight.shape[1]
    norms = decoder_layer_norms(layer, d_model)
    if len(norms) != 3:
        return None
    ref = _reference.DecoderLayer(d_model, attn.n_heads, ffn.linear1.weight.shape[0], norm_first=norm_first)
    ref = ref.to(torch.float64)
    with torch.no_grad():
        for ours, theirs in ((attn, ref.self_attn), (cross, ref.cross_attn)):
            for name in ("w_q", "w_k", "w_v", "w_o"):
                getattr(theirs, name).weight.copy_(getattr(ours, name).weight)
                getattr(theirs, name).bias.copy_(getattr(ours, name).bias)
        for name in ("linear1", "linear2"):
            getattr(ref.ffn, name).weight.copy_(getattr(ffn, name).weight)
            getattr(ref.ffn, name).bias.copy_(getattr(ffn, name).bias)
        for ours, sub in zip(norms, ref.sublayers):
            sub.norm.weight.copy_(ours.weight)
            sub.norm.bias.copy_(ours.bias)
    return ref.to(attn.w_q.weight.device)


def decoder_layer_mistakes(layer: nn.Module, x: Tensor, memory: Tensor, tgt_mask: Tensor | None,
                           memory_mask: Tensor | None, norm_first: bool) -> dict[str, Tensor]:
    """What common mistakes in a decoder layer return with ``layer``'s weights: ``{explanation: output}``.

    Computed in float64 from the weights alone. ``tgt_mask`` (broadcastable to ``(B, H, L_t,
    L_t)``) and ``memory_mask`` (broadcastable to ``(B, H, L_t, L_s)``) follow the course's
    convention, True = may attend.
    """
    ref = _reference_layer(layer, norm_first)
    if ref is None:
        return {}
    x, memory = x.detach().to(torch.float64), memory.detach().to(torch.float64)
    n1, n2, n3 = (sub.norm for sub in ref.sublayers)
    ffn = ref.ffn

    def sa(h, m=tgt_mask):
        return ref.self_attn(h, h, h, mask=m)

    def ca(h, m=memory_mask, source=memory):
        return ref.cross_attn(h, source, source, mask=m)

    wrong: dict[str, Tensor] = {}

    def add(explanation: str, fn: Callable[[], Tensor]) -> None:
        try:
            wrong[explanation] = fn()
        except Exception:  # noqa: BLE001 - a mistake that cannot even run on these shapes is no hint
            pass

    with torch.no_grad():
        if norm_first:
            def run(first, second, norms=(n1, n2, n3)):
                a, b, c = norms
                h1 = x + first(a(x))
                h2 = h1 + second(b(h1))
                return h2 + ffn(c(h2))

            h1 = x + sa(n1(x))
            h2 = h1 + ca(n2(h1))
            add("the layer is post-LN (norm(x + sublayer(x))) although norm_first=True asks for pre-LN "
                "(x + sublayer(norm(x)))", lambda: _post(x, sa, ca, ffn, n1, n2, n3))
            add("the self-attention sublayer has no residual connection: it must return x + self_attn(norm(x))",
                lambda: (lambda a: (lambda b: b + ffn(n3(b)))(a + ca(n2(a))))(sa(n1(x))))
            add("the cross-attention sublayer has no residual connection: it must return h + cross_attn(norm(h), "
                "memory)", lambda: (lambda b: b + ffn(n3(b)))(ca(n2(h1))))
            add("the feed-forward sublayer has no residual connection: it must return h + ffn(norm(h))",
                lambda: ffn(n3(h2)))
            add("the cross-attention comes before the self-attention: the order is masked self-attention, "
                "cross-attention, feed-forward network", lambda: run(ca, sa, (n2, n1, n3)))
            add("the cross-attention comes before the self-attention: the order is masked self-attention, "
                "cross-attention, feed-forward network.", lambda: run(ca, sa))
            add("the memory is normalised too: in pre-LN only the decoder's stream is normalised; the memory goes "
                "into the cross-attention as it is", lambda: run(sa, lambda h: ref.cross_attn(h, n2(memory), n2(memory),
                                                                                              mask=memory_mask)))
        else:
            def run(first, second, norms=(n1, n2, n3)):
                a, b, c = norms
                h1 = a(x + first(x))
                h2 = b(h1 + second(h1))
                return c(h2 + ffn(h2))

            h1 = n1(x + sa(x))
            h2 = n2(h1 + ca(h1))
            add("the layer is pre-LN (x + sublayer(norm(x))) although norm_first=False asks for post-LN "
                "(norm(x + sublayer(x)))", lambda: _pre(x, sa, ca, ffn, n1, n2, n3))
            add("the self-attention sublayer has no residual connection: it must return norm(x + self_attn(x))",
                lambda: (lambda a: (lambda b: n3(b + ffn(b)))(n2(a + ca(a))))(n1(sa(x))))
            add("the cross-attention sublayer has no residual connection: it must return norm(h + cross_attn(h, "
                "memory))", lambda: (lambda b: n3(b + ffn(b)))(n2(ca(h1))))
            add("the feed-forward sublayer has no residual connection: it must return norm(h + ffn(h))",
                lambda: n3(ffn(h2)))
            add("the cross-attention comes before the self-attention: the order is masked self-attention, "
                "cross-attention, feed-forward network", lambda: run(ca, sa, (n2, n1, n3)))
            add("the cross-attention comes before the self-attention: the order is masked self-attention, "
                "cross-attention, feed-forward network.", lambda: run(ca, sa))
        forward = _pre if norm_first else _post
        if tgt_mask is not None:
            add("the self-attention ignores tgt_mask: without the causal mask every position reads the "
                "positions after it", lambda: forward(x, lambda h: sa(h, None), ca, ffn, n1, n2, n3))
        if memory_mask is not None:
            add("the cross-attention ignores memory_mask: the padding of the source is attended to",
                lambda: forward(x, sa, lambda h: ca(h, None), ffn, n1, n2, n3))
        add("the cross-attention reads the decoder's own states instead of the memory: its keys and values must "
            "be the encoder's output, memory", lambda: forward(x, sa, lambda h: ref.cross_attn(h, h, h), ffn, n1, n2, n3))
        if x.size(-2) == memory.size(-2):
            add("the cross-attention's queries come from the memory: the queries are the decoder's states and the "
                "keys and values the memory, cross_attn(h, memory, memory)",
                lambda: forward(x, sa, lambda h: ref.cross_attn(memory, h, h, mask=memory_mask), ffn, n1, n2, n3))
        if tgt_mask is not None and memory_mask is not None:
            add("the two masks are swapped: tgt_mask belongs to the self-attention, memory_mask to the cross-attention",
                lambda: forward(x, lambda h: sa(h, memory_mask), lambda h: ca(h, tgt_mask), ffn, n1, n2, n3))
    return wrong


def _pre(x, sa, ca, ffn, n1, n2, n3):
    h1 = x + sa(n1(x))
    h2 = h1 + ca(n2(h1))
    return h2 + ffn(n3(h2))


def _post(x, sa, ca, ffn, n1, n2, n3):
    h1 = n1(x + sa(x))
    h2 = n2(h1 + ca(h1))
    return n3(h2 + ffn(h2))


# --------------------------------------------------------------------------------------------
# the decoder stack


def decoder_param_count(vocab_size: int, d_model: int, d_ff: int, n_layers: int, norm_first: bool) -> int:
    """Trainable parameters of ``Decoder(...)``: embedding, layers, and the final norm when pre-LN."""
    return vocab_size * d_model + n_layers * decoder_layer_param_count(d_model, d_ff) + (2 * d_model if norm_first else 0)


def decoder_reference(decoder: nn.Module, ids: Tensor, memory: Tensor, tgt_mask: Tensor | None,
                      memory_mask: Tensor | None, vocab_size: int, d_model: int, norm_first: bool) -> Tensor:
    """The decoder's output computed from its parts: ``sqrt(d) E[ids] + PE`` through the decoder's
    own ``.layers`` (each called as ``layer(x, memory, mask, memory_mask)`` with ``mask`` the causal
    mask, combined with ``tgt_mask`` when one is given), then the final ``.norm`` when ``norm_first``.

    The layers are the student's own, so this checks the *assembly* (embedding scale, positions,
    the default causal mask, the loop, the final norm) independently of the layer's insides.
    """
    return _decoder_variants(decoder, ids, memory, tgt_mask, memory_mask, vocab_size, d_model, norm_first,
                             only_correct=True)["correct"]


def decoder_mistakes(decoder: nn.Module, ids: Tensor, memory: Tensor, tgt_mask: Tensor | None,
                     memory_mask: Tensor | None, vocab_size: int, d_model: int, norm_first: bool) -> dict[str, Tensor]:
    """What common mistakes in assembling the decoder return: ``{explanation: output}``."""
    variants = _decoder_variants(decoder, ids, memory, tgt_mask, memory_mask, vocab_size, d_model, norm_first)
    variants.pop("correct")
    return variants


def _final_norm(decoder: nn.Module, x: Tensor, d_model: int) -> Tensor:
    norm = getattr(decoder, "norm", None)
    if norm is not None and getattr(norm, "weight", None) is not None:
        return F.layer_norm(x, (d_model,), norm.weight, norm.bias, eps=getattr(norm, "eps", 1e-5))
    return F.layer_norm(x, (d_model,))


def _decoder_variants(decoder, ids, memory, tgt_mask, memory_mask, vocab_size, d_model, norm_first, only_correct=False):
    weight = embedding_weight(decoder, vocab_size, d_model, "decoder").detach()
    length = ids.size(1)
    pe = sinusoidal_positional_encoding(length, d_model, device=weight.device).to(weight.dtype)  # (L_t, d)
    tokens = weight[ids]  # (B, L_t, d)
    scale = math.sqrt(d_model)
    causal = reference_causal_mask(length, ids.device)
    given = causal if tgt_mask is None else causal & tgt_mask  # a given mask narrows the causal one

    def stack(x, m=given, mm=memory_mask, final=norm_first):
        for layer in decoder.layers:
            x = layer(x, memory, m, mm)
        return _final_norm(decoder, x, d_model) if final else x

    variants: dict[str, Tensor] = {}

    def add(explanation: str, fn: Callable[[], Tensor]) -> None:
        try:
            variants[explanation] = fn()
        except Exception:  # noqa: BLE001 - a mistake that cannot run on these shapes is no hint
            pass

    with torch.no_grad():
        x0 = tokens * scale + pe
        variants["correct"] = stack(x0)
        if only_correct:
            return variants
        add("the embeddings are not multiplied by sqrt(d_model): use TokenEmbedding (chapter 2), which returns "
            "weight[ids] * sqrt(d_model)", lambda: stack(tokens + pe))
        add("the positional encoding is not added to the embeddings", lambda: stack(tokens * scale))
        add("the positional encoding is added twice", lambda: stack(tokens * scale + 2 * pe))
        if norm_first:
            add("the final LayerNorm is missing: a pre-LN stack (norm_first=True) ends with one more LayerNorm, "
                "`.norm`", lambda: stack(x0, final=False))
        else:
            add("a final LayerNorm is applied although norm_first=False: a post-LN stack already ends with a norm "
                "inside its last layer, so it has no `.norm`", lambda: _final_norm(decoder, stack(x0), d_model))
        if tgt_mask is None:
            add("no causal mask reaches the layers: when tgt_mask is None the decoder must build causal_mask(L_t) "
                "itself, or every position reads the future", lambda: stack(x0, m=None))
            add("the default mask is upper triangular (torch.triu): the decoder's default must be causal_mask(L_t), "
                "True on and below the diagonal", lambda: stack(x0, m=causal.T))
            add("the default mask hides the diagonal too (tril(-1)): a position may attend to itself",
                lambda: stack(x0, m=torch.tril(causal, diagonal=-1)))
            add("the default mask is inverted: True means 'may attend'", lambda: stack(x0, m=~causal))
        else:
            add("the tgt_mask given replaces the causal mask: the decoder must stay causal whatever it is given, "
                "combine them (causal_mask(L_t) & tgt_mask)", lambda: stack(x0, m=tgt_mask))
            add("the tgt_mask given is ignored: combine it with the causal mask (causal_mask(L_t) & tgt_mask)",
                lambda: stack(x0, m=causal))
        if memory_mask is not None:
            add("memory_mask is not passed on to the layers: the source padding is attended to",
                lambda: stack(x0, mm=None))
    return variants


# --------------------------------------------------------------------------------------------
# the KV cache


class _ContractDecoder(_reference.Decoder):
    """The course's decoder with the exercise's ``forward`` signature: no ``caches`` argument."""

    def forward(self, tgt_ids: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None) -> Tensor:
        return super().forward(tgt_ids, memory, tgt_mask, memory_mask)  # causal, combined with tgt_mask


def course_decoder(vocab_size: int, d_model: int, n_heads: int, d_ff: int, n_layers: int, norm_first: bool = True,
                   seed: int = 0, max_len: int = 512) -> nn.Module:
    """The course's reference :class:`~llm_foundations.decoder.Decoder` (eval mode), with random LayerNorms.

    Its attributes are the ones the exercise asks for (``embedding``, ``positions``, ``layers``,
    ``norm``), its layers accept ``cache=``, and its ``forward`` has the exercise's signature
    (no ``caches``): tests run the student's cached decoding on it to check that code
    independently of the student's own decoder.
    """
    torch.manual_seed(seed)
    decoder = _ContractDecoder(vocab_size, d_model, n_heads, d_ff, n_layers, max_len=max_len,
                               norm_first=norm_first).eval()
    randomize_norms(decoder, d_model, torch.Generator().manual_seed(seed + 1))
    return decoder


def course_caches(decoder: nn.Module) -> list:
    """One empty course :class:`~llm_foundations.attention.KVCache` per layer of ``decoder``."""
    return [_attention.KVCache() for _ in decoder.layers]


class _NewOnlyCache(_attention.KVCache):
    """A cache that stores everything but hands back only the new keys and values (a classic bug)."""

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        super().update(k, v)
        return k, v


class CachedDecoding:
    """Decode ``ids`` in chunks through ``decoder``'s parts with course caches, right or with a known mistake.

    ``decoder`` has ``embedding`` (ids to scaled vectors), ``layers`` (called with ``cache=``) and
    ``norm`` (or None); the sinusoidal positions are added here (dropout is off in eval mode), so
    the result does not depend on how the decoder stores them. ``chunks`` are the sizes of the
    consecutive pieces of ``ids`` fed in, e.g. ``[4, 1, 1]``: a prefill of 4 tokens, then one at a time.
    """

    def __init__(self, decoder: nn.Module, memory: Tensor, memory_mask: Tensor | None = None):
        self.decoder, self.memory, self.memory_mask = decoder, memory, memory_mask

    def run(self, ids: Tensor, chunks: Sequence[int], offset_positions: bool = True, offset_mask: bool = True,
            cache_type: type = _attention.KVCache, mask_single_tokens: bool = True) -> Tensor:
        decoder = self.decoder
        caches = [cache_type() for _ in decoder.layers]
        outputs, start = [], 0
        with torch.no_grad():
            for size in chunks:
                new = ids[:, start : start + size]
                cached = start
                mask = torch.ones(size, cached + size, dtype=torch.bool, device=ids.device)
                mask = mask.tril(diagonal=cached if offset_mask else 0)
                if size == 1 and not mask_single_tokens:
                    mask = None  # one new token may see everything cached: a mask is optional
                start_position = cached if offset_positions else 0
                x = decoder.embedding(new)  # (B, L_new, d_model)
                pe = sinusoidal_positional_encoding(start_position + size, x.size(-1), device=x.device)
                x = x + pe[start_position:].to(x.dtype)  # positions start_position, start_position + 1, ...
                for layer, cache in zip(decoder.layers, caches):
                    x = layer(x, self.memory, mask, self.memory_mask, cache=cache)
                norm = getattr(decoder, "norm", None)
                outputs.append(x if norm is None else norm(x))
                start += size
        return torch.cat(outputs, dim=1)

    def mistakes(self, ids: Tensor, chunks: Sequence[int]) -> dict[str, Tensor]:
        """``{explanation: output}`` of the classic mistakes of cached decoding (empty if they cannot run)."""
        variants: dict[str, Tensor] = {}
        cases = {
            "the new tokens get positions 0, 1, ... again: with T tokens cached, the new ones sit at positions "
            "T, T+1, ...; pass offset=len(caches[0]) to the positional encoding": dict(offset_positions=False),
            "the causal mask is not shifted by the cached positions: new query i sits at position T + i and may "
            "see every cached key and the new keys up to itself, torch.ones(L, T + L).tril(diagonal=T)":
                dict(offset_mask=False),
            "the cache hands back only the new keys and values: update must append them and return ALL the keys "
            "and values so far": dict(cache_type=_NewOnlyCache, mask_single_tokens=False),
        }
        for explanation, options in cases.items():
            try:
                variants[explanation] = self.run(ids, chunks, **options)
            except Exception:  # noqa: BLE001 - a mistake that cannot run on these shapes is no hint
                pass
        return variants


class WorkRecords(list):
    """One list per distinct layer of a decoder: the number of positions each call pushed through it.

    ``repeats[i]`` is how often that layer object appears in ``decoder.layers`` (1 unless the
    same layer was reused), so one decoding step calls it ``repeats[i]`` times.
    """

    repeats: list[int]


@contextlib.contextmanager
def count_new_tokens(decoder: nn.Module) -> Iterator[WorkRecords]:
    """Record how many positions each layer's feed-forward network processes per call.

    Yields a :class:`WorkRecords`: one list per distinct layer of ``decoder.layers``; every call
    of that layer's ``.ffn`` appends the length of its input (the number of target positions
    pushed through the layer).
    """
    records, handles, seen = WorkRecords(), [], {}
    records.repeats = []
    for layer in decoder.layers:
        if id(layer) in seen:
            records.repeats[seen[id(layer)]] += 1
            continue
        seen[id(layer)] = len(records)
        record: list[int] = []
        records.append(record)
        records.repeats.append(1)
        ffn = getattr(layer, "ffn", None)
        if isinstance(ffn, nn.Module):
            handles.append(ffn.register_forward_pre_hook(
                lambda module, args, record=record: record.append(int(args[0].shape[-2]))))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def expect_one_token_per_step(records: WorkRecords, steps: int, what: str) -> None:
    """Fail unless every layer processed exactly one new position per call, in ``steps`` (or ``steps + 1``) steps."""
    repeats = getattr(records, "repeats", [1] * len(records))
    for i, (lengths, k) in enumerate(zip(records, repeats)):
        if not lengths:
            raise AssertionError(f"{what}: layer {i} of the decoder was never run. Hint: run every layer, through "
                                 "decode_step.")
        if any(n != 1 for n in lengths):
            shown = lengths[:12] + (["..."] if len(lengths) > 12 else [])
            grows = len(lengths) > 1 and lengths == sorted(lengths) and lengths[-1] > lengths[0]
            raise AssertionError(
                f"{what}: a generation step must push ONE new token through the layers, but layer {i} processed "
                f"{shown} positions in its successive calls. Hint: "
                + ("the whole prefix is recomputed at every step, which is what the KV cache exists to avoid. "
                   "Create the caches once, before the loop, and feed decode_step only the newest token, ids[:, -1:]."
                   if grows else "feed decode_step only the newest token at each step, ids[:, -1:].")
            )
        if not k * steps <= len(lengths) <= k * (steps + 1):
            raise AssertionError(f"{what}: generating {steps} tokens ran layer {i} {len(lengths) // k} times, "
                                 f"expected {steps} (one step per generated token).")


def reference_decode_step(decoder: nn.Module, new_ids: Tensor, memory: Tensor, caches: Sequence,
                          memory_mask: Tensor | None = None) -> Tensor:
    """The course's answer to Task 5: run ``new_ids`` through ``decoder``'s parts with ``caches``.

    Positions ``T .. T + L - 1`` (``T = len(caches[0])``), the causal mask shifted by ``T``, every
    layer with its cache, then the final norm. Used to grade ``greedy_generate`` on its own.
    """
    cached, length = len(caches[0]), new_ids.size(1)
    mask = torch.ones(length, cached + length, dtype=torch.bool, device=new_ids.device).tril(diagonal=cached)
    x = decoder.embedding(new_ids)  # (B, L, d_model)
    x = x + sinusoidal_positional_encoding(cached + length, x.size(-1), device=x.device)[cached:].to(x.dtype)
    for layer, cache in zip(decoder.layers, caches):
        x = layer(x, memory, mask, memory_mask, cache=cache)
    norm = getattr(decoder, "norm", None)
    return x if norm is None else norm(x)


@contextlib.contextmanager
def course_step_and_cache(namespace: dict) -> Iterator[None]:
    """Inside the block, the names ``decode_step`` and ``LayerCache`` of ``namespace`` (a notebook's
    ``globals()``) are the course's versions, so that a test of ``greedy_generate`` grades the
    generation loop alone; the student's own functions are put back afterwards."""
    names = ("decode_step", "LayerCache")
    missing = object()
    saved = {name: namespace.get(name, missing) for name in names}
    namespace["decode_step"], namespace["LayerCache"] = reference_decode_step, _attention.KVCache
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


@torch.no_grad()
def greedy_reference(forward: Callable[[Tensor], Tensor], head: nn.Module, batch: int, bos_id: int, steps: int,
                     device: torch.device | str | None = None) -> Tensor:
    """Greedy decoding WITHOUT a cache: at every step the whole prefix goes through ``forward``
    (ids ``(B, t)`` to hidden states ``(B, t, d_model)``, causal), and the argmax of ``head`` at the
    last position is appended. Returns ``(B, 1 + steps)``, starting with ``bos_id``."""
    ids = torch.full((batch, 1), bos_id, dtype=torch.long, device=device)
    for _ in range(steps):
        h = forward(ids)  # (B, t, d_model)
        ids = torch.cat([ids, head(h[:, -1]).argmax(-1, keepdim=True)], dim=1)
    return ids


def causal_mask_mistakes(seq_len: int) -> dict[str, Tensor]:
    """What common mistakes in ``causal_mask`` return (as float tensors): ``{explanation: mask}``."""
    right = reference_causal_mask(seq_len)
    return {
        "the mask is upper triangular (torch.triu): query i must see the keys j <= i, on and BELOW the diagonal":
            right.T.float(),
        "the diagonal is excluded (tril(diagonal=-1)): every position may attend to itself": torch.tril(
            right, diagonal=-1).float(),
        "the mask is inverted: True means 'may attend', so the allowed keys j <= i are True": (~right).float(),
    }


def leak_matrix(decoder: Callable[[Tensor], Tensor], ids: Tensor, vocab_size: int) -> Tensor:
    """``changed[i, j]``: does output ``i`` change when token ``j`` is replaced? ``(L, L)`` boolean.

    ``decoder`` maps ids ``(1, L)`` to ``(1, L, d)``. Token ``j`` is replaced by ``(id + 1) % V``.
    """
    ids = ids[:1]
    with torch.no_grad():
        base = decoder(ids)  # (1, L, d)
        rows = []
        for j in range(ids.size(1)):
            changed = ids.clone()
            changed[0, j] = (changed[0, j] + 1) % vocab_size
            rows.append(((decoder(changed) - base).abs().amax(-1)[0] > 1e-6).cpu())  # (L,)
    return torch.stack(rows, dim=1)  # (L_out, L_in)


# --------------------------------------------------------------------------------------------
# guards and errors


#: Python functions whose use does not earn the points of a task: the course's reference answers.
REFERENCE_FUNCTIONS = {
    "causal_mask": (_reference.causal_mask, _reference._cached_causal_mask),
    "DecoderLayer": (_reference.DecoderLayer.__init__, _reference.DecoderLayer.forward),
    "Decoder": (_reference.Decoder.__init__, _reference.Decoder.forward, _reference.Decoder.new_caches,
                _reference.DecoderLayer.__init__, _reference.DecoderLayer.forward, _reference.causal_mask,
                _reference._cached_causal_mask),
    "LayerCache": (_attention.KVCache.__init__, _attention.KVCache.update, _attention.KVCache.__len__),
    # Tasks 5 and 6 are tested on the course's decoder (whose layers and forward a student's code calls
    # legitimately); a decode step must not call the course's answer to Task 5
    "decode_step": (_reference._cached_causal_mask, reference_decode_step),
    "greedy_generate": (),
}
_PYTORCH_FUNCTIONS = (nn.TransformerDecoderLayer.forward, nn.TransformerDecoder.forward, nn.Transformer.forward,
                      nn.MultiheadAttention.forward, F.multi_head_attention_forward,
                      nn.Transformer.generate_square_subsequent_mask)
#: Names of PyTorch's fused attention operators (seen through a TorchFunctionMode).
BUILTIN_DECODER = ("multi_head_attention", "_native_multi_head_attention", "scaled_dot_product_attention")


def _pytorch_functions() -> tuple:
    private = getattr(sys.modules.get("torch.nn.modules.transformer"), "_generate_square_subsequent_mask", None)
    return _PYTORCH_FUNCTIONS + ((private,) if private is not None else ())


#: What a test says when the student's code ran PyTorch's own decoder.
CALLS_PYTORCH = (
    "{what} calls PyTorch's own decoder or attention ({name}). Build it from the course's MultiHeadAttention, "
    "FeedForward and ResidualSublayer: PyTorch's module is what the tests compare with."
)


#: Error messages this chapter's mistakes produce, and what they probably mean (they take
#: precedence over the general hints of :func:`llm_foundations.checks.core.call`).
_ERROR_HINTS = {
    "does not broadcast to the attention scores": "a mask must broadcast to the scores (B, H, L_q, L_k): the causal "
    "mask is (L_t, L_t) for the self-attention (with a cache: (L_new, T + L_new)), the padding mask (B, 1, 1, L_s) "
    "for the cross-attention. Are the two masks swapped, or the cached mask not widened by the cached positions?",
    "bad operand type for unary ~: 'NoneType'": "the mask may be None: only transform it when it is given.",
    "'NoneType' object is not callable": "with norm_first=False there is no final norm: skip it instead of calling None.",
    "must be a boolean tensor": "masks are boolean, True = may attend: build them with dtype=torch.bool or a comparison.",
    "The size of tensor a": "two tensors do not broadcast. In a decoder layer this usually means the cross-attention "
    "returned one vector per SOURCE position: its queries must be the decoder's states, "
    "cross_attn(h, memory, memory), so that the output has L_t rows like x.",
    "unexpected keyword argument 'cache'": "DecoderLayer.forward must accept cache=None and pass it on to the "
    "self-attention: self.self_attn(h, h, h, mask=tgt_mask, cache=cache).",
    "object of type 'NoneType' has no len()": "len(cache) must work from the start: return 0 while the cache is empty.",
    "has no len()": "LayerCache needs a __len__ method: the number of cached positions.",
}


#: :func:`llm_foundations.checks.core.call`, with this chapter's hints for known errors.
call = core.hinted_call(_ERROR_HINTS)


#: Fail if the code in the block calls the reference answer to ``task`` (a key of
#: :data:`REFERENCE_FUNCTIONS`), a checking helper of this module, or PyTorch's own decoder (Python
#: calls and fused operators). The rest of the package stays allowed: the exercise builds on
#: ``MultiHeadAttention``, ``FeedForward``, ``ResidualSublayer``, ``LayerNorm``, ``TokenEmbedding``
#: and the positional encodings on purpose.
forbid_reference = core.reference_guard(
    REFERENCE_FUNCTIONS, helpers=(decoder_layer_mistakes, decoder_reference, decoder_mistakes,
                                  pytorch_decoder_layer_twin, pytorch_decoder_layer_output, greedy_reference,
                                  CachedDecoding.run, course_decoder, course_caches),
    pytorch=_pytorch_functions, calls_pytorch=CALLS_PYTORCH, builtins=BUILTIN_DECODER)
