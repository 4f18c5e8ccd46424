"""Checks for the residual-connections exercise (chapter 6): what common mistakes in LayerNorm, the
feed-forward network and the residual sublayer return, where dropout must act, and guards against
PyTorch's built-in normalisations and the course's reference.

Used by the test cells of ``solutions/06_residual_connections``; :mod:`llm_foundations.checks.core`
holds the general checks (``expect_close`` and friends).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

import llm_foundations.layers as _reference
import llm_foundations.checks.core as core

#: Substrings of the names of PyTorch's normalisation built-ins, as a TorchFunctionMode sees them:
#: ``F.layer_norm``, ``nn.LayerNorm``, ``torch.layer_norm`` and ``torch.ops.aten.layer_norm`` all
#: arrive as ``layer_norm``, ``torch.native_layer_norm`` as ``native_layer_norm``. Group, batch,
#: instance and RMS normalisation are listed too, because each computes a LayerNorm when its input
#: is reshaped (and RMS norm of ``x - mean`` is one).
BUILTIN_NORMS = ("layer_norm", "group_norm", "batch_norm", "instance_norm", "rms_norm")


@contextlib.contextmanager
def forbid_builtin_norms(what: str, forbidden: Sequence[str] = BUILTIN_NORMS) -> Iterator[None]:
    """Fail if the code run inside the block calls one of PyTorch's normalisation built-ins."""
    with core.forbid_torch_functions(what, forbidden, "{what} calls PyTorch's built-in normalisation ({used}). "
                                         "This exercise asks you to compute the mean and the variance yourself "
                                         "(x.mean, .pow, torch.sqrt, ...); nn.LayerNorm is what the tests compare "
                                         "you with."):
        yield


@contextlib.contextmanager
def own_code_only(what: str) -> Iterator[None]:
    """Both guards at once: no built-in normalisation, no call of the course's reference."""
    with forbid_reference(what), forbid_builtin_norms(what):
        yield


def _as64(t: Tensor | None, like: Tensor) -> Tensor:
    if t is None:
        return torch.ones(like.size(-1), dtype=torch.float64)
    return t.detach().cpu().double()


def layer_norm_mistakes(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
                        eps: float = 1e-5) -> dict[str, Tensor]:
    """What common LayerNorm mistakes return: ``{explanation: tensor like x}`` (float64).

    ``weight`` and ``bias`` are the module's gamma and beta (``None``: ones and zeros).
    """
    xd = x.detach().cpu().double()
    w = _as64(weight, xd)
    b = torch.zeros(xd.size(-1), dtype=torch.float64) if bias is None else bias.detach().cpu().double()
    mean = xd.mean(-1, keepdim=True)
    var = xd.var(-1, keepdim=True, correction=0)
    centred = xd - mean
    right = centred / torch.sqrt(var + eps)
    mistakes = {
        "the variance divides by d - 1 (torch.var's default, unbiased=True); LayerNorm divides by d "
        "(use correction=0 or unbiased=False, or compute the mean of the squared deviations)":
            centred / torch.sqrt(xd.var(-1, keepdim=True) + eps) * w + b if xd.size(-1) > 1 else None,
        "eps is added outside the square root, (x - mean) / (std + eps); it belongs inside, "
        "sqrt(var + eps)": centred / (var.sqrt() + eps) * w + b,
        "the result is divided by the variance, not by its square root (the standard deviation)":
            centred / (var + eps) * w + b,
        "the mean is not subtracted": xd / torch.sqrt(var + eps) * w + b,
        "the weight (gamma) is not applied": right + b,
        "the bias (beta) is not added": right * w,
        "neither the weight (gamma) nor the bias (beta) is applied": right,
        "the bias is multiplied by the weight, (x_hat + beta) * gamma; the order is x_hat * gamma + beta":
            (right + b) * w,
    }
    if xd.dim() >= 2 and xd.size(0) > 1:
        mean0, var0 = xd.mean(0, keepdim=True), xd.var(0, keepdim=True, correction=0)
        mistakes["the statistics are taken over dim 0 (the batch); LayerNorm normalises each vector over its "
                  "last dimension (dim=-1)"] = (xd - mean0) / torch.sqrt(var0 + eps) * w + b
    if xd.dim() >= 2:
        mean_all, var_all = xd.mean(), xd.var(correction=0)
        mistakes["the statistics are taken over the whole tensor; LayerNorm normalises each vector over its "
                  "last dimension (dim=-1, keepdim=True)"] = (xd - mean_all) / torch.sqrt(var_all + eps) * w + b
    if eps != 1e-5:
        mistakes["the eps argument is ignored (1e-5 is used whatever eps is passed)"] = (
            centred / torch.sqrt(var + 1e-5) * w + b)
    return {why: m for why, m in mistakes.items() if m is not None}


