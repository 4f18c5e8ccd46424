"""Checks that teach: the assertions the exercise notebooks' test cells are written with.

A failing check says what was expected, what the student's code returned, and, when the answer
matches a known mistake, what that mistake probably is. Every check raises ``AssertionError``
(the only thing nbgrader needs to take the points) and writes nothing to stderr.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import CodeType

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

import llm_foundations.attention as _attention

#: Names of PyTorch's fused attention entry points (Python functions and ATen operators). An
#: exercise that asks students to build attention does not award points to a call of these.
BUILTIN_ATTENTION = (
    "scaled_dot_product",
    "multi_head_attention",
    "_native_multi_head_attention",
    "_masked_softmax",
)


def _describe(t: Tensor, limit: int = 6) -> str:
    flat = t.detach().flatten().float().cpu()
    shown = ", ".join(f"{v:.4g}" for v in flat[:limit].tolist())
    more = ", ..." if flat.numel() > limit else ""
    return f"tensor of shape {tuple(t.shape)}: [{shown}{more}]"


def expect_tensor(got: object, what: str) -> Tensor:
    """Fail with a clear message unless ``got`` is a tensor."""
    if not isinstance(got, Tensor):
        raise AssertionError(f"{what}: expected a torch.Tensor, got {type(got).__name__}: {got!r:.200}")
    return got


def expect_shape(got: object, shape: tuple[int, ...], what: str, hint: str = "") -> Tensor:
    """Fail unless ``got`` is a tensor of exactly ``shape``."""
    got = expect_tensor(got, what)
    if tuple(got.shape) != tuple(shape):
        message = f"{what}: expected shape {tuple(shape)}, got {tuple(got.shape)}."
        raise AssertionError(f"{message} Hint: {hint}" if hint else message)
    return got


def expect_close(
    got: object,
    expected: Tensor,
    what: str,
    hints: Mapping[str, Tensor] | None = None,
    hint: str | Callable[[], str] = "",
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Tensor:
    """Fail unless ``got`` has ``expected``'s shape and values (NaN never matches).

    Args:
        got: the student's result.
        expected: the right answer.
        what: what is being checked, in words ("the attention weights").
        hints: known mistakes: ``{explanation: what that mistake returns}``; when ``got`` matches
            one, its explanation is the hint.
        hint: a hint to give when no known mistake matches, or a function that finds one (only
            called when the values are wrong).
        atol, rtol: tolerances, as in :func:`torch.allclose`.
    """
    got = expect_shape(got, tuple(expected.shape), what, hint=_shape_hint(got, expected))
    got_cpu = got.detach().to("cpu", torch.float64)
    expected_cpu = expected.detach().to("cpu", torch.float64)
    if torch.isnan(got_cpu).any() and not torch.isnan(expected_cpu).any():
        raise AssertionError(
            f"{what}: your result contains NaN at {int(torch.isnan(got_cpu).sum())} entries, "
            f"expected {_describe(expected_cpu)}. Hint: softmax over a row that is entirely -inf "
            "gives NaN; rows whose keys are all masked must come out as zeros."
        )
    if _close(got_cpu, expected_cpu, atol, rtol):
        return got
    diff = (got_cpu - expected_cpu).abs().nan_to_num(float("inf"))
    where = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape)) if diff.dim() else ()
    message = (
        f"Wrong values in {what}: the largest difference is {float(diff.max()):.4g} at index {where}.\n"
        f"  expected {_describe(expected_cpu)}\n"
        f"  got      {_describe(got_cpu)}"
    )
    for explanation, mistake in (hints or {}).items():
        if mistake.shape == expected.shape and _close(got_cpu, mistake.detach().to("cpu", torch.float64), atol, rtol):
            raise AssertionError(f"{message}\nHint: this is what happens when {explanation}.")
    if callable(hint):
        hint = hint()
    raise AssertionError(f"{message}\nHint: {hint}" if hint else message)


def _close(a: Tensor, b: Tensor, atol: float, rtol: float) -> bool:
    # written out instead of torch.allclose so that code which patches torch.allclose does not
    # change what the checks decide
    if a.shape != b.shape:
        return False
    both_nan = torch.isnan(a) & torch.isnan(b)
    ok = (a - b).abs() <= atol + rtol * b.abs()
    return bool((ok | both_nan).all())


def _shape_hint(got: object, expected: Tensor) -> str:
    if not isinstance(got, Tensor):
        return ""
    if got.dim() == expected.dim() and sorted(got.shape) == sorted(expected.shape):
        return "the right sizes in the wrong order: check which axes you transposed or permuted."
    if got.numel() == expected.numel():
        return "the right number of elements in a different layout: check your reshape/view calls."
    return ""


def expect_rows_sum_to_one(weights: Tensor, what: str, atol: float = 1e-5) -> None:
    """Fail unless every row (last dimension) of ``weights`` sums to 1."""
    sums = weights.detach().to(torch.float64).sum(-1)
    bad = (sums - 1).abs() > atol
    if bad.any():
        raise AssertionError(
            f"{what}: every row must sum to 1 over the keys (last dimension), but "
            f"{int(bad.sum())} of {sums.numel()} rows do not (e.g. {float(sums[bad][0]):.4g}). "
            "Hint: apply softmax over dim=-1 (the keys), not over the queries."
        )


def expect_raises(error: type[BaseException], call: Callable[[], object], what: str, hint: str = "") -> None:
    """Fail unless ``call()`` raises ``error``."""
    try:
        call()
    except error:
        return
    except Exception as other:  # noqa: BLE001 - reported to the student
        raise AssertionError(
            f"{what}: expected {error.__name__}, got {type(other).__name__}: {other}"
            + (f". Hint: {hint}" if hint else "")
        ) from None
    raise AssertionError(f"{what}: expected {error.__name__}, but nothing was raised" + (f". Hint: {hint}" if hint else ""))


def _fill(message: str, **values: str) -> str:
    # not str.format: a message may quote code with braces in it
    for key, value in values.items():
        message = message.replace("{" + key + "}", value)
    return message


class _RecordTorchCalls(TorchFunctionMode):
    def __init__(self, names: list[str]):
        super().__init__()
        self.names = names

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def record_torch_calls() -> Iterator[list[str]]:
    """Record the name of every torch function and tensor method called inside the block.

    A :class:`~torch.overrides.TorchFunctionMode` sees every call of a torch function, whatever
    the module it was reached through (``F.``, ``torch._C._nn.``, ``torch.ops.aten.``, or inside
    ``nn.MultiheadAttention``). (A dispatch mode would also see ATen calls made from C++, but its
    first use costs about two seconds, paid once per graded notebook.)
    """
    names: list[str] = []
    with _RecordTorchCalls(names):
        yield names


@contextlib.contextmanager
def forbid_torch_functions(what: str, forbidden: Sequence[str], message: str) -> Iterator[None]:
    """Fail if the code run inside the block calls a torch function whose name contains one of ``forbidden``.

    Args:
        what: the student's function, for the message.
        forbidden: name fragments, e.g. ``("cosine_similarity",)``.
        message: the failure, with ``{what}`` and ``{used}`` (the built-ins called) filled in.
    """
    with record_torch_calls() as names:
        yield
    used = sorted({n for n in names if any(f in n for f in forbidden)})
    if used:
        raise AssertionError(_fill(message, what=what, used=", ".join(used)))


@contextlib.contextmanager
def forbid_builtins(what: str, forbidden: tuple[str, ...] = BUILTIN_ATTENTION) -> Iterator[None]:
    """Fail if the code run inside the block calls one of PyTorch's built-in attentions named in ``forbidden``."""
    with forbid_torch_functions(what, forbidden, "{what} calls PyTorch's built-in attention ({used}). This exercise "
                                "asks you to build it yourself from matrix products and a softmax; the built-in is "
                                "what the tests compare you with."):
        yield


