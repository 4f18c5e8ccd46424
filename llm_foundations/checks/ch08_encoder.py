"""Checks for the encoder exercise (chapter 8): PyTorch twins of an encoder layer, an independent
reference for the encoder stack, what common mistakes return, checks of ``mask_tokens``'s
output, and a guard against calling the course's reference or PyTorch's own encoder.

Used by the test cells of ``solutions/08_encoder``; :mod:`llm_foundations.checks.core` holds the
general checks (``expect_close`` and friends).

Dimension letters: ``B`` batch, ``L`` sequence length, ``H`` heads, ``d_model`` model width,
``d_ff`` feed-forward width, ``V`` vocabulary size. Masks are boolean, **True = may attend**;
:class:`torch.nn.TransformerEncoderLayer`'s ``src_key_padding_mask`` is True at the *padding*.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import llm_foundations.encoder as _reference
import llm_foundations.checks.core as core
from llm_foundations.checks.core import embedding_weight, randomize_norms  # noqa: F401 - the encoder's test cells import them from here
from llm_foundations.interop import to_pytorch
from llm_foundations.positional import sinusoidal_positional_encoding

# --------------------------------------------------------------------------------------------
# the encoder layer


def layer_norms(layer: nn.Module, d_model: int) -> list[nn.Module]:
    """The LayerNorms of an encoder layer, in the order they were registered.

    Any submodule outside ``.self_attn`` and ``.ffn`` with a ``weight`` and a ``bias`` of shape
    ``(d_model,)`` counts: ``sublayers[0].norm`` and ``sublayers[1].norm`` in the course's layout,
    or e.g. ``norm1``/``norm2`` in a layer written without :class:`ResidualSublayer`. A module
    registered twice (one norm shared by both sublayers) is listed once.
    """
    return core.sublayer_norms(layer, d_model, skip=("self_attn", "ffn"))


def pytorch_encoder_layer_twin(layer: nn.Module, norm_first: bool, swap_norms: bool = False) -> nn.TransformerEncoderLayer:
    """An ``nn.TransformerEncoderLayer`` (batch_first, dropout 0) holding the same weights as ``layer``.

    ``layer`` follows the course's layout: ``.self_attn`` with ``w_q, w_k, w_v, w_o`` (copied into
    ``in_proj_weight``/``in_proj_bias`` stacked as query, key, value, and ``out_proj``), ``.ffn``
    with ``linear1``/``linear2`` (copied into ``linear1``/``linear2``), and two LayerNorms: by
    default the first registered (``sublayers[0].norm``, around the attention) becomes ``norm1``
    and the second (``sublayers[1].norm``) ``norm2``; ``swap_norms`` swaps them.

    The twin is left in training mode: with dropout 0 that changes nothing, and it keeps PyTorch
    off its fused inference path, so the twin runs the plain formulas. Its
    ``src_key_padding_mask`` is True at the padding: pass it ``~keep``.
    """
    d_model = layer.self_attn.w_q.weight.shape[1]
    norms = layer_norms(layer, d_model)
    if len(norms) != 2:
        raise AssertionError(
            f"an encoder layer needs two LayerNorms of width {d_model} (one per residual sublayer, e.g. "
            f"`.sublayers[0].norm` and `.sublayers[1].norm`), found {len(norms)}. Hint: build two separate "
            "ResidualSublayer modules; [block] * 2 or reusing one module shares a single norm."
        )
    if swap_norms:
        norms = norms[::-1]
    return to_pytorch(layer, norm_first=norm_first, norms=norms)


def pytorch_encoder_layer_output(layer: nn.Module, x: Tensor, keep: Tensor | None, norm_first: bool,
                                 got: Tensor | None = None) -> Tensor:
    """What ``nn.TransformerEncoderLayer`` with ``layer``'s weights returns for ``x``.

    ``keep`` is the ``(B, L)`` mask of real tokens (True = real) or None. A layer whose two
    LayerNorms were registered in the opposite order (FFN's first) computes the same function, so
    when ``got`` is given the twin whose output is closer to it is used.
    """
    twin = matching_pytorch_encoder_layer_twin(layer, norm_first, x, keep, got)
    with torch.enable_grad():
        return twin(x, src_key_padding_mask=None if keep is None else ~keep).detach()


def matching_pytorch_encoder_layer_twin(layer: nn.Module, norm_first: bool, x: Tensor, keep: Tensor | None = None,
                                        got: Tensor | None = None) -> nn.TransformerEncoderLayer:
    """The twin of ``layer`` (see :func:`pytorch_encoder_layer_twin`) with its LayerNorms in the
    order whose output on ``x`` is closer to ``got`` (default: ``layer(x)``). Both orders describe
    the same function when the layer registered the feed-forward network's norm first."""
    twins = [pytorch_encoder_layer_twin(layer, norm_first, swap_norms=swap) for swap in (False, True)]
    if got is None:
        with torch.no_grad():
            got = layer(x, None if keep is None else keep[:, None, None, :])
    if not isinstance(got, Tensor) or got.shape != x.shape:
        return twins[0]
    got = got.detach().to(x)
    with torch.enable_grad():
        outputs = [twin(x, src_key_padding_mask=None if keep is None else ~keep).detach() for twin in twins]
    distances = [float((out - got).abs().max()) for out in outputs]
    return twins[distances.index(min(distances))]


def encoder_layer_param_count(d_model: int, d_ff: int) -> int:
    """Trainable parameters of one encoder layer: attention, feed-forward network, two LayerNorms."""
    return 4 * (d_model * d_model + d_model) + (2 * d_model * d_ff + d_ff + d_model) + 2 * 2 * d_model


def encoder_layer_mistakes(layer: nn.Module, x: Tensor, mask: Tensor | None, norm_first: bool) -> dict[str, Tensor]:
    """What common mistakes in an encoder layer return with ``layer``'s weights: ``{explanation: output}``.

    Computed in float64 from the weights alone. ``mask`` follows the course's convention
    (True = may attend) and broadcasts to ``(B, H, L, L)``.
    """
    attn, ffn = layer.self_attn, layer.ffn
    d_model = attn.w_q.weight.shape[1]
    norms = layer_norms(layer, d_model)
    if len(norms) != 2:
        return {}
    ref = _reference.EncoderLayer(d_model, attn.n_heads, ffn.linear1.weight.shape[0], norm_first=norm_first)
    ref = ref.to(torch.float64)
    with torch.no_grad():
        for name in ("w_q", "w_k", "w_v", "w_o"):
            getattr(ref.self_attn, name).weight.copy_(getattr(attn, name).weight)
            getattr(ref.self_attn, name).bias.copy_(getattr(attn, name).bias)
        for name in ("linear1", "linear2"):
            getattr(ref.ffn, name).weight.copy_(getattr(ffn, name).weight)
            getattr(ref.ffn, name).bias.copy_(getattr(ffn, name).bias)
        for ours, sub in zip(norms, ref.sublayers):
            sub.norm.weight.copy_(ours.weight)
            sub.norm.bias.copy_(ours.bias)
    x = x.detach().to(torch.float64)
    n1, n2 = ref.sublayers[0].norm, ref.sublayers[1].norm
    length = x.size(-2)
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=x.device))

    def att(h, m=mask):
        return ref.self_attn(h, h, h, mask=m)

    with torch.no_grad():
        if norm_first:
            h = x + att(n1(x))
            wrong = {
                "the layer is post-LN (norm(x + sublayer(x))) although norm_first=True asks for pre-LN "
                "(x + sublayer(norm(x)))": _post(x, att, ref.ffn, n1, n2),
                "the feed-forward sublayer has no residual connection: it must return h + ffn(norm(h))":
                    ref.ffn(n2(h)),
                "the attention sublayer has no residual connection: it must return x + attn(norm(x))":
                    (lambda a: a + ref.ffn(n2(a)))(att(n1(x))),
                "the attention reads the un-normalised x: pre-LN feeds norm(x) as query, key and value":
                    (lambda a: a + ref.ffn(n2(a)))(x + att(x)),
            }
        else:
            h = n1(x + att(x))
            wrong = {
                "the layer is pre-LN (x + sublayer(norm(x))) although norm_first=False asks for post-LN "
                "(norm(x + sublayer(x)))": _pre(x, att, ref.ffn, n1, n2),
                "the feed-forward sublayer has no residual connection: it must return norm(h + ffn(h))":
                    n2(ref.ffn(h)),
                "the attention sublayer has no residual connection: it must return norm(x + attn(x))":
                    (lambda a: n2(a + ref.ffn(a)))(n1(att(x))),
            }
        forward = _pre if norm_first else _post
        wrong["a causal mask is applied: an encoder lets every token see the tokens after it too"] = forward(
            x, lambda t: att(t, causal if mask is None else causal & mask), ref.ffn, n1, n2)
        if mask is not None:
            wrong["the mask is not passed to the self-attention: padding is attended to"] = forward(
                x, lambda t: att(t, None), ref.ffn, n1, n2)
            wrong["the mask is inverted: True means 'may attend' (nn.TransformerEncoderLayer's "
                  "src_key_padding_mask means the opposite)"] = forward(x, lambda t: att(t, ~mask), ref.ffn, n1, n2)
    return wrong