def feedforward_expected(ffn: torch.nn.Module, x: Tensor) -> Tensor:
    """``max(0, x W1 + b1) W2 + b2`` with ``ffn``'s own layers, in float64 (no dropout)."""
    return _ffn(ffn, x, torch.relu)


def _ffn(ffn: torch.nn.Module, x: Tensor, activation: Callable[[Tensor], Tensor], biases: bool = True) -> Tensor:
    xd = x.detach().cpu().double()
    w1, w2 = ffn.linear1.weight.detach().cpu().double(), ffn.linear2.weight.detach().cpu().double()
    b1 = ffn.linear1.bias.detach().cpu().double() if biases and ffn.linear1.bias is not None else None
    b2 = ffn.linear2.bias.detach().cpu().double() if biases and ffn.linear2.bias is not None else None
    return F.linear(activation(F.linear(xd, w1, b1)), w2, b2)


def feedforward_mistakes(ffn: torch.nn.Module, x: Tensor) -> dict[str, Tensor]:
    """What common feed-forward mistakes return with ``ffn``'s weights: ``{explanation: tensor}`` (float64)."""
    return {
        "the activation is GELU; the Transformer's feed-forward network uses ReLU, max(0, .)": _ffn(ffn, x, F.gelu),
        "there is no activation between the two linear layers (the network collapses to one linear map)":
            _ffn(ffn, x, lambda h: h),
        "the activation is tanh or sigmoid instead of ReLU": _ffn(ffn, x, torch.tanh),
        "a ReLU is applied after linear2 as well; the output must not be clipped at 0":
            torch.relu(_ffn(ffn, x, torch.relu)),
        "the biases of the linear layers are not used": _ffn(ffn, x, torch.relu, biases=False),
    }


def residual_mistakes(x: Tensor, sublayers: Sequence[tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]],
                      norm_first: bool) -> dict[str, Tensor]:
    """What common residual-sublayer mistakes return (no dropout): ``{explanation: tensor like x}``.

    ``sublayers`` is a list of ``(sublayer, norm)`` pairs applied one after the other, each wrapped
    the same (wrong) way, so that a whole ``nn.TransformerEncoderLayer`` can be compared.
    """
    pre = {
        "pre-LN and post-LN are swapped: norm_first=True means x + sublayer(norm(x)), the LayerNorm "
        "before the sublayer": lambda h, f, n: n(h + f(h)),
        "the residual path is normalised too, norm(x) + sublayer(norm(x)); add the raw input x":
            lambda h, f, n: n(h) + f(n(h)),
        "the residual is missing: the output must be x + sublayer(norm(x)), not sublayer(norm(x)) alone":
            lambda h, f, n: f(n(h)),
        "the sublayer's output is normalised instead of its input, x + norm(sublayer(x))":
            lambda h, f, n: h + n(f(h)),
        "the LayerNorm is skipped: the sublayer must read norm(x)": lambda h, f, n: h + f(h),
    }
    post = {
        "pre-LN and post-LN are swapped: norm_first=False means norm(x + sublayer(x)), the LayerNorm "
        "after the sum": lambda h, f, n: h + f(n(h)),
        "the residual is missing: the output must be norm(x + sublayer(x)), not norm(sublayer(x))":
            lambda h, f, n: n(f(h)),
        "the sublayer's output is normalised before the sum, x + norm(sublayer(x)); post-LN normalises the sum":
            lambda h, f, n: h + n(f(h)),
        "the sublayer reads norm(x) as well as normalising the sum; post-LN's sublayer reads x itself":
            lambda h, f, n: n(h + f(n(h))),
        "the LayerNorm is skipped: post-LN returns norm(x + sublayer(x))": lambda h, f, n: h + f(h),
    }
    out = {}
    with torch.no_grad():
        for why, wrap in (pre if norm_first else post).items():
            h = x
            for f, n in sublayers:
                h = wrap(h, f, n)
            out[why] = h
    return out


