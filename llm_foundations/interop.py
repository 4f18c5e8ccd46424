"""PyTorch twins: PyTorch's own modules holding the same weights as the course's.

The course's modules keep one ``nn.Linear`` per projection (``w_q``, ``w_k``, ``w_v``, ``w_o``);
``nn.MultiheadAttention`` stacks the query, key and value projections, in that order, in one
``in_proj_weight`` of shape ``(3 d_model, d_model)`` and calls the output projection
``out_proj``. A twin computes the same function, so the chapters and the checks can compare the
course's code (or a student's) with PyTorch's.

Mind the masks: the course's boolean masks mean True = may attend, PyTorch's True = blocked, so
a twin is given ``~mask``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def copy_attention(ours: nn.Module, theirs: nn.MultiheadAttention) -> None:
    """Copy ``ours``'s ``w_q, w_k, w_v, w_o`` into ``theirs`` (biases too, when ``ours`` has them)."""
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))  # (3 d, d)
        theirs.out_proj.weight.copy_(ours.w_o.weight)
        if ours.w_q.bias is not None:
            theirs.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))  # (3 d,)
            theirs.out_proj.bias.copy_(ours.w_o.bias)


def copy_parameters(ours: nn.Module, theirs: nn.Module) -> None:
    """Copy a linear layer's or a LayerNorm's ``weight`` and ``bias`` (and a norm's ``eps``)."""
    with torch.no_grad():
        theirs.weight.copy_(ours.weight)
        if getattr(theirs, "bias", None) is not None:
            theirs.bias.copy_(ours.bias)
    if hasattr(theirs, "eps"):
        theirs.eps = getattr(ours, "eps", 1e-5)


def _heads(attn: nn.Module, n_heads: int | None) -> int:
    n_heads = n_heads if n_heads is not None else getattr(attn, "n_heads", None)
    if n_heads is None:
        raise TypeError("to_pytorch(module, n_heads=...): pass the number of heads the module was built with")
    return n_heads


def to_pytorch(module: nn.Module, n_heads: int | None = None, norm_first: bool = True,
               norms: Sequence[nn.Module] | None = None) -> nn.Module:
    """The PyTorch twin of a course module (batch_first, dropout 0), on its device and in its dtype.

    Args:
        module: a multi-head attention (``w_q, w_k, w_v, w_o``), an encoder layer (``self_attn``
            and ``ffn`` with ``linear1``/``linear2``) or a decoder layer (``self_attn``,
            ``cross_attn`` and ``ffn``).
        n_heads: the head count; by default the attention's ``n_heads`` (a student's module may
            keep it under another name: then pass it).
        norm_first: for a layer, pre-LN (True) or post-LN (False).
        norms: for a layer, its LayerNorms in PyTorch's order (``norm1``, ``norm2``[, ``norm3``]);
            by default the layer's ``sublayers[i].norm``.

    Returns:
        ``nn.MultiheadAttention`` in eval mode; ``nn.TransformerEncoderLayer`` or
        ``nn.TransformerDecoderLayer`` in training mode (with dropout 0 that changes nothing,
        and it keeps PyTorch off its fused inference path, so the twin runs the plain formulas).
    """
    if hasattr(module, "w_q"):
        weight = module.w_q.weight
        twin = nn.MultiheadAttention(weight.shape[1], _heads(module, n_heads), bias=module.w_q.bias is not None,
                                     batch_first=True, device=weight.device, dtype=weight.dtype)
        copy_attention(module, twin)
        return twin.eval()
    attn, ffn = module.self_attn, module.ffn
    weight = attn.w_q.weight
    d_model, d_ff = weight.shape[1], ffn.linear1.weight.shape[0]
    decoder = hasattr(module, "cross_attn")
    kind = nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer
    twin = kind(d_model, _heads(attn, n_heads), d_ff, dropout=0.0, batch_first=True, norm_first=norm_first,
                device=weight.device, dtype=weight.dtype)
    copy_attention(attn, twin.self_attn)
    if decoder:
        copy_attention(module.cross_attn, twin.multihead_attn)
    copy_parameters(ffn.linear1, twin.linear1)
    copy_parameters(ffn.linear2, twin.linear2)
    theirs = (twin.norm1, twin.norm2, twin.norm3) if decoder else (twin.norm1, twin.norm2)
    norms = list(norms) if norms is not None else [sub.norm for sub in module.sublayers]
    if len(norms) != len(theirs):
        raise ValueError(f"a {'decoder' if decoder else 'encoder'} layer has {len(theirs)} LayerNorms, got {len(norms)}")
    for ours, target in zip(norms, theirs):
        copy_parameters(ours, target)
    return twin
