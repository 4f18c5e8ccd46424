"""Checks for exercise 1 (overview): what common mistakes return, and watchers for how an answer computes.

Used by the test cells of ``solutions/01_overview`` next to :mod:`llm_foundations.checks.core`. Every
check raises ``AssertionError`` with a teaching message and writes nothing to stderr.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

import llm_foundations.checks.core as core

#: PyTorch's own recurrent layers and kernels: an exercise that asks for an RNN loop does not
#: award points to a call of these.
BUILTIN_RNN = ("rnn_tanh", "rnn_relu", "lstm", "gru", "_VF")

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # llm_foundations/, not checks/
_NOT_REFERENCE = {"device.py", "seed.py", "plotting.py", "diagrams.py", "timing.py", "interop.py"}


record_torch_calls = core.record_torch_calls


@contextlib.contextmanager
def forbid_torch_calls(what: str, forbidden: tuple[str, ...], instead: str) -> Iterator[None]:
    """Fail if the code in the block calls a torch function whose name contains one of ``forbidden``.

    Args:
        what: the code being checked, in words.
        forbidden: parts of the names of the built-ins that may not be used.
        instead: what the exercise asks for instead, for the message.
    """
    with core.forbid_torch_functions(what, forbidden, "{what} calls PyTorch's built-in ({used}). " + instead):
        yield


def expect_no_loop_over_positions(fn: Callable, make_inputs: Callable[[int], tuple], what: str) -> None:
    """Fail if the number of torch calls ``fn`` makes grows with the sequence length.

    ``make_inputs(L)`` returns the arguments for a sequence of length ``L`` (same batch and
    widths for every ``L``). An answer that computes all positions at once makes the same
    number of calls for ``L = 3`` and ``L = 48``; a Python loop over positions makes more.
    """
    counts = {}
    for length in (3, 48):
        args = make_inputs(length)
        with record_torch_calls() as names:
            fn(*args)
        counts[length] = len(names)
    if counts[48] > counts[3]:
        raise AssertionError(
            f"{what} makes {counts[3]} torch calls for a sequence of 3 positions but {counts[48]} for 48 "
            "positions: it seems to loop over the positions. Self-attention relates all positions in one "
            "parallel step: compute the (L, L) score matrix with one matrix product (q @ k.transpose(-2, -1)), "
            "one softmax over its last axis, and one product with the values."
        )


def pytorch_rnn_twin(w_xh: Tensor, w_hh: Tensor, b_h: Tensor) -> nn.RNN:
    """An ``nn.RNN`` (tanh, batch_first) computing ``h_t = tanh(x_t @ w_xh + h_{t-1} @ w_hh + b_h)``.

    PyTorch stores the weights the other way round (``weight_ih_l0 = w_xh.T``) and has a second
    bias, set to zero here.
    """
    d_in, d_h = w_xh.shape
    rnn = nn.RNN(d_in, d_h, nonlinearity="tanh", batch_first=True, device=w_xh.device, dtype=w_xh.dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(w_xh.T)
        rnn.weight_hh_l0.copy_(w_hh.T)
        rnn.bias_ih_l0.copy_(b_h)
        rnn.bias_hh_l0.zero_()
    return rnn


def rnn_forward_mistakes(
    x: Tensor, w_xh: Tensor, w_hh: Tensor, b_h: Tensor, h0: Tensor | None = None
) -> dict[str, tuple[Tensor, Tensor]]:
    """What common mistakes in an Elman RNN return: ``{explanation: (outputs, h_last)}``."""
    start = x.new_zeros(x.size(0), w_hh.size(0)) if h0 is None else h0

    def run(act=torch.tanh, bias=True, init=start, feed_back=True, shift=False, last_first=False):
        h, hs, before = init, [], []
        for t in range(x.size(1)):
            before.append(h)
            prev = h if feed_back else init
            h = act(x[:, t] @ w_xh + prev @ w_hh + (b_h if bias else 0))
            hs.append(h)
        outputs = torch.stack(before if shift else hs, dim=1)
        return outputs, hs[0] if last_first else h

    mistakes = {
        "the bias b_h is left out": run(bias=False),
        "ReLU is used instead of tanh": run(act=torch.relu),
        "sigmoid is used instead of tanh": run(act=torch.sigmoid),
        "outputs[:, t] holds the state before step t (h_{t-1}) instead of after it (h_t)": run(shift=True),
        "h_last is the state after the first step instead of the last": run(last_first=True),
        "every step starts from h0 instead of the previous step's state (the state is never carried on)":
            run(feed_back=False),
    }
    if h0 is not None:
        mistakes["h0 is ignored: the recurrence starts from zeros even when h0 is given"] = run(init=torch.zeros_like(h0))
    return mistakes


def self_attention_mistakes(x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor) -> dict[str, Tensor]:
    """What common mistakes in single-head self-attention return: ``{explanation: output}``."""
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    raw = q @ k.transpose(-2, -1)
    d_k = q.size(-1)
    mistakes = {
        "the scores are not divided by sqrt(d_k)": torch.softmax(raw, -1) @ v,
        "the scores are divided by d_k instead of sqrt(d_k)": torch.softmax(raw / d_k, -1) @ v,
        "the softmax runs over the queries (dim=-2) instead of over the keys (dim=-1)":
            torch.softmax(raw / math.sqrt(d_k), -2) @ v,
        "the values are made with w_k instead of w_v": torch.softmax(raw / math.sqrt(d_k), -1) @ (x @ w_k),
    }
    if x.size(-1) != d_k:
        mistakes["the scores are divided by sqrt(d) (the input width) instead of sqrt(d_k)"] = (
            torch.softmax(raw / math.sqrt(x.size(-1)), -1) @ v
        )
    return mistakes


def _count(vocab_size, d, n_heads, d_ff, n_layers, *, linear_bias=True, ffn_bias=True, norm=2, enc_attn=1,
           dec_attn=2, final_norms=2, embeddings=1, per_head=False):
    b = 1 if linear_bias else 0
    attention = 4 * (d * d + b * d) if not per_head else 3 * n_heads * (d * d + b * d) + (d * d + b * d)
    feed_forward = 2 * d * d_ff + (d_ff + d if ffn_bias and linear_bias else 0)
    encoder_layer = enc_attn * attention + feed_forward + (enc_attn + 1) * norm * d
    decoder_layer = dec_attn * attention + feed_forward + (dec_attn + 1) * norm * d
    return embeddings * vocab_size * d + n_layers * (encoder_layer + decoder_layer) + final_norms * norm * d


def parameter_count_mistakes(vocab_size: int, d_model: int, n_heads: int, d_ff: int, n_layers: int) -> dict[str, int]:
    """What common mistakes in the closed-form parameter count give: ``{explanation: count}``."""
    sizes = (vocab_size, d_model, n_heads, d_ff, n_layers)
    return {
        "the biases of the linear layers are not counted (each Linear(a, b) has a*b + b parameters)":
            _count(*sizes, linear_bias=False),
        "the feed-forward biases are not counted (Linear(d, d_ff) has d_ff biases, Linear(d_ff, d) has d)":
            _count(*sizes, ffn_bias=False),
        "two V x d matrices are counted (a separate generator, or separate source and target embeddings), "
        "but share_embeddings=True ties the source embedding, the target embedding and the generator into one":
            _count(*sizes, embeddings=2),
        "the embedding is counted three times (source, target, generator), but all three are one tied matrix":
            _count(*sizes, embeddings=3),
        "the LayerNorms are not counted (each has a gain and a bias: 2 * d_model)": _count(*sizes, norm=0),
        "a LayerNorm is counted as d_model parameters, but it has a gain AND a bias (2 * d_model)":
            _count(*sizes, norm=1),
        "the two final LayerNorms of the pre-LN model (one after each stack) are missing":
            _count(*sizes, final_norms=0),
        "the encoder layers are given a cross-attention too, but only decoder layers have one":
            _count(*sizes, enc_attn=2),
        "the decoder layers are given one attention, but they have two (masked self-attention and cross-attention)":
            _count(*sizes, dec_attn=1),
        "each head gets its own d_model x d_model query, key and value projection, but the H heads share "
        "one d_model x d_model matrix each (every head uses a d_model x d_head slice)": _count(*sizes, per_head=True),
    }


def expect_count(
    got: object, expected: int, what: str, hints: Mapping[str, int] | None = None, hint: str = ""
) -> int:
    """Fail unless ``got`` is an integer equal to ``expected``; name the known mistake it matches."""
    if isinstance(got, bool) or not isinstance(got, numbers.Integral):
        raise AssertionError(
            f"{what}: expected an int, got {type(got).__name__}: {got!r:.100}. Hint: count with integer "
            "arithmetic (+, *, no division) and return a Python int."
        )
    got = int(got)
    if got == expected:
        return got
    message = f"{what} is wrong: expected {expected:,}, got {got:,} (a difference of {got - expected:+,})."
    for explanation, mistake in (hints or {}).items():
        if got == mistake:
            raise AssertionError(f"{message}\nHint: this is what you get when {explanation}.")
    raise AssertionError(f"{message}\nHint: {hint}" if hint else message)


def pytorch_transformer_parameter_count(vocab_size: int, d_model: int, n_heads: int, d_ff: int, n_layers: int) -> int:
    """The parameter count of the course's shared-embedding Transformer, counted on PyTorch's own modules.

    What is compared: every parameter of ``nn.Transformer(d_model, n_heads, n_layers, n_layers,
    d_ff)`` (per encoder layer a self-attention, two linear layers and two LayerNorms; per decoder
    layer a self-attention, a cross-attention, two linear layers and three LayerNorms; one final
    LayerNorm after each stack, as in the pre-LN model) plus one ``nn.Embedding(vocab_size,
    d_model)`` matrix, shared by source, target and the tied generator. The stacks are built on
    the ``meta`` device, which has shapes but no memory, so even a huge model costs nothing.
    """
    with warnings.catch_warnings():  # nn.Transformer warns about its fast path for some sizes; irrelevant here
        warnings.simplefilter("ignore")
        model = nn.Transformer(d_model, n_heads, n_layers, n_layers, d_ff, batch_first=True, device="meta")
    embedding = vocab_size * d_model  # one nn.Embedding(vocab_size, d_model).weight
    return sum(p.numel() for p in model.parameters()) + embedding


_ERROR_HINTS = {
    "NotImplementedError": "you have not written this part yet: replace `raise NotImplementedError()` with your code.",
    "cannot be multiplied": "a matrix product got incompatible shapes. In the RNN, x_t is (B, d_in) and multiplies "
    "w_xh (d_in, d_h), the state is (B, d_h) and multiplies w_hh (d_h, d_h); in attention, x (B, L, d) multiplies "
    "w_q, w_k, w_v (d, ...). Check which tensor multiplies which, and do not transpose the weights.",
    "same dtype": "two tensors of different dtypes meet in a product: create new tensors (such as the zero initial "
    "state) with the input's dtype and device, e.g. x.new_zeros(B, d_h).",
    "expected scalar type": "two tensors of different dtypes meet in a product: create new tensors (such as the zero "
    "initial state) with the input's dtype and device, e.g. x.new_zeros(B, d_h).",
    "must match the size of tensor": "two tensors do not broadcast: print their shapes.",
    "stack expects a non-empty": "torch.stack got an empty list: does your loop run over the positions (x.shape[1])?",
}


#: :func:`llm_foundations.checks.core.call`, with hints for this exercise's shape and dtype errors.
call = core.hinted_call(_ERROR_HINTS)


def _in_reference_package(code) -> bool:
    path = Path(code.co_filename)
    return path.parent == _PACKAGE_DIR and path.name not in _NOT_REFERENCE


#: Fail if the code in the block runs any function of the course's reference package, whatever
#: name it was imported under (a notebook function may still delegate to the reference).
forbid_reference = core.reference_guard(matches=_in_reference_package)
