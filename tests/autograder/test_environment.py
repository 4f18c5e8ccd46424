"""The grading environment's variables (:mod:`autograder.environment`), in both places a kernel
can start: the unsandboxed worker (:mod:`autograder.execute`) and the sandbox."""

from __future__ import annotations

import pytest

from autograder import environment, execute, sandbox


@pytest.fixture
def no_thread_settings(monkeypatch):
    for name in environment.THREADS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_grader_chooses_the_thread_count_unless_the_instructor_did(no_thread_settings):
    assert environment.threads(None) == {}
    assert environment.threads(4) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}
    no_thread_settings.setenv("MKL_NUM_THREADS", "3")
    assert environment.threads(None) == {"MKL_NUM_THREADS": "3"}
    assert environment.threads(4) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}
    no_thread_settings.setenv("OMP_NUM_THREADS", "2")
    assert environment.threads(4) == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "3"}, "an instructor's own setting wins"


def test_both_kinds_of_kernel_see_the_grading_variables_and_the_thread_count(no_thread_settings):
    no_thread_settings.setenv("SECRET_TOKEN", "x")
    for env in (execute._environment(2), sandbox.kernel_environment(2)):
        assert {k: env[k] for k in environment.GRADING} == environment.GRADING
        assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    assert "SECRET_TOKEN" not in sandbox.kernel_environment(2), "the sandbox passes nothing of the grader's"