#: What a test says when the student's code ran the course's reference: ``{what}`` and ``{name}`` are filled in.
CALLS_REFERENCE = (
    "{what} calls the course's reference code ({name}). Write your own version in the notebook: "
    "the reference is what the tests compare you with."
)


def codes_of(functions: Iterable[Callable]) -> Callable[[CodeType], bool]:
    """A rule's matcher for :func:`forbid_calls`: the code of any of ``functions`` (decorators unwrapped)."""
    codes = set()
    for function in functions:
        while hasattr(function, "__wrapped__"):
            function = function.__wrapped__
        codes.add(function.__code__)
    return codes.__contains__


@contextlib.contextmanager
def forbid_calls(what: str, rules: Sequence[tuple[Callable[[CodeType], bool], str]]) -> Iterator[None]:
    """Fail if the code run inside the block makes a Python call that one of ``rules`` forbids.

    Each rule is ``(matches, message)``: ``matches(code)`` says whether a call of that code object
    is forbidden, and ``message`` is the failure, with ``{what}`` and ``{name}`` (the called
    function's module and qualified name) filled in. The first forbidden call is reported.

    A profile hook sees every Python call, however the function was reached (an import under
    another name, a subclass that inherits ``forward``, a wrapper), so an answer that forwards to
    the reference does not earn the points. If the block fails after a forbidden call, the
    forbidden call is what the student is told about: it is the cause. A profile hook set
    before the block keeps seeing every call.
    """
    called: list[tuple[str, str]] = []
    previous = sys.getprofile()

    def profiler(frame, event, arg):
        if event == "call" and not called:
            code = frame.f_code
            for matches, message in rules:
                if matches(code):
                    called.append((message, f"{frame.f_globals.get('__name__', '?')}.{code.co_qualname}"))
                    break
        if callable(previous):
            previous(frame, event, arg)

    sys.setprofile(profiler)
    try:
        yield
    except Exception:
        if not called:
            raise
    finally:
        sys.setprofile(previous)
    if called:
        message, name = called[0]
        raise AssertionError(_fill(message, what=what, name=name))


