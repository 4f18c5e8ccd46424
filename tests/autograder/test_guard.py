"""The guard (:mod:`autograder.guard`), in this process: it restores what student code patched
(every module of the course package included) and reports it."""

from __future__ import annotations

import sys

from autograder import guard


def _run_guard_cells(patch):
    namespace: dict = {}
    try:
        exec(guard.INSTALL_CELL, namespace)
        patch()
        exec(guard.CHECK_CELL, namespace)
        return sys.modules[guard.MODULE]._state["tampered"]
    finally:
        sys.modules.pop(guard.MODULE, None)


def test_the_guard_restores_course_functions_and_methods_the_checks_use():
    import llm_foundations.attention as attention
    import llm_foundations.checks.core as testing

    originals = (attention.scaled_dot_product_attention, attention.MultiHeadAttention.forward, testing.expect_close)

    def patch():
        attention.scaled_dot_product_attention = lambda *a, **k: None
        attention.MultiHeadAttention.forward = lambda self, *a, **k: None
        testing.expect_close = lambda *a, **k: None

    tampered = _run_guard_cells(patch)
    assert (attention.scaled_dot_product_attention, attention.MultiHeadAttention.forward, testing.expect_close) == originals
    assert {"llm_foundations.attention.scaled_dot_product_attention", "llm_foundations.checks.core.expect_close",
            "llm_foundations.attention.MultiHeadAttention.forward"} <= set(tampered)


def test_the_guard_reports_nothing_when_nothing_changed():
    assert _run_guard_cells(lambda: None) == []


