"""Execute one assembled notebook in its own process group, under time, memory and output limits.

The parent starts ``python -m autograder.execute`` as a new session; that worker lowers its
address-space limit (the kernel it starts inherits it), runs every cell with nbclient (a cell
that errors or times out is recorded and execution goes on), and writes the executed notebook.
If the whole submission runs past its wall-clock limit the parent kills the process group,
kernel included. A crash in the student's code can only ever take down that group.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat


@dataclass(frozen=True)
class Limits:
    cell_seconds: int = 120  # one cell
    submission_seconds: int = 600  # the whole notebook, kernel start included
    memory_mb: int = 4096  # address space of the kernel
    output_bytes: int = 1_000_000  # all outputs of the notebook together


@dataclass
class Execution:
    notebook: nbformat.NotebookNode | None
    seconds: float
    problem: str | None  # None, or why the run did not complete normally


def execute(nb: nbformat.NotebookNode, limits: Limits, workdir: Path, threads: int | None = None) -> Execution:
    """Run ``nb`` in a worker process with ``workdir`` as its current directory.

    ``threads``: CPU threads the kernel's torch/numpy may use (``OMP_NUM_THREADS``), so that
    submissions graded side by side do not oversubscribe the cores; None leaves the environment as it is.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="autograde-") as tmp:
        source, target = Path(tmp) / "in.ipynb", Path(tmp) / "out.ipynb"
        nbformat.write(nb, source)
        settings = Path(tmp) / "limits.json"
        settings.write_text(json.dumps({"cell_seconds": limits.cell_seconds, "memory_mb": limits.memory_mb}))
        started = time.perf_counter()
        worker = subprocess.Popen(
            [sys.executable, "-m", "autograder.execute", str(source), str(target), str(settings)],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            env=_environment(threads),
        )
        try:
            _, stderr = worker.communicate(timeout=limits.submission_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate()
            return Execution(None, time.perf_counter() - started,
                             f"time limit: the notebook ran longer than {limits.submission_seconds} s")
        finally:
            _kill_group(worker.pid)
        seconds = time.perf_counter() - started
        if not target.exists():
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            return Execution(None, seconds, f"the kernel or worker crashed ({tail[0][:200]})")
        executed = nbformat.read(target, as_version=4)
        return Execution(executed, seconds, executed.metadata.pop("autograder_problem", None))


def _environment(threads: int | None) -> dict[str, str]:
    env = {**os.environ, "AUTOGRADER_EXECUTION": "1", "NBGRADER_EXECUTION": "autograde"}
    if threads is not None and "OMP_NUM_THREADS" not in os.environ:  # an instructor's own setting wins
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


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
    client = NotebookClient(
        nb, timeout=config["cell_seconds"], kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, record_timing=False,
        error_on_timeout={"ename": "CellTimeoutError",
                          "evalue": f"the cell ran longer than {config['cell_seconds']} s and was stopped",
                          "traceback": []},
        resources={"metadata": {"path": os.getcwd()}},
    )
    try:
        client.execute()
    except DeadKernelError:
        nb.metadata["autograder_problem"] = (
            f"the kernel died (memory limit {config['memory_mb']} MiB, or the code ended the process)")
    except Exception as error:  # noqa: BLE001 - recorded, the parent decides
        nb.metadata["autograder_problem"] = f"execution failed: {type(error).__name__}: {str(error)[:200]}"
    nbformat.write(nb, target)


if __name__ == "__main__":
    _run_worker(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