def scaled_dot_product_attention_mistakes(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> dict[str, tuple[Tensor, Tensor]]:
    """What common mistakes in scaled dot-product attention return: ``{explanation: (output, weights)}``.

    Used to turn "wrong values" into a specific hint.
    """
    d_k = q.size(-1)
    raw = q @ k.transpose(-2, -1)

    def run(scores: Tensor, dim: int = -1, keep: Tensor | None = mask, fill: float = float("-inf")):
        if keep is not None:
            scores = scores.masked_fill(~keep, fill)
        weights = torch.softmax(scores, dim=dim)
        return weights @ v, weights

    mistakes = {
        "the scores are not divided by sqrt(d_k)": run(raw),
        "the scores are divided by d_k instead of sqrt(d_k)": run(raw / d_k),
        "softmax runs over the queries (dim=-2) instead of over the keys (dim=-1)": run(raw / math.sqrt(d_k), dim=-2),
    }
    if mask is not None:
        mistakes["the mask is inverted: True must mean 'may attend', so fill where the mask is False"] = run(
            raw / math.sqrt(d_k), keep=~mask
        )
        mistakes[
            "masked scores are filled with a large finite number: rows whose keys are all masked must "
            "give zero weights, not a uniform distribution"
        ] = run(raw / math.sqrt(d_k), fill=-1e9)
    return mistakes


def multihead_hint(hint: str, attention: Callable, split_heads: Callable, merge_heads: Callable) -> Callable[[], str]:
    """A hint for a wrong ``MultiHeadAttention``, for :func:`expect_close`: ``hint``, unless one of
    the student's own building blocks is wrong, which is then the likelier cause and is named.

    Args:
        hint: what to say when the building blocks are right.
        attention: the student's ``scaled_dot_product_attention(q, k, v, mask=None) -> (output, weights)``.
        split_heads: the student's ``split_heads(x, n_heads)``, ``(B, L, d_model) -> (B, H, L, d_head)``.
        merge_heads: the student's ``merge_heads(x)``, its inverse.
    """

    def find() -> str:
        gen = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(2, 2, 4, 3, generator=gen, dtype=torch.float64) for _ in range(3))
        x = torch.randn(2, 4, 6, generator=gen, dtype=torch.float64)
        heads = _attention.split_heads(x, 2)  # (B, H, L, d_head)
        causal = torch.tril(torch.ones(4, 4, dtype=torch.bool))
        checks = {
            "scaled_dot_product_attention": lambda: all(
                _close(attention(q, k, v, mask)[0].double(), _attention.scaled_dot_product_attention(q, k, v, mask)[0],
                       1e-6, 1e-5) for mask in (None, causal)),
            "split_heads": lambda: _close(split_heads(x, 2).double(), heads, 1e-9, 0.0),
            "merge_heads": lambda: _close(merge_heads(heads).double(), x, 1e-9, 0.0),
        }
        for name, check in checks.items():
            try:
                right = check()
            except Exception:  # noqa: BLE001 - a failing block is what we are looking for
                right = False
            if not right:
                return (f"your {name} does not pass its own tests yet. If MultiHeadAttention uses it, fix "
                        f"{name} first (its test cells above say what is wrong), then run this cell again.")
        return hint

    return find


