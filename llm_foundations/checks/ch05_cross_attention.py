"""Checks for the cross-attention exercise (chapter 5): the exercise-only ``cross_attend``, an
independent additive attention to compare with, what common mistakes return, and a guard
against calling the course's reference.

Used by the test cells of ``solutions/05_cross_attention``; :mod:`llm_foundations.checks.core` holds
the general checks (``expect_close`` and friends).

Dimension letters: ``B`` batch, ``H`` heads, ``L_q`` queries (target length), ``L_k`` keys
(source length), ``d_*`` widths. Masks are boolean, **True = may attend**.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

import llm_foundations.attention as _reference
import llm_foundations.checks.core as core


def cross_attend(
    mha: nn.Module, decoder_states: Tensor, encoder_states: Tensor, src_ids: Tensor, pad_id: int
) -> Tensor:
    """Cross-attention with a source padding mask: the exercise's ``cross_attend``, for reference.

    Queries come from the decoder, keys and values from the encoder; the mask, built from the
    *source* ids, hides the source's padding from every query and every head.

    Args:
        mha: a multi-head attention module called as ``mha(query, key, value, mask=...)``
            (:class:`llm_foundations.attention.MultiHeadAttention`).
        decoder_states: the target side, one query per target position.
        encoder_states: the encoder's output, one key/value per source position.
        src_ids: the source token ids the encoder read.
        pad_id: the id of the padding token.

    Shape:
        - decoder_states: ``(B, L_q, d_model)``
        - encoder_states: ``(B, L_k, d_model)``
        - src_ids: ``(B, L_k)``
        - output: ``(B, L_q, d_model)``
    """
    mask = (src_ids != pad_id)[:, None, None, :]  # (B, 1, 1, L_k): True for real source tokens
    return mha(decoder_states, encoder_states, encoder_states, mask=mask)  # (B, L_q, d_model)


def padding_mask_mistakes(ids: Tensor, pad_id: int) -> dict[str, Tensor]:
    """What common mistakes in ``padding_mask`` return (those with the right shape): ``{explanation: mask}``."""
    mistakes = {
        "the mask is inverted: it must be True for real tokens (ids != pad_id), False for padding":
            (ids == pad_id)[:, None, None, :],
    }
    if pad_id != 0:
        mistakes["the padding id is hard-coded as 0: compare with the pad_id argument"] = (ids != 0)[:, None, None, :]
    return mistakes


def _as_float64(layer: nn.Linear) -> Tensor:
    return layer.weight.detach().to("cpu", torch.float64)


def additive_attention_loop(
    attn: nn.Module, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    r"""Bahdanau's additive attention written as loops over (batch, query, key), in float64.

    Uses only the *weights* of ``attn.w_q``, ``attn.w_k`` and ``attn.v`` (not the modules, so a
    stray bias does not sneak in): :math:`e_{ij} = v^\top \tanh(W_q q_i + W_k k_j)`, a softmax
    over the allowed keys, and :math:`o_i = \sum_j \alpha_{ij} v_j`. A query with no allowed key
    gets zero weights and a zero output.

    Shape:
        - query: ``(B, L_q, d_query)``; keys: ``(B, L_k, d_key)``; values: ``(B, L_k, d_v)``
        - mask: broadcastable to ``(B, L_q, L_k)``
        - returns ``(output (B, L_q, d_v), weights (B, L_q, L_k))`` in float64 on the CPU
    """
    w_q, w_k, v = _as_float64(attn.w_q), _as_float64(attn.w_k), _as_float64(attn.v)[0]
    q, k, val = (t.detach().to("cpu", torch.float64) for t in (query, keys, values))
    batch, l_q, l_k = q.size(0), q.size(1), k.size(1)
    allowed = torch.ones(batch, l_q, l_k, dtype=torch.bool)
    if mask is not None:
        allowed = mask.detach().cpu().expand(batch, l_q, l_k)
    weights = torch.zeros(batch, l_q, l_k, dtype=torch.float64)
    output = torch.zeros(batch, l_q, val.size(-1), dtype=torch.float64)
    for b in range(batch):
        for i in range(l_q):
            scores = [float(v @ torch.tanh(w_q @ q[b, i] + w_k @ k[b, j])) for j in range(l_k)]
            kept = [j for j in range(l_k) if allowed[b, i, j]]
            if not kept:
                continue
            top = max(scores[j] for j in kept)
            total = sum(math.exp(scores[j] - top) for j in kept)
            for j in kept:
                weights[b, i, j] = math.exp(scores[j] - top) / total
            output[b, i] = weights[b, i] @ val[b]
    return output, weights


def additive_attention_mistakes(
    attn: nn.Module, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
) -> dict[str, tuple[Tensor, Tensor]]:
    """What common mistakes in additive attention return: ``{explanation: (output, weights)}`` (float64)."""
    w_q, w_k, v = _as_float64(attn.w_q), _as_float64(attn.w_k), _as_float64(attn.v)[0]
    q, k, val = (t.detach().to("cpu", torch.float64) for t in (query, keys, values))
    keep = None if mask is None else mask.detach().cpu()
    pq, pk = q @ w_q.T, k @ w_k.T  # (B, L_q, d_hidden), (B, L_k, d_hidden)
    additive = torch.tanh(pq[:, :, None, :] + pk[:, None, :, :]) @ v  # (B, L_q, L_k)

    def run(scores: Tensor, dim: int = -1, allowed: Tensor | None = keep, fill: float = float("-inf"),
            after: bool = False, zero_empty: bool = True) -> tuple[Tensor, Tensor]:
        if allowed is not None and not after:
            scores = scores.masked_fill(~allowed, fill)
        weights = torch.softmax(scores, dim=dim)
        if allowed is not None:
            if after:
                weights = weights * allowed
            elif zero_empty:
                weights = weights.masked_fill(~allowed, 0.0)
        return weights @ val, weights

    mistakes = {
        "the softmax runs over the queries (dim=1) instead of over the keys (dim=-1)": run(additive, dim=1),
        "tanh is missing: v(w_q(q) + w_k(k)) is linear, so the score of key j no longer depends on the query":
            run((pq[:, :, None, :] + pk[:, None, :, :]) @ v),
        "the scores are dot products of the projections (w_q q) . (w_k k), not v . tanh(w_q q + w_k k)":
            run(pq @ pk.transpose(-2, -1)),
        "the scores are scaled dot products of the projections, not v . tanh(w_q q + w_k k)":
            run(pq @ pk.transpose(-2, -1) / math.sqrt(pq.size(-1))),
    }
    if keep is not None:
        mistakes["the mask is inverted: True must mean 'may attend', so fill where the mask is False"] = run(
            additive, allowed=~keep)
        mistakes["the mask is applied after the softmax without renormalising: the kept weights no longer "
                 "sum to 1 (mask the scores with -inf before the softmax)"] = run(additive, after=True)
        mistakes["masked scores are filled with a large finite number: a query whose keys are all masked "
                 "gets uniform weights instead of zeros"] = run(additive, fill=-1e9, zero_empty=False)
    return mistakes


def cross_attend_mistakes(
    mha: nn.Module, decoder_states: Tensor, encoder_states: Tensor, src_ids: Tensor, pad_id: int
) -> dict[str, Tensor]:
    """What common mistakes in ``cross_attend`` return (those with the right shape): ``{explanation: output}``."""
    real = (src_ids != pad_id)[:, None, None, :]  # (B, 1, 1, L_k)
    dec, enc = decoder_states, encoder_states
    kept = getattr(mha, "attn_weights", None)  # running mha below must not change what the student's call left
    with torch.no_grad():
        mistakes = {
            "no padding mask is passed: the queries also read the source's <pad> positions": mha(dec, enc, enc),
            "the mask is inverted: True must mark the real source tokens (ids != pad_id)": mha(dec, enc, enc, mask=~real),
        }
        if pad_id != 0:
            mistakes["the padding id is hard-coded as 0: build the mask with the pad_id argument"] = mha(
                dec, enc, enc, mask=(src_ids != 0)[:, None, None, :])
        if dec.shape == enc.shape:
            mistakes["the values come from the decoder: keys and values must both be the encoder states"] = mha(
                dec, enc, dec, mask=real)
    mha.attn_weights = kept
    return mistakes


#: Functions whose use does not earn the points of a task (the reference answers).
REFERENCE_FUNCTIONS = {
    "padding_mask": (_reference.padding_mask,),
    "AdditiveAttention": (_reference.AdditiveAttention.__init__, _reference.AdditiveAttention.forward),
    "cross_attend": (cross_attend,),
}


#: What a wrong shape of ``padding_mask`` probably means.
PADDING_MASK_SHAPE_HINT = (
    "the mask needs one row of keys per sequence and two axes of size 1 for the heads and the "
    "queries, (B, 1, 1, L), so that it broadcasts against the (B, H, L_q, L_k) scores. A (B, L) "
    "mask would be lined up with (L_q, L_k) and a (B, 1, L) mask with (H, L_q, L_k): both mix up "
    "the sequences of the batch."
)


#: Error messages this chapter's mistakes produce, and what they probably mean (they take
#: precedence over the general hints of :func:`llm_foundations.checks.core.call`).
_ERROR_HINTS = {
    "cannot be multiplied": "a matrix product got incompatible shapes: w_q takes the queries' width d_query "
    "and w_k the keys' width d_key, which may differ; check which layer gets which tensor.",
    "does not broadcast to the attention scores": "the scores of cross-attention are (B, H, L_q, L_k): queries "
    "from the decoder, keys from the encoder, and the padding mask (B, 1, 1, L_k) built from the source ids. "
    "Check which states you pass as query and as key/value.",
    "Expected size for first two dimensions of batch2": "the keys and the values must be the same sequence (the "
    "encoder's output): one value per key.",
}


#: :func:`llm_foundations.checks.core.call`, with this chapter's hints for known errors.
call = core.hinted_call(_ERROR_HINTS)


#: Fail if the code in the block calls the reference answer to ``task`` (a key of
#: :data:`REFERENCE_FUNCTIONS`) or a checking helper of this module. The rest of the package stays
#: allowed (``cross_attend`` uses the chapter-4 ``MultiHeadAttention`` on purpose).
forbid_reference = core.reference_guard(REFERENCE_FUNCTIONS, helpers=(
    additive_attention_loop, additive_attention_mistakes, cross_attend_mistakes, padding_mask_mistakes))
