"""Read the student's own code (not run it) for things an honest answer never needs.

What it finds flags the submission for an instructor to review; it never changes a score by
itself. (The checks that *do* protect the score run in the kernel: :mod:`autograder.guard`
restores patched functions before each test, and the test cells reject the course's reference
implementation and PyTorch's built-ins where the exercise asks to build them.)
"""

from __future__ import annotations

import ast
import re

from autograder.assemble import Answers
from autograder.environment import GRADING
from autograder.notebook import parse_python

# The grading environment's variables, by the tool that names them (NBGRADER_..., AUTOGRADER_...)
_GRADING_NAMES = "|".join(sorted({name.split("_")[0] for name in GRADING}))

# Each pattern and the reason it is reported.
_PATTERNS = [
    (re.compile(_GRADING_NAMES, re.IGNORECASE), "looks for the grading environment"),
    (re.compile(r"\bos\.environ\b|\bgetenv\s*\("), "reads environment variables"),
    (re.compile(r"set_custom_exc|sys\.excepthook|showtraceback"), "installs an exception handler"),
    (re.compile(r"\bsys\._getframe\b|\binspect\.(stack|currentframe)\b|\bgc\.get_objects\b|settrace|setprofile"),
     "inspects the running program"),
    (re.compile(r"\bsys\.modules\b"), "touches sys.modules"),
    (re.compile(r"\bautograder\b"), "refers to the autograder"),
    (re.compile(r"\bsubprocess\b|\bos\.(system|popen|fork|forkpty|setsid|spawn\w*|exec\w*|kill|killpg)\b"
                r"|\bmultiprocessing\b"), "starts or signals other processes"),
    (re.compile(r"\bsocket\b|\burllib\b|\brequests\.|\bhttp\.client\b"), "opens network connections"),
    (re.compile(r"\blinecache\b|\bhistory_manager\b|\b_ih\b|\bIn\s*\[|getsource"),
     "reads the notebook's own source or history"),
]

_CHECKED_MODULES = ("torch", "numpy", "np", "math", "builtins", "F", "nn", "sys")


def _assigned_attributes(tree: ast.AST) -> list[str]:
    """``torch.allclose = ...``, ``setattr(torch, ...)``, ``torch.Tensor.__eq__ = ...``."""
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute):
                root = target
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in _CHECKED_MODULES:
                    found.append(ast.unparse(target))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            if node.args and isinstance(node.args[0], (ast.Name, ast.Attribute)):
                root = node.args[0]
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in _CHECKED_MODULES:
                    found.append(f"{node.func.id}({ast.unparse(node.args[0])}, ...)")
    return found


def _reference_imports(tree: ast.AST, graded_names: set[str]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("llm_foundations"):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name in graded_names or a.name == "*"]
        elif isinstance(node, ast.Attribute) and node.attr in graded_names:
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id == "llm_foundations":
                found.append(ast.unparse(node))
    return found


def scan(sources: list[str], graded_names: set[str]) -> list[str]:
    """Reasons to review the student code in ``sources`` (empty when nothing stands out)."""
    reasons: list[str] = []
    patched: list[str] = []
    imported: list[str] = []
    for source in sources:
        for pattern, reason in _PATTERNS:
            if pattern.search(source) and reason not in reasons:
                reasons.append(reason)
        tree = parse_python(source)
        if tree is None:
            continue
        patched += _assigned_attributes(tree)
        imported += _reference_imports(tree, graded_names)
    if patched:
        reasons.append("replaces library functions: " + ", ".join(sorted(set(patched))[:5]))
    if imported:
        reasons.append("imports the reference implementation: " + ", ".join(sorted(set(imported))[:5]))
    return reasons


def review(answers: Answers) -> list[str]:
    """:func:`scan` of everything the student wrote in a submission: its answers and added cells."""
    return scan(answers.student_code(), set(answers.by_id) | set(answers.missing))
