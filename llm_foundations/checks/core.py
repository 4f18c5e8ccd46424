"""Checks that teach: the assertions the exercise notebooks' test cells are written with.

A failing check says what was expected, what the student's code returned, and, when the answer
matches a known mistake, what that mistake probably is. Every check raises ``AssertionError``
(the only thing nbgrader needs to take the points) and writes nothing to stderr.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import CodeType, ModuleType

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode


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
    if close(got_cpu, expected_cpu, atol, rtol):
        return got
    diff = (got_cpu - expected_cpu).abs().nan_to_num(float("inf"))
    where = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape)) if diff.dim() else ()
    message = (
        f"Wrong values in {what}: the largest difference is {float(diff.max()):.4g} at index {where}.\n"
        f"  expected {_describe(expected_cpu)}\n"
        f"  got      {_describe(got_cpu)}"
    )
    for explanation, mistake in (hints or {}).items():
        if mistake.shape == expected.shape and close(got_cpu, mistake.detach().to("cpu", torch.float64), atol, rtol):
            raise AssertionError(f"{message}\nHint: this is what happens when {explanation}.")
    if callable(hint):
        hint = hint()
    raise AssertionError(f"{message}\nHint: {hint}" if hint else message)


def close(a: Tensor, b: Tensor, atol: float, rtol: float) -> bool:
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
    return _codes(functions).__contains__


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
    """A :func:`call` that also knows a chapter's own hints: ``{text in the error: hint}``, looked
    up before the general ones (a chapter says better what its own errors mean)."""
    known = {**hints, **{key: hint for key, hint in _ERROR_HINTS.items() if key not in hints}}

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


def _codes(functions: Iterable[Callable]) -> set[CodeType]:
    codes = set()
    for function in functions:
        while hasattr(function, "__wrapped__"):
            function = function.__wrapped__
        codes.add(function.__code__)
    return codes


def reference_guard(
    tasks: Mapping[str, Sequence[Callable]] | None = None, *, helpers: Sequence[Callable] = (),
    modules: Sequence[ModuleType] = (), matches: Callable[[CodeType], bool] | None = None,
    pytorch: Sequence[Callable] | Callable[[], Sequence[Callable]] = (), calls_pytorch: str = "",
    builtins: Sequence[str] = (),
) -> Callable[..., contextlib.AbstractContextManager[None]]:
    """A chapter's ``forbid_reference(what, task=None)``, built from the chapter's tables.

    The context manager it returns fails the test (see :func:`forbid_calls`) if the code run
    inside it makes a Python call of:

    - the reference answer to ``task``: the functions ``tasks[task]`` (a chapter without
      ``tasks`` forbids its references whatever the task, and its guard takes no task);
    - one of ``helpers``: the chapter's checking helpers, which compute expected answers;
    - any function defined in one of ``modules``, or whose code ``matches`` (a chapter whose
      whole reference module is off limits);
    - one of ``pytorch`` (PyTorch's own modules that the exercise rebuilds; a function giving
      them, when they can only be looked up late), reported with ``calls_pytorch``;

    and, when ``builtins`` is given, a PyTorch operator whose name contains one of them
    (:func:`forbid_builtins`: the fused kernels no Python call leads to).
    """
    files = set()
    for module in modules:
        files |= {module.__file__, str(Path(module.__file__).resolve())}
    helper_codes = _codes(helpers)

    @contextlib.contextmanager
    def forbid_reference(what: str, task: str | None = None) -> Iterator[None]:
        if (task is None) != (tasks is None):
            raise TypeError("forbid_reference(what, task): this chapter's guard " +
                            ("needs the task's name" if tasks is not None else "takes no task"))
        codes = helper_codes | (_codes(tasks[task]) if tasks is not None else set())

        def reference(code: CodeType) -> bool:
            return code in codes or code.co_filename in files or (matches is not None and matches(code))

        rules = [(reference, CALLS_REFERENCE)]
        theirs = pytorch() if callable(pytorch) else pytorch
        if theirs:
            rules.append((_codes(theirs).__contains__, calls_pytorch))
        fused = forbid_builtins(what, tuple(builtins)) if builtins else contextlib.nullcontext()
        with forbid_calls(what, rules), fused:
            yield

    return forbid_reference


# --------------------------------------------------------------------------------------------
# what the stacks of chapters 8-10 share


def sublayer_norms(layer: nn.Module, d_model: int, skip: tuple[str, ...]) -> list[nn.Module]:
    """The LayerNorm-like submodules of an encoder or decoder ``layer``, in the order they were registered:
    every submodule outside the children named in ``skip`` (the attentions, the feed-forward network)
    with a ``weight`` and a ``bias`` of shape ``(d_model,)``. A module registered twice is listed once."""
    found = []
    for name, module in layer.named_modules():
        if name.split(".")[0] in skip:
            continue
        weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
        if (isinstance(weight, Tensor) and isinstance(bias, Tensor)
                and tuple(weight.shape) == (d_model,) and tuple(bias.shape) == (d_model,)):
            found.append(module)
    return found


def randomize_norms(module: nn.Module, d_model: int, generator: torch.Generator) -> None:
    """Give every LayerNorm-like submodule (weight and bias of shape ``(d_model,)``) random values,
    so that tests notice which norm is applied where (the defaults, ones and zeros, hide it)."""
    with torch.no_grad():
        for sub in module.modules():
            weight, bias = getattr(sub, "weight", None), getattr(sub, "bias", None)
            if isinstance(weight, nn.Parameter) and isinstance(bias, nn.Parameter) and weight.shape == (d_model,) \
                    and bias.shape == (d_model,) and not isinstance(sub, nn.Linear):
                weight.copy_(0.5 + torch.rand(d_model, generator=generator).to(weight))
                bias.copy_(0.3 * torch.randn(d_model, generator=generator).to(bias))


def embedding_weight(stack: nn.Module, vocab_size: int, d_model: int, what: str = "encoder") -> Tensor:
    """The one ``(vocab_size, d_model)`` parameter of an encoder or decoder ``stack``: its token embedding."""
    found = [p for p in stack.parameters() if tuple(p.shape) == (vocab_size, d_model)]
    if len(found) != 1:
        raise AssertionError(
            f"expected one embedding matrix of shape (vocab_size, d_model) = {(vocab_size, d_model)} among the "
            f"{what}'s parameters, found {len(found)}. Hint: use TokenEmbedding(vocab_size, d_model)."
        )
    return found[0]


_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def expect_param_count(module: nn.Module, expected: int, what: str, detail: str = "", trainable_only: bool = False) -> None:
    """Fail unless ``module`` has ``expected`` parameters (only those with ``requires_grad`` when
    ``trainable_only``); ``detail`` says what they are made of."""
    count = sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
    if count != expected:
        kind = "trainable parameters" if trainable_only else "parameters"
        tail = (detail if detail[:1] in ":;," else f" {detail}") if detail else "."
        raise AssertionError(f"{what} has {count} {kind}, expected {expected}{tail}")


def expect_layer_structure(layer: nn.Module, what: str, *, attention_type: type, attentions: Sequence[str],
                           d_model: int, d_ff: int, norms: Sequence[nn.Module], expected_params: int,
                           params_detail: str = "") -> None:
    """The structure of an encoder or decoder layer (chapters 8 and 9): its attentions, its
    feed-forward network, one LayerNorm per residual sublayer, and its parameter count.

    Args:
        layer: the student's layer, built with ``d_model`` and ``d_ff``.
        what: the call that built it, for the messages.
        attention_type: the class every attention must be (the course's ``MultiHeadAttention``).
        attentions: the attribute names of the attentions (``("self_attn",)``, or with ``"cross_attn"``),
            each a module of its own.
        norms: the layer's LayerNorms as the chapter finds them; one per sublayer (attentions and
            feed-forward network) is expected.
        expected_params: the layer's parameter count; ``params_detail`` says what it is made of.
    """
    for name in attentions:
        if not isinstance(getattr(layer, name, None), attention_type):
            raise AssertionError(f"layer.{name} must be {attention_type.__name__}(d_model, n_heads), got "
                                 f"{getattr(layer, name, None)!r:.100}")
    if len({id(getattr(layer, name)) for name in attentions}) != len(attentions):
        shown = " and ".join(f"layer.{name}" for name in attentions)
        raise AssertionError(f"{shown} are the same module: the attentions need their own weights")
    ffn = getattr(layer, "ffn", None)
    if not (hasattr(ffn, "linear1") and tuple(ffn.linear1.weight.shape) == (d_ff, d_model)
            and tuple(ffn.linear2.weight.shape) == (d_model, d_ff)):
        raise AssertionError(f"layer.ffn must be FeedForward(d_model={d_model}, d_ff={d_ff}), got {ffn!r:.200}")
    n = len(attentions) + 1
    if len(norms) != n:
        word = _COUNT_WORDS.get(n, str(n))
        raise AssertionError(f"the layer needs {word} separate LayerNorms of width {d_model} (one per ResidualSublayer), "
                             f"found {len(norms)}. Hint: [block] * {n} repeats ONE module; build {word} "
                             "ResidualSublayer objects.")
    expect_param_count(layer, expected_params, what, params_detail)


def expect_layer_options(layer: nn.Module, inputs: Sequence[Tensor], what: str, *, n_heads: int,
                         attentions: Sequence[str], pytorch_modules: tuple[type, ...], expected_params: int) -> None:
    """A layer built with other sizes, ``dropout > 0`` and ``norm_first=False`` (chapters 8 and 9):
    every attention has ``n_heads`` heads, no PyTorch module of ``pytorch_modules`` is inside, the
    parameter count is ``expected_params``, and dropout acts in training mode only (``layer(*inputs)``
    twice in each mode; ``layer`` is left in eval mode)."""
    for name in attentions:
        if getattr(getattr(layer, name), "n_heads", None) != n_heads:
            raise AssertionError(f"layer.{name} must have n_heads heads")
    if any(isinstance(m, pytorch_modules) for m in layer.modules()):
        names = " or ".join(f"nn.{t.__name__}" for t in pytorch_modules)
        raise AssertionError(f"{type(layer).__name__} must not wrap PyTorch's {names}")
    expect_param_count(layer, expected_params, what)
    layer.train()
    if torch.allclose(layer(*inputs), layer(*inputs)):
        raise AssertionError("with dropout=0.3 in training mode, two calls must differ: pass dropout on to the sublayers")
    layer.eval()
    expect_close(layer(*inputs), layer(*inputs), "two calls in eval mode (dropout off)")


def expect_stack_structure(stack: nn.Module, what: str, *, layer_type: type, n_layers: int, vocab_size: int,
                           d_model: int, norm_first: bool, expected_params: int, layer_params: int,
                           needs: Mapping[str, str] | None = None, post_ln_norm_may_be_empty: bool = False) -> None:
    """The structure of an encoder or decoder stack (chapters 8 and 9): ``n_layers`` distinct
    layers of ``layer_type`` in an ``nn.ModuleList``, the attributes in ``needs`` (``{name: why}``,
    each callable), a final LayerNorm exactly when pre-LN, and the trainable parameter count.

    A post-LN stack's ``.norm`` must be None; with ``post_ln_norm_may_be_empty`` a module without
    parameters (such as ``nn.Identity()``) is accepted too.
    """
    kind = layer_type.__name__
    layers = getattr(stack, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) != n_layers or not all(isinstance(l, layer_type) for l in layers):
        raise AssertionError(f"{what}.layers must be an nn.ModuleList of {n_layers} {kind}, got {layers!r:.200}")
    if len({id(l) for l in layers}) != n_layers:
        raise AssertionError(f"{what}.layers holds the same layer several times: [layer] * n_layers repeats ONE "
                             f"module, so every layer shares its weights. Build a new {kind} for each.")
    for name, why in (needs or {}).items():
        if not callable(getattr(stack, name, None)):
            raise AssertionError(f"{what} needs an attribute `{name}`: {why}")
    norm = getattr(stack, "norm", None)
    if norm_first and not (norm is not None and tuple(getattr(norm, "weight", torch.empty(0)).shape) == (d_model,)):
        raise AssertionError(f"{what}.norm must be LayerNorm({d_model}): a pre-LN stack ends with a final LayerNorm")
    if not norm_first and norm is not None and not (post_ln_norm_may_be_empty and not any(True for _ in norm.parameters())):
        raise AssertionError(f"{what}.norm must be None: a post-LN stack has no final LayerNorm")
    expect_param_count(stack, expected_params, what, trainable_only=True, detail=(
        f": the embedding {vocab_size}*{d_model}, {n_layers} layers of {layer_params}"
        + (f", a final LayerNorm 2*{d_model}" if norm_first else " and no final LayerNorm")
        + ". The positional encoding is fixed, not trained."))
