"""Test session setup.

Every kernel the tests start (the site build's chapters, the graded exercises, the zoo) imports
the course package from a plain, non-editable install made at the start of the session, as a
student's Colab runtime would after its setup cell: a notebook that only works next to the
repository's files fails here. The pytest processes themselves keep importing from the checkout.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib
import pytest

# Tests that draw in this process draw off screen. (Not through MPLBACKEND: notebook kernels
# started by the tests inherit the environment and would then show no figures.)
matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent
_PACKAGE_DIR = "COURSE_TEST_PACKAGE_DIR"
# Tiny Shakespeare, beside the checkout (CI lays shared/ next to its clone); never downloaded in tests.
# Chapter 10's load_corpus, in this process and in every kernel the tests start, reads it from here.
_SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"


def _install_package() -> Path:
    """``pip install --target`` the course package (not editable) into a fresh folder."""
    target = Path(tempfile.mkdtemp(prefix="course-package-"))
    target.chmod(0o755)  # as a system-wide install: the grading sandbox's own user must read it
    with tempfile.TemporaryDirectory(prefix="course-build-") as build:
        source = Path(build) / "src"  # a copy, so that the build leaves nothing in the checkout
        shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
            ".git", ".venv", "_build", "*.egg-info", "build", "__pycache__", ".pytest_cache", ".hypothesis"))
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
             "--target", str(target), str(source)],
            capture_output=True, text=True,
        )
    if result.returncode != 0:
        raise RuntimeError(f"could not install the course package for the tests:\n{result.stderr[-2000:]}")
    # Students install the package for llm_foundations; the autograder, which finds solutions/ next to
    # its own files, is the instructor's tool and stays the checkout's.
    shutil.rmtree(target / "autograder", ignore_errors=True)
    return target


def pytest_configure(config):
    # Tests run two workers on two cores, each starting kernels: one thread per kernel avoids
    # oversubscription (torch's small matrices gain little from a second thread anyway).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if _SHAKESPEARE.is_file():
        os.environ.setdefault("LLM_FOUNDATIONS_CORPUS", str(_SHAKESPEARE))
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist): install once
        os.environ[_PACKAGE_DIR] = str(_install_package())
        config._course_package_owner = True
        if getattr(config.option, "numprocesses", None):
            return  # xdist workers, started later, inherit the environment: each sets PYTHONPATH itself
    # For the kernels and tools this process starts (not for this process, already running).
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.environ[_PACKAGE_DIR], os.environ.get("PYTHONPATH", "")) if p)


def pytest_unconfigure(config):
    if getattr(config, "_course_package_owner", False):
        shutil.rmtree(os.environ.pop(_PACKAGE_DIR), ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    # pytest exits 5 when it collected no tests; for this project that is a failure, never a pass.
    if exitstatus == 5:
        session.exitstatus = 1


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup``, every test marked ``xdist_group`` must carry its group in its node id.

    That suffix is how pytest-xdist sends a group to one worker. Tests of one group share what
    is expensive to compute (a chapter's bug zoo, a graded class, the website), once per worker:
    if the grouping silently stops working (pytest 9.2 with pytest-xdist 3.8 did), each worker
    computes it again and CI takes twice as long without failing.
    """
    if not (getattr(config, "workerinput", None) and config.getoption("loadgroup", False)):
        return
    lost = [item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist did not tag {len(lost)} grouped tests with their xdist_group (e.g. {lost[0]}): "
            f"pytest {pytest.__version__} and this pytest-xdist do not work together; pin versions that do")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The website, built once per test run into a temporary folder: returns its ``_build``.

    The tests that read it share one xdist group, but a lock makes sure that even two workers
    asking for it build it only once (the build executes every chapter: minutes).
    """
    import fcntl

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # each worker has a folder of its own inside this run's folder
    output = shared / "site"
    with open(shared / "site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (output / "built").exists():
            result = subprocess.run(
                [str(Path(sys.executable).parent / "jupyter-book"), "build", str(REPO), "--path-output", str(output)],
                capture_output=True, text=True,
            )
            assert result.returncode == 0, (
                f"jupyter-book build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
            (output / "built").touch()
    return output / "_build"
