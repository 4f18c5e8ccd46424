"""Checks that teach: what the exercises' test cells are written with.

- :mod:`~llm_foundations.checks.core`: the checks every chapter uses (``expect_close``,
  ``expect_shape``, ``expect_raises``, ``call`` with hints, the guards ``forbid_calls`` and
  ``forbid_builtins``, and :func:`~llm_foundations.checks.core.reference_guard`, which builds a
  chapter's ``forbid_reference`` from its table of reference answers).
- ``chNN_<assignment>``: one module per exercise, named like its folder in ``solutions/``: that
  chapter's mistakes (what a wrong answer returns, for hints), independent reference
  computations, its table of reference functions and its error hints. A chapter module imports
  from ``core`` only, never from another chapter.

A failing check says what was expected, what the student's code returned, and, when the answer
matches a known mistake, what that mistake probably is. Every check raises ``AssertionError``
(the only thing nbgrader needs to take the points) and writes nothing to stderr.
"""