def _pre(x, att, ffn, n1, n2):
    h = x + att(n1(x))
    return h + ffn(n2(h))


def _post(x, att, ffn, n1, n2):
    h = n1(x + att(x))
    return n2(h + ffn(h))


def input_gradient_map(layer: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    r"""How much each output position depends on each input position: ``G[i, j] = ||d y_i / d x_j||``.

    Entry ``[i, j]`` is the Frobenius norm of the Jacobian of output ``i`` (all its features)
    with respect to input ``j``, for the first sequence of ``x``. ``layer`` must treat the
    sequences of a batch independently (a mask, if any, must not have a batch axis): the
    Jacobian is then computed in one forward and one backward pass over ``L * d_out`` copies of
    the sequence, copy ``(i, k)`` carrying the gradient of feature ``k`` of output ``i``.

    Shape:
        - x: ``(B, L, d_model)``; ``layer`` maps ``(N, L, d_model)`` to ``(N, L, d_out)``
        - output: ``(L, L)``, on the CPU
    """
    x = x.detach()[:1]  # (1, L, d)
    length = x.size(1)
    with torch.enable_grad():
        d_out = layer(x).size(-1)
        copies = x.expand(length * d_out, -1, -1).clone().requires_grad_(True)  # (L * d_out, L, d)
        y = layer(copies)  # (L * d_out, L, d_out)
        rows = torch.arange(length * d_out, device=x.device)
        picked = y[rows, rows // d_out, rows % d_out]  # copy (i, k) -> y_ik
        (grad,) = torch.autograd.grad(picked.sum(), copies)  # (L * d_out, L, d)
    jac = grad.unflatten(0, (length, d_out))  # (L_out, d_out, L_in, d)
    return jac.pow(2).sum(dim=(1, 3)).sqrt().detach().cpu()  # (L, L)


# --------------------------------------------------------------------------------------------
# the encoder stack


def encoder_param_count(vocab_size: int, d_model: int, d_ff: int, n_layers: int, norm_first: bool) -> int:
    """Trainable parameters of ``Encoder(...)``: embedding, layers, and the final norm when pre-LN."""
    return vocab_size * d_model + n_layers * encoder_layer_param_count(d_model, d_ff) + (2 * d_model if norm_first else 0)


def encoder_reference(encoder: nn.Module, ids: Tensor, mask: Tensor | None, vocab_size: int, d_model: int,
                      norm_first: bool) -> Tensor:
    """The encoder's output computed from its parts: ``sqrt(d) E[ids] + PE`` through the encoder's
    own ``.layers`` (each called with ``mask``), then the final ``.norm`` when ``norm_first``.

    The layers are the student's own, so this checks the *assembly* (embedding scale, positions,
    the loop, the mask, the final norm) independently of the layer's insides (tested on their own).
    """
    return _encoder_variants(encoder, ids, mask, vocab_size, d_model, norm_first)["correct"]


def encoder_mistakes(encoder: nn.Module, ids: Tensor, mask: Tensor | None, vocab_size: int, d_model: int,
                     norm_first: bool) -> dict[str, Tensor]:
    """What common mistakes in assembling the encoder return: ``{explanation: output}``."""
    variants = _encoder_variants(encoder, ids, mask, vocab_size, d_model, norm_first)
    variants.pop("correct")
    return variants


def _encoder_variants(encoder, ids, mask, vocab_size, d_model, norm_first):
    weight = embedding_weight(encoder, vocab_size, d_model).detach()
    length = ids.size(1)
    pe = sinusoidal_positional_encoding(length, d_model, device=weight.device).to(weight.dtype)  # (L, d)
    tokens = weight[ids]  # (B, L, d)
    scale = math.sqrt(d_model)

    def stack(x, m=mask, final=norm_first):
        for layer in encoder.layers:
            x = layer(x, m)
        if final:
            norm = getattr(encoder, "norm", None)
            if norm is not None and getattr(norm, "weight", None) is not None:
                return F.layer_norm(x, (d_model,), norm.weight, norm.bias, eps=getattr(norm, "eps", 1e-5))
            return F.layer_norm(x, (d_model,))
        return x

    with torch.no_grad():
        variants = {
            "correct": stack(tokens * scale + pe),
            "the embeddings are not multiplied by sqrt(d_model): use TokenEmbedding (chapter 2), which returns "
            "weight[ids] * sqrt(d_model)": stack(tokens + pe),
            "the positional encoding is not added to the embeddings": stack(tokens * scale),
            "the positional encoding is added twice": stack(tokens * scale + 2 * pe),
        }
        if norm_first:
            variants["the final LayerNorm is missing: a pre-LN stack (norm_first=True) ends with one more "
                     "LayerNorm, `.norm`"] = stack(tokens * scale + pe, final=False)
        else:
            variants["a final LayerNorm is applied although norm_first=False: a post-LN stack already ends "
                     "with a norm inside its last layer, so it has no `.norm`"] = F.layer_norm(
                stack(tokens * scale + pe), (d_model,))
        if mask is not None:
            variants["the mask is not passed on to the layers"] = stack(tokens * scale + pe, m=None)
            variants["the mask is inverted: True means 'may attend'"] = stack(tokens * scale + pe, m=~mask)
    return variants


# --------------------------------------------------------------------------------------------
# mask_tokens


def check_mask_tokens_output(ids: Tensor, result: object, mask_id: int, what: str,
                             mask_prob: float | None = None) -> tuple[Tensor, Tensor]:
    """Check what every output of ``mask_tokens`` must satisfy, whatever the random draws.

    - a tuple ``(inputs, labels)`` of integer tensors of ``ids``' shape;
    - ``labels`` is -100 or the original id at every position;
    - ``inputs`` equals ``ids`` wherever ``labels`` is -100 (only selected positions change);
    - when ``mask_prob`` is given, strictly between 0 and 1, and ``ids`` has more than 200
      positions: some labels are -100 and some are not.

    Returns ``(inputs, labels)``.
    """
    if not (isinstance(result, tuple) and len(result) == 2):
        raise AssertionError(f"{what} must return a tuple (inputs, labels), got {type(result).__name__}")
    inputs, labels = result
    core.expect_shape(inputs, tuple(ids.shape), f"the inputs of {what}", hint="inputs has the shape of ids")
    core.expect_shape(labels, tuple(ids.shape), f"the labels of {what}", hint="labels has the shape of ids")
    for name, t in (("inputs", inputs), ("labels", labels)):
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise AssertionError(f"the {name} of {what} must be integer ids, got dtype {t.dtype}")
    ids_cpu, inputs_cpu, labels_cpu = ids.cpu().long(), inputs.cpu().long(), labels.cpu().long()
    ignored = labels_cpu == _reference.IGNORE_INDEX
    wrong_labels = ~ignored & (labels_cpu != ids_cpu)
    if wrong_labels.any():
        i = tuple(int(v) for v in wrong_labels.nonzero()[0])
        raise AssertionError(
            f"{what}: the labels must be the ORIGINAL id at selected positions and -100 elsewhere; at index {i} "
            f"the original id is {int(ids_cpu[i])}, the input is {int(inputs_cpu[i])} and the label is "
            f"{int(labels_cpu[i])}. Hint: "
            + ("the labels hold the corrupted inputs; take them from ids."
               if int(labels_cpu[i]) == int(inputs_cpu[i]) else
               "positions that are not selected must get the label -100, the ignore_index of F.cross_entropy.")
        )
    sampled = mask_prob is not None and 0.0 < mask_prob < 1.0 and ids.numel() > 200
    if ignored.all() and sampled:
        raise AssertionError(f"{what}: every label is -100, so no position was selected. Hint: select each "
                             "position with probability mask_prob: torch.rand(...) < mask_prob.")
    if not ignored.any() and sampled:
        raise AssertionError(
            f"{what}: no label is -100, so every position counts in the loss. Hint: the labels are the "
            "original id only at the selected positions, -100 elsewhere."
        )
    changed = ignored & (inputs_cpu != ids_cpu)
    if changed.any():
        i = tuple(int(v) for v in changed.nonzero()[0])
        raise AssertionError(
            f"{what}: the input at index {i} changed from {int(ids_cpu[i])} to {int(inputs_cpu[i])} although its "
            "label is -100 (not selected). Hint: the 80/10/10 rule applies only to the selected positions; "
            "every other position keeps its original id."
        )
    return inputs, labels


def mask_tokens_split(ids: Tensor, inputs: Tensor, labels: Tensor, mask_id: int) -> dict[str, float]:
    """Fractions measured on one output of ``mask_tokens``.

    ``selected``: selected positions / all positions; ``mask``, ``same``, ``other``: among the
    selected positions, the fraction turned into ``mask_id``, left as the original id, and
    turned into some other id.
    """
    ids, inputs, labels = ids.cpu().long(), inputs.cpu().long(), labels.cpu().long()
    selected = labels != _reference.IGNORE_INDEX
    n = max(int(selected.sum()), 1)
    is_mask = selected & (inputs == mask_id)
    same = selected & ~is_mask & (inputs == ids)
    return {
        "selected": float(selected.float().mean()),
        "mask": int(is_mask.sum()) / n,
        "same": int(same.sum()) / n,
        "other": int((selected & ~is_mask & ~same).sum()) / n,
    }


def expect_mask_tokens_split(split: dict[str, float], mask_prob: float, what: str, tol: float = 0.025,
                             tol_selected: float = 0.01) -> None:
    """Fail unless ``split`` (from :func:`mask_tokens_split`) shows the selection rate and the 80/10/10 rule."""
    if abs(split["selected"] - mask_prob) > tol_selected:
        hint = ("the comparison is reversed: a position is selected when torch.rand(...) < mask_prob"
                if abs(split["selected"] - (1 - mask_prob)) <= tol_selected else
                "select each position independently with probability mask_prob")
        raise AssertionError(f"{what}: {split['selected']:.1%} of the positions are selected, expected about "
                             f"{mask_prob:.1%}. Hint: {hint}.")
    expected = {"mask": 0.8, "same": 0.1, "other": 0.1}
    off = {k: v for k, v in expected.items() if abs(split[k] - v) > tol}
    if not off:
        return
    shown = ", ".join(f"{k} {split[k]:.1%} (expected about {v:.0%})" for k, v in expected.items())
    if split["mask"] > 0.97:
        hint = "every selected position became mask_id: only 80% do; 10% get a random id and 10% stay unchanged."
    elif abs(split["mask"] - 0.72) < tol and abs(split["same"] - 0.18) < tol:
        hint = ("the random replacement is drawn independently of the masking, so it overwrites some [MASK]s "
                "(80% x 90% = 72% stay masked). Decide the three outcomes from one draw per position, or pick "
                "the random ones among the selected positions that were not masked (half of the remaining 20%).")
    elif abs(split["other"] - 0.2) < tol or abs(split["same"] - 0.2) < tol:
        hint = "the 20% that are not masked must be split in two halves: 10% random ids, 10% unchanged."
    else:
        hint = "of the selected positions, 80% become mask_id, 10% a random id, 10% keep their id."
    raise AssertionError(f"{what}: among the selected positions: {shown}.\nHint: {hint}")


# --------------------------------------------------------------------------------------------
# guards and errors


#: Python functions whose use does not earn the points of a task: the course's reference answers
#: and PyTorch's own encoder and attention modules.
REFERENCE_FUNCTIONS = {
    "EncoderLayer": (_reference.EncoderLayer.__init__, _reference.EncoderLayer.forward),
    "Encoder": (_reference.Encoder.__init__, _reference.Encoder.forward,
                _reference.EncoderLayer.__init__, _reference.EncoderLayer.forward),
    "mask_tokens": (_reference.mask_tokens,),
}
_PYTORCH_FUNCTIONS = (nn.TransformerEncoderLayer.forward, nn.TransformerEncoder.forward,
                      nn.MultiheadAttention.forward, F.multi_head_attention_forward)
#: Names of PyTorch's fused encoder and attention operators (seen through a TorchFunctionMode).
BUILTIN_ENCODER = ("transformer_encoder", "multi_head_attention", "_native_multi_head_attention")
#: What a test says when the student's code ran PyTorch's own encoder.
CALLS_PYTORCH = (
    "{what} calls PyTorch's own encoder or attention ({name}). Build it from the course's MultiHeadAttention, "
    "FeedForward and ResidualSublayer: PyTorch's module is what the tests compare with."
)


#: Error messages this chapter's mistakes produce, and what they probably mean (they take
#: precedence over the general hints of :func:`llm_foundations.checks.core.call`).
_ERROR_HINTS = {
    "does not broadcast to the attention scores": "the mask must broadcast to the scores (B, H, L, L): a padding "
    "mask is (B, 1, 1, L), as padding_mask(ids, pad_id) returns.",
    "bad operand type for unary ~: 'NoneType'": "the mask may be None: only transform it when it is given.",
    "'NoneType' object is not callable": "with norm_first=False there is no final norm: skip it instead of calling "
    "None.",
    "must be a boolean tensor": "masks are boolean, True = may attend: build them with a comparison "
    "such as ids != pad_id.",
    "The size of tensor a": "two tensors do not broadcast: check that the positional encoding has as many rows as "
    "the sequence has tokens (slice it to L), and print the shapes.",
}


#: :func:`llm_foundations.checks.core.call`, with this chapter's hints for known errors.
call = core.hinted_call(_ERROR_HINTS)


#: Fail if the code in the block calls the reference answer to ``task`` (a key of
#: :data:`REFERENCE_FUNCTIONS`), a checking helper of this module, or PyTorch's own encoder (Python
#: calls and fused operators). The rest of the package stays allowed: the exercise builds on
#: ``MultiHeadAttention``, ``FeedForward``, ``ResidualSublayer``, ``TokenEmbedding`` and the
#: positional encodings on purpose.
forbid_reference = core.reference_guard(
    REFERENCE_FUNCTIONS, helpers=(encoder_layer_mistakes, encoder_reference, encoder_mistakes,
                                  pytorch_encoder_layer_twin, pytorch_encoder_layer_output,
                                  matching_pytorch_encoder_layer_twin),
    pytorch=_PYTORCH_FUNCTIONS, calls_pytorch=CALLS_PYTORCH, builtins=BUILTIN_ENCODER)
