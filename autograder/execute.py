"""Execute one assembled notebook under time, memory, output, process and file-size limits
(:class:`~autograder.limits.Limits`; what running into one looks like is read in :mod:`autograder.limits`).

The parent starts ``python -m autograder.execute`` as a new session; that worker, which is the
grader's own code and stays outside the sandbox, lowers its address-space limit (the kernel it
starts inherits it) and drives the kernel with nbclient: a cell that errors or times out is
recorded and execution goes on; the executed notebook is written to the worker's private
temporary folder, which the kernel cannot see. The kernel itself, and everything it starts, runs
in the operating-system sandbox of :mod:`autograder.sandbox` (which says what crosses it), and
talks to the worker over unix sockets only. If the whole submission runs past its wall-clock
limit the parent kills the worker, and with it (``--die-with-parent``) the sandbox and every
process in it. The executed notebook is read back defensively: size-limited, valid nbformat, and
exactly the cells that were sent.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import environment, sandbox
from autograder.limits import (
    CELL_TIMEOUT_ERROR,
    Limits,
    cell_timeout_message,
    executed_size_message,
    kernel_died_message,
    notebook_time_message,
)
from autograder.sandbox import SandboxSettings


@dataclass
class Execution:
    notebook: nbformat.NotebookNode | None
    seconds: float
    problem: str | None  # None, or why the run did not complete normally


def execute(nb: nbformat.NotebookNode, limits: Limits, threads: int | None = None,
            sandbox: SandboxSettings | None = None) -> Execution:
    """Run ``nb`` in a worker process; its kernel runs inside ``sandbox`` (None: unisolated, ``--no-sandbox``).

    ``threads``: CPU threads the kernel's torch/numpy may use (``OMP_NUM_THREADS``), so that
    submissions graded side by side do not oversubscribe the cores; None leaves the environment as it is.
    """
    with tempfile.TemporaryDirectory(prefix="autograde-") as tmp:
        source, target = Path(tmp) / "in.ipynb", Path(tmp) / "out.ipynb"
        nbformat.write(nb, source)
        settings = Path(tmp) / "limits.json"
        settings.write_text(json.dumps({"cell_seconds": limits.cell_seconds, "memory_mb": limits.memory_mb,
                                        "sandbox": None if sandbox is None else sandbox.to_json()}))
        started = time.perf_counter()
        worker = subprocess.Popen(
            [sys.executable, "-m", "autograder.execute", str(source), str(target), str(settings)],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            env=_environment(threads), stdin=subprocess.DEVNULL,
        )
        try:
            _, stderr = worker.communicate(timeout=limits.submission_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate()
            return Execution(None, time.perf_counter() - started, notebook_time_message(limits))
        finally:
            _kill_group(worker.pid)
        seconds = time.perf_counter() - started
        if not target.exists():
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            return Execution(None, seconds, f"the kernel or worker crashed ({tail[0][:200]})")
        executed, problem = read_executed(target, nb, limits)
        return Execution(executed, seconds, problem)


# Outputs beyond the output limit are already an error; this bounds what is parsed at all.
_MAX_EXECUTED_BYTES = 64 * 2**20


def read_executed(path: Path, sent: nbformat.NotebookNode, limits: Limits) -> tuple[nbformat.NotebookNode | None, str | None]:
    """The executed notebook, if it is a valid notebook of exactly the cells that were sent."""
    if path.stat().st_size > _MAX_EXECUTED_BYTES + limits.output_bytes:
        return None, executed_size_message(_MAX_EXECUTED_BYTES)
    try:
        executed = nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - anything unreadable is the submission's problem
        return None, f"the executed notebook could not be read ({type(error).__name__})"
    sources = [(c.cell_type, c.source) for c in executed.cells]
    if sources != [(c.cell_type, c.source) for c in sent.cells]:
        return None, "the executed notebook does not hold the cells that were sent"
    return executed, executed.metadata.pop("autograder_problem", None)


def _environment(threads: int | None) -> dict[str, str]:
    return {**os.environ, **environment.GRADING, **environment.threads(threads)}


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _run_worker(source: Path, target: Path, settings: Path) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    config = json.loads(settings.read_text())
    limit = config["memory_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    nb = nbformat.read(source, as_version=4)
    private = Path(tempfile.mkdtemp(prefix="autograde-kernel-"))
    private.chmod(0o755)  # the sandboxed kernel's own user must reach the sockets folder inside it
    extra = {}
    if config["sandbox"] is not None:
        extra["km"] = sandbox.kernel_manager(SandboxSettings.from_json(config["sandbox"]), private)
    client = NotebookClient(
        nb, timeout=config["cell_seconds"], kernel_name="python3", allow_errors=True, **extra,
        interrupt_on_timeout=True, record_timing=False,
        error_on_timeout={"ename": CELL_TIMEOUT_ERROR, "evalue": cell_timeout_message(config["cell_seconds"]),
                          "traceback": []},
        # unsandboxed, the kernel works in this private folder; sandboxed, this is only bwrap's host cwd
        resources={"metadata": {"path": str(private)}},
    )
    try:
        client.execute()
    except DeadKernelError:
        nb.metadata["autograder_problem"] = kernel_died_message(config["memory_mb"])
    except Exception as error:  # noqa: BLE001 - recorded, the parent decides
        nb.metadata["autograder_problem"] = f"execution failed: {type(error).__name__}: {str(error)[:200]}"
    finally:
        shutil.rmtree(private, ignore_errors=True)
    nbformat.write(nb, target)


if __name__ == "__main__":
    _run_worker(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
