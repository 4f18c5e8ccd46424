"""Keeps student code from changing what the checks decide. Runs inside the grading kernel.

The grader (:mod:`autograder.instrument`) injects ``install`` before the first cell of student
code and ``check`` before every graded test cell. ``install`` records the functions that checks
rely on (comparisons, assertions, exception handling, and every function and class method of the
course package: the check modules and the reference implementations they compare with) and the
names the instructor's locked cells bound.
The kernel runs in the sandbox, which does not see the grader's files: the cells carry this
module's source and load it as a module of their own (:data:`INSTALL_CELL`).
``check`` puts back anything that was replaced since, so a patched ``torch.allclose`` or an
exception handler that swallows failures has no effect on the tests, and reports what it had to
put back, which flags the submission for review.

This is tamper *resistance*: it closes the doors a student can find in an afternoon
(monkeypatching, custom exception handlers, redefining the check helpers), not every door in a
process the student's code also runs in.
"""

from __future__ import annotations

import builtins
import importlib
import sys

MARKER = "AUTOGRADER-TAMPERED:"

# (module, attribute path) pairs whose identity the checks depend on
_WATCHED = {
    "builtins": ["isinstance", "abs", "all", "any", "len", "float", "int", "max", "min", "sum", "print",
                 "getattr", "setattr", "hasattr", "type", "__import__", "AssertionError", "Exception",
                 "range", "zip", "sorted", "tuple", "str", "repr", "bool"],
    "math": ["isclose", "sqrt", "isnan", "isfinite"],
    "torch": ["allclose", "equal", "isclose", "isnan", "isfinite", "all", "any", "abs", "where", "softmax",
              "manual_seed", "Generator", "randn", "rand", "zeros", "ones", "tensor", "cat", "stack", "tril",
              "broadcast_shapes", "unravel_index"],
    "torch.testing": ["assert_close"],
    "torch.nn.functional": ["scaled_dot_product_attention", "softmax", "layer_norm", "multi_head_attention_forward"],
    "numpy": ["allclose", "isclose", "array_equal"],
    "numpy.testing": ["assert_allclose", "assert_array_equal", "assert_equal"],
    "sys": ["exit"],
}
_TENSOR_METHODS = ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__sub__", "__add__", "__mul__",
                   "__truediv__", "__abs__", "__bool__", "__float__", "__getitem__", "abs", "all", "any", "item",
                   "sum", "max", "min", "float", "double", "to", "detach", "cpu", "tolist", "numel", "dim", "size",
                   "isnan", "masked_select", "expand_as", "flatten", "argmax", "eq", "ne", "le", "lt", "ge", "gt",
                   "sub", "allclose", "equal", "__len__", "__iter__", "shape"]

_state: dict = {}


def _resolve(module_name: str):
    try:
        return importlib.import_module(module_name)
    except Exception:  # noqa: BLE001 - a module the course does not use needs no watching
        return None


def _course_modules() -> list:
    """Every module of the course package the checks may use, imported now, before student code runs.

    The check modules import the reference implementations they compare with; importing them all
    here means a check that imports lazily still finds the original. (Figure modules, which pull in
    matplotlib and hold nothing a check uses, are left alone.)
    """
    import pkgutil

    package = _resolve("llm_foundations")
    if package is not None:
        for info in pkgutil.walk_packages(package.__path__, "llm_foundations."):
            short = info.name.split(".", 1)[1]
            if short.startswith(("testing", "checks")):
                _resolve(info.name)
    return [m for name, m in sorted(sys.modules.items())
            if m is not None and (name == "llm_foundations" or name.startswith("llm_foundations."))]