def expect_own_implementation(obj: object, what: str) -> None:
    """Fail if ``obj`` is (or is defined in) the course's reference package instead of the notebook."""
    module = getattr(obj, "__module__", "") or ""
    if module.startswith("llm_foundations"):
        raise AssertionError(
            f"{what} comes from the reference package ({module}). Write your own version in the "
            "notebook: the reference is what the tests compare you with."
        )


_ERROR_HINTS = {
    "NotImplementedError": "you have not written this part yet: replace `raise NotImplementedError()` with your code.",
    "view size is not compatible": "`.view` needs a contiguous tensor; after a transpose use `.reshape(...)` or "
    "call `.contiguous()` first.",
    "cannot be multiplied": "a matrix product got incompatible shapes: the keys must be transposed "
    "(`k.transpose(-2, -1)`, not `k.T`, which reverses every axis).",
    "must match the size of tensor": "two tensors do not broadcast: print their shapes.",
}


def hinted_call(hints: Mapping[str, str]) -> Callable:
    """A :func:`call` that also knows a chapter's own hints: ``{text in the error: hint}``."""
    known = {**_ERROR_HINTS, **hints}

    def call(fn: Callable, *args, what: str, **kwargs):
        """Call the student's ``fn``; if it raises, fail with the error and, when it is a known one, a hint."""
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - turned into a teaching failure
            text = f"{type(error).__name__}: {error}"
            hint = next((h for key, h in known.items() if key in text), "")
            raise AssertionError(f"{what} raised {text}" + (f"\nHint: {hint}" if hint else "")) from error

    return call


call = hinted_call({})


def pytorch_multihead_twin(mha: torch.nn.Module, n_heads: int | None = None) -> torch.nn.MultiheadAttention:
    """An ``nn.MultiheadAttention`` (batch_first, eval mode) holding the same weights as ``mha``.

    ``mha`` is any module with ``w_q``, ``w_k``, ``w_v``, ``w_o`` linear layers of width
    ``d_model``; ``n_heads`` is the head count it was built with. Tests pass it explicitly (a
    student's module may keep it under any name); without it the course's ``mha.n_heads`` is read.
    Remember that the twin's boolean masks mean True = blocked: pass it ``~mask``.
    """
    if n_heads is None:
        n_heads = getattr(mha, "n_heads", None)
        if n_heads is None:
            raise TypeError("pytorch_multihead_twin(mha, n_heads): pass the number of heads the module was built with")
    d_model = mha.w_q.weight.shape[1]
    bias = mha.w_q.bias is not None
    twin = torch.nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True)
    with torch.no_grad():
        twin.in_proj_weight.copy_(torch.cat([mha.w_q.weight, mha.w_k.weight, mha.w_v.weight]))
        twin.out_proj.weight.copy_(mha.w_o.weight)
        if bias:
            twin.in_proj_bias.copy_(torch.cat([mha.w_q.bias, mha.w_k.bias, mha.w_v.bias]))
            twin.out_proj.bias.copy_(mha.w_o.bias)
    return twin.eval()