def expect_dropout_on_hidden(ffn: torch.nn.Module, x: Tensor, p: float, what: str) -> None:
    """Fail unless ``ffn`` in training mode applies dropout(p) to its hidden layer and nowhere else.

    The hidden layer that ``ffn.linear2`` receives is recovered from the output by least squares
    (``linear2`` must map a narrower hidden layer to a wider output), in eval mode and in training
    mode. In training mode every hidden unit must be either dropped (0) or kept and scaled by
    ``1 / (1 - p)``, and about a fraction ``p`` of the active units must be dropped. The check does
    not depend on the random masks the dropout draws, nor on the activation function.
    """
    w2 = ffn.linear2.weight.detach().cpu().double()  # (d_model, d_ff)
    if w2.size(0) < w2.size(1):
        raise ValueError("expect_dropout_on_hidden needs d_model >= d_ff")
    b2 = ffn.linear2.bias.detach().cpu().double() if ffn.linear2.bias is not None else 0.0

    def hidden_seen_by_linear2(out: object) -> tuple[Tensor, bool]:
        if not isinstance(out, Tensor) or out.shape != x.shape:
            raise AssertionError(f"{what}: expected an output of shape {tuple(x.shape)}, got "
                                 f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}")
        target = (out.detach().cpu().double() - b2).reshape(-1, w2.size(0))  # (N, d_model)
        z = torch.linalg.lstsq(w2, target.T).solution.T  # (N, d_ff)
        return z, (z @ w2.T - target).abs().max().item() <= 1e-3 * (1 + target.abs().max().item())

    with torch.no_grad():
        ffn.eval()
        hidden, ok_eval = hidden_seen_by_linear2(ffn(x))
        ffn.train()
        z, ok_train = hidden_seen_by_linear2(ffn(x))
    if not ok_eval:
        raise AssertionError(f"{what}: the output in eval mode is not linear2 of a hidden layer. Hint: linear2 must "
                             "be the last operation of forward.")

    def near(a: Tensor, b: Tensor) -> Tensor:
        return (a - b).abs() <= 1e-3 + 1e-3 * b.abs()

    is_kept, is_dropped = near(z, hidden / (1 - p)), near(z, torch.zeros_like(z))
    if ok_train and near(z, hidden).all():
        raise AssertionError(
            f"{what}: with dropout={p} the output in training mode is the same as in eval mode. Hint: apply an "
            "nn.Dropout(dropout) to the hidden layer (after the ReLU) in forward; it acts only in training mode."
        )
    if ok_train and (near(z, hidden) | is_dropped).all() and not (is_kept | is_dropped).all():
        raise AssertionError(
            f"{what}: the hidden units that dropout keeps must be scaled by 1 / (1 - p), so that the expected "
            "value does not change; nn.Dropout does this for you."
        )
    if not ok_train or not (is_kept | is_dropped).all():
        raise AssertionError(
            f"{what}: in training mode the output is not linear2 applied to a dropped-out hidden layer. "
            "Hint: dropout acts on the hidden layer, after the ReLU and before linear2: "
            "linear2(dropout(relu(linear1(x)))), not on the input or on the output."
        )
    active = hidden.abs() > 1e-2 * (hidden.abs().max() + 1e-12)
    share = (is_dropped & ~is_kept)[active].double().mean().item()
    if abs(share - p) > 0.1:
        raise AssertionError(
            f"{what}: with dropout={p} in training mode about {p:.0%} of the hidden units should be zeroed, "
            f"but {share:.0%} were. Hint: "
            + ("is the dropout module used in forward, with the probability from the constructor?" if share < p
               else "is dropout applied more than once?")
        )


def pytorch_encoder_layer(d_model: int, n_heads: int, d_ff: int, norm_first: bool, seed: int):
    """A reference for two residual sublayers: ``(layer, attention, feed_forward)``.

    ``layer`` is an eval-mode ``nn.TransformerEncoderLayer`` (batch_first, no dropout, ReLU) with
    random LayerNorm weights and biases; ``attention(h)`` and ``feed_forward(h)`` are its two
    sublayers as functions, to be wrapped by residual sublayers whose norms hold ``layer.norm1``
    and ``layer.norm2`` (see :func:`load_norm`).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = torch.nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True,
                                                 norm_first=norm_first).eval()
    with torch.no_grad():
        for norm in (layer.norm1, layer.norm2):
            norm.weight.copy_(torch.rand(d_model, generator=gen) + 0.5)
            norm.bias.copy_(torch.rand(d_model, generator=gen) - 0.5)

    def attention(h: Tensor) -> Tensor:
        return layer.self_attn(h, h, h, need_weights=False)[0]

    def feed_forward(h: Tensor) -> Tensor:
        return layer.linear2(torch.relu(layer.linear1(h)))

    return layer, attention, feed_forward


def load_norm(norm: torch.nn.Module, source: torch.nn.Module) -> None:
    """Copy ``source``'s weight and bias into ``norm`` (a student's LayerNorm)."""
    with torch.no_grad():
        norm.weight.copy_(source.weight)
        norm.bias.copy_(source.bias)


#: Fail if the code in the block calls the course's reference (``llm_foundations.layers``), however it was reached.
forbid_reference = core.reference_guard(modules=(_reference,))