def _snapshot_attributes() -> dict:
    """(owner name, attribute) -> (owner, original value, read through the owner's __dict__)."""
    saved = {}
    for module_name, names in _WATCHED.items():
        module = _resolve(module_name)
        if module is None:
            continue
        for name in names:
            if hasattr(module, name):
                saved[(module_name, name)] = (module, getattr(module, name), False)
    torch = sys.modules.get("torch")
    if torch is not None:
        for name in _TENSOR_METHODS:
            if name in vars(torch.Tensor) or hasattr(torch.Tensor, name):
                saved[("torch.Tensor", name)] = (torch.Tensor, vars(torch.Tensor).get(name, getattr(torch.Tensor, name)), True)
    for module in _course_modules():
        for name, value in list(vars(module).items()):
            if name.startswith("__") or not callable(value):
                continue
            saved[(module.__name__, name)] = (module, value, False)
            if isinstance(value, type) and getattr(value, "__module__", "").startswith("llm_foundations"):
                for attribute, member in list(vars(value).items()):
                    if not attribute.startswith("__") or attribute in ("__init__", "__call__"):
                        if callable(member) or isinstance(member, (staticmethod, classmethod, property)):
                            saved[(f"{value.__module__}.{value.__qualname__}", attribute)] = (value, member, True)
    return saved


def _ipython_handlers():
    shell = getattr(builtins, "get_ipython", lambda: None)()
    if shell is None:
        return None, None
    return shell, (shell.custom_exceptions, shell.CustomTB, getattr(shell, "showtraceback", None))


def install(user_globals: dict) -> None:
    """Record the trusted state (call once, before any student code)."""
    _state["attributes"] = _snapshot_attributes()
    shell, handlers = _ipython_handlers()
    _state["ipython"] = (shell, handlers)
    _state["globals"] = user_globals
    _state["bound"] = {}
    _state["tampered"] = []


def remember_locked_names(names: list[str]) -> None:
    """Record the current values of names an instructor's locked cell bound (e.g. ``expect_close``)."""
    user_globals = _state["globals"]
    for name in names:
        if name in user_globals:
            _state["bound"][name] = user_globals[name]


def check() -> list[str]:
    """Restore everything recorded by :func:`install`; print and return what had been changed."""
    changed = []
    for (module_name, name), (owner, original, through_dict) in _state.get("attributes", {}).items():
        current = vars(owner).get(name, getattr(owner, name, None)) if through_dict else getattr(owner, name, None)
        if current is not original:
            changed.append(f"{module_name}.{name}")
            try:
                setattr(owner, name, original)
            except (AttributeError, TypeError):
                pass
    shell, handlers = _state.get("ipython", (None, None))
    if shell is not None and handlers is not None:
        custom_exceptions, custom_tb, showtraceback = handlers
        if shell.custom_exceptions != custom_exceptions or shell.CustomTB != custom_tb:
            changed.append("IPython exception handler (set_custom_exc)")
            shell.custom_exceptions, shell.CustomTB = custom_exceptions, custom_tb
        if showtraceback is not None and "showtraceback" in vars(shell):
            changed.append("IPython showtraceback")
            del shell.showtraceback
    user_globals = _state.get("globals", {})
    for name, value in _state.get("bound", {}).items():
        if user_globals.get(name) is not value:
            changed.append(f"the name {name!r} bound by the notebook's locked cells")
            user_globals[name] = value
    new = [c for c in changed if c not in _state.setdefault("tampered", [])]
    _state["tampered"].extend(new)
    if new:
        print(MARKER, "; ".join(new))
    return changed


MODULE = "_autograder_guard"  # its name inside the kernel


def _install_cell() -> str:
    from pathlib import Path

    source = Path(__file__).read_text(encoding="utf-8")
    return (f"__import__('sys').modules[{MODULE!r}] = __guard = __import__('types').ModuleType({MODULE!r})\n"
            f"exec(compile({source!r}, '<autograder guard>', 'exec'), __guard.__dict__)\n"
            f"__guard.install(globals()); del __guard;")


if __name__ != MODULE:  # the grader's copy; inside the kernel the cell below has already done this
    INSTALL_CELL = _install_cell()
CHECK_CELL = f"__import__('sys').modules[{MODULE!r}].check();"


def remember_cell(names: list[str]) -> str:
    return f"__import__('sys').modules[{MODULE!r}].remember_locked_names({names!r});"

