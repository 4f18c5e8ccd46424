"""The operating-system sandbox around a submission's kernel, built with bubblewrap (``bwrap``).

The boundary
------------
Only the Jupyter kernel, and every process it starts, runs inside the sandbox. The grader (the
``grade`` process and its execution worker, :mod:`autograder.execute`, which drives the kernel
with nbclient) stays outside: student code can never reach the grader's memory, files or
results, and nothing the sandbox writes is ever read back.

What crosses the boundary, and in which direction:

* **in, read-only**: the operating system (``/usr``, ``/etc``, ...), the Python installation and
  the package folders the kernel imports (found by asking the kernel's Python: its prefix and its
  ``sys.path``, plus the folder of ``llm_foundations``), and the files the assignment ships
  beside its notebook (non-notebook files of ``source/ASSIGNMENT/``), mounted in the working
  directory, and the course's text corpus when ``$LLM_FOUNDATIONS_CORPUS`` names a local copy.
  The others are mounted at their own paths.
* **in and out, through sockets only**: one private directory holds the kernel's connection file
  (written by the grader, readable by the kernel) and the kernel's ZeroMQ unix sockets (``ipc``
  transport). It is the only channel: the sandbox has no network at all.
* **out**: nothing but the kernel's messages over those sockets, which nbclient, outside, turns
  into the executed notebook. No file the sandbox writes is trusted or read: its working
  directory and ``/tmp`` are size-limited tmpfs mounts that vanish with it.

What is hidden (not mounted at all, not just read-only): ``/home``, ``/root``, ``/tmp``,
``/var/tmp``, ``/run`` and ``/dev/shm`` (replaced by empty ones), the course directory (its
sources, results, other students' submissions), and the repository (its ``solutions/``, tests and
the grader's own code), except the package folders named above when they live inside it.

Namespaces: its own PID namespace (every process it started dies with it: when the kernel ends,
or when the worker that launched it dies, ``--die-with-parent``), network (loopback only, no route
out), IPC and UTS. Processes run with ``no_new_privs`` and no capabilities. As root the grader drops
the kernel to a user id of its own (``100000 + worker pid``), so that the process limit
(``RLIMIT_NPROC``, which the kernel does not enforce on root) holds and concurrent submissions
cannot starve each other; as an ordinary user bubblewrap maps the instructor's id into a user
namespace. Limits set on the kernel: address space (memory), processes, file size, core dumps off.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder import environment

# Replaced inside the sandbox by empty directories: where secrets, other users' files and the
# grader's temporary files live.
HIDDEN_ROOTS = ("/home", "/root", "/tmp", "/var/tmp", "/run")
WORKDIR = "/home/student"  # the kernel's working directory and HOME, inside the sandbox
CORPUS_ENV = environment.CORPUS

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install "
                "bubblewrap), or, only if every submission is trusted, grade with --no-sandbox")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run on this machine; the message names the fix."""


@dataclass(frozen=True)
class SandboxSettings:
    """Everything the worker needs to start a sandboxed kernel (JSON-serialisable)."""

    hidden: list[str] = field(default_factory=list)  # extra host paths to hide (course dir, repository)
    readable: list[str] = field(default_factory=list)  # host paths the kernel's Python needs
    shipped: list[str] = field(default_factory=list)  # files copied into the working directory
    processes: int = 256
    file_mb: int = 256
    workdir_mb: int = 512
    memory_mb: int = 4096
    env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict) -> SandboxSettings:
        return cls(**data)


def bwrap() -> str | None:
    return shutil.which("bwrap")


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@functools.lru_cache(maxsize=None)
def python_paths(python: str = sys.executable) -> tuple[str, ...]:
    """Host folders the kernel's Python reads: its installation, ``sys.path`` and the course package."""
    probe = ("import json, os, sys\n"
             "paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))]\n"
             "paths += [p for p in sys.path if p and os.path.isdir(p)]\n"
             "for name in ('llm_foundations', 'ipykernel'):\n"
             "    try:\n"
             "        module = __import__(name)\n"
             "        paths += [os.path.dirname(f) for f in [getattr(module, '__file__', None)] if f]\n"
             "    except Exception:\n"
             "        pass\n"
             "print(json.dumps(sorted({os.path.realpath(p) for p in paths})))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=env,
                           cwd="/", timeout=60)
    if found.returncode != 0:
        raise SandboxUnavailable(f"could not ask {python} for its paths: {found.stderr.strip()[-300:]}")
    return tuple(json.loads(found.stdout))


def readable_paths(hidden: list[str], python: str = sys.executable) -> list[str]:
    """The kernel's paths, minus any that would expose a hidden folder.

    A path that *is* or *contains* a hidden folder (say ``PYTHONPATH`` names the repository) is not
    mounted; the package folder found inside it (``llm_foundations/``) is mounted on its own instead.
    """
    keep = []
    for path in python_paths(python):
        if any(_is_under(h, path) for h in hidden):
            continue
        keep.append(path)
    return sorted(set(keep))


def _kernel_user() -> int | None:
    """The user id the kernel runs as: one of its own when the grader is root, else None (unchanged)."""
    return 100000 + os.getpid() if os.geteuid() == 0 else None


# Runs inside the sandbox, before the kernel: set the limits, drop to the kernel's own user, exec.
_TRAMPOLINE = """import os, resource, signal, sys
uid, processes, file_bytes = (int(a) for a in sys.argv[1:4])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file-size limit fails (EFBIG), not the kernel
resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
if uid >= 0:
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
os.execv(sys.argv[4], sys.argv[4:])
"""


def command(settings: SandboxSettings, private_dir: str, argv: list[str], uid: int | None) -> list[str]:
    """``bwrap ... -- python trampoline ... argv``: ``argv`` run inside the sandbox.

    ``private_dir``: the host folder with the connection file and the sockets, mounted read-write
    at its own path (the connection file names the sockets by their host path).
    """
    hidden_roots = [r for r in HIDDEN_ROOTS if os.path.isdir(r)]
    extra_hidden = [h for h in settings.hidden if not any(_is_under(h, r) for r in hidden_roots) and os.path.exists(h)]
    tmpfs_roots = hidden_roots + extra_hidden
    args = [bwrap() or "bwrap", "--ro-bind", "/", "/"]
    for root in tmpfs_roots:
        if root == "/tmp":  # the kernel's own /tmp: writable by it, and size-limited
            args += ["--size", str(settings.workdir_mb * 2**20), "--perms", "1777"]
        args += ["--tmpfs", root]

    def mount_point(path: str) -> list[str]:
        """Traversable parents for a mount inside one of the empty tmpfs folders."""
        root = next((r for r in sorted(tmpfs_roots, key=len, reverse=True) if _is_under(path, r)), None)
        if root is None:
            return []
        out, current = [], Path(root)
        for part in Path(path).relative_to(root).parts[:-1]:
            current = current / part
            out += ["--perms", "0755", "--dir", str(current)]
        return out

    readable = sorted(set(settings.readable), key=lambda p: (p.count("/"), p))
    readable = [p for p in readable if not any(_is_under(p, q) and p != q for q in readable)]  # outermost only
    for path in readable:
        if any(_is_under(path, r) for r in tmpfs_roots):
            args += mount_point(path) + ["--ro-bind", path, path]
    args += mount_point(private_dir) + ["--bind", private_dir, private_dir]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(64 * 2**20), "--perms", "1777", "--tmpfs", "/dev/shm",
             "--size", str(settings.workdir_mb * 2**20), "--perms", "1777", "--tmpfs", WORKDIR]
    for device in sorted(glob.glob("/dev/nvidia*")):  # a GPU grading machine: its kernels may use CUDA
        args += ["--dev-bind-try", device, device]
    for shipped in settings.shipped:  # the assignment's own data files, read-only
        args += ["--ro-bind", shipped, f"{WORKDIR}/{os.path.basename(shipped)}"]
    args += ["--chdir", WORKDIR,
             "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session", "--clearenv"]
    if uid is not None:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    for name, value in sorted(settings.env.items()):
        args += ["--setenv", name, value]
    python = argv[0]
    return args + ["--", python, "-c", _TRAMPOLINE, str(-1 if uid is None else uid), str(settings.processes),
                   str(settings.file_mb * 2**20), *argv]


def kernel_environment(threads: int | None) -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's (tokens, keys, paths) but what it needs."""
    python_dir = os.path.dirname(sys.executable)
    env = {"HOME": WORKDIR, "PATH": f"{python_dir}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "TMPDIR": "/tmp", "MPLCONFIGDIR": f"{WORKDIR}/.matplotlib", **environment.GRADING,
           "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("PYTHONPATH", CORPUS_ENV):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return {**env, **environment.threads(threads)}


def settings_for(course_dir: Path, repo: Path, source_dir: Path, limits, threads: int | None) -> SandboxSettings:
    """The sandbox for one assignment of one course (the same for every submission).

    ``limits``: the :class:`~autograder.limits.Limits` (memory, processes, file size).
    """
    import tempfile

    # The grader's temporary folder holds the assembled notebook with its hidden tests.
    hidden = sorted({str(Path(p).resolve()) for p in (course_dir, repo, tempfile.gettempdir())})
    shipped = sorted(str(p) for p in Path(source_dir).iterdir()
                     if p.is_file() and p.suffix != ".ipynb" and not p.name.startswith("."))
    readable = readable_paths(hidden)
    corpus = os.environ.get(CORPUS_ENV)
    if corpus and os.path.isfile(corpus) and not any(_is_under(os.path.realpath(corpus), h) for h in hidden):
        readable.append(os.path.realpath(corpus))  # the course's text corpus, read-only, where the instructor keeps it
    return SandboxSettings(hidden=hidden, readable=readable, shipped=shipped,
                           processes=limits.processes, file_mb=limits.file_mb, memory_mb=limits.memory_mb,
                           env=kernel_environment(threads))


@functools.lru_cache(maxsize=None)
def _preflight(settings_json: str) -> None:
    settings = SandboxSettings.from_json(json.loads(settings_json))
    import tempfile

    with tempfile.TemporaryDirectory(prefix="autograde-preflight-") as private:
        os.chmod(private, 0o755)
        argv = [sys.executable, "-c", "import ipykernel, llm_foundations, os; open('probe', 'w').write('ok')"]
        try:
            ran = subprocess.run(command(settings, private, argv, _kernel_user()), capture_output=True, text=True,
                                 timeout=120, stdin=subprocess.DEVNULL)
        except OSError as error:
            raise SandboxUnavailable(f"bubblewrap could not be started ({error}): {INSTALL_HINT}") from None
    if ran.returncode != 0:
        detail = (ran.stderr.strip().splitlines() or ["no message"])[-1][:300]
        hint = ("this machine does not allow the namespaces bubblewrap needs (a container without user "
                "namespaces?): grade on a Linux machine or VM that allows them (sysctl "
                "kernel.unprivileged_userns_clone=1 or user.max_user_namespaces > 0), or pass --no-sandbox")
        if "No module named" in detail or "Permission denied" in detail:
            hint = ("the kernel's Python or the course package is not readable inside the sandbox: install them "
                    "where every user can read them (not in a private folder), or pass --no-sandbox")
        raise SandboxUnavailable(f"the grading sandbox does not work here ({detail}); {hint}")


def check(settings: SandboxSettings) -> None:
    """Raise :class:`SandboxUnavailable`, naming the fix, unless a sandboxed kernel can start here."""
    if platform.system() != "Linux":
        raise SandboxUnavailable(f"the grading sandbox needs Linux (this is {platform.system()}): grade on a Linux "
                                 "machine or VM, or, only if every submission is trusted, pass --no-sandbox")
    if bwrap() is None:
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}")
    _preflight(json.dumps(settings.to_json(), sort_keys=True))


def kernel_manager(settings: SandboxSettings, private_dir: Path):
    """A jupyter_client kernel manager whose kernel starts inside the sandbox and talks over unix sockets."""
    from jupyter_client.manager import AsyncKernelManager

    uid = _kernel_user()
    sockets = Path(private_dir) / "sockets"
    sockets.mkdir(mode=0o755)
    if uid is not None:
        os.chown(sockets, uid, uid)

    class SandboxedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            argv = super().format_kernel_cmd(extra_arguments)
            if uid is not None:  # written by the grader (root, 0600): the kernel's own user must read it
                os.chown(self.connection_file, uid, uid)
            return command(settings, str(private_dir), argv, uid)

    manager = SandboxedKernelManager(kernel_name="python3", transport="ipc", ip=str(sockets / "kernel"),
                                     connection_file=str(sockets / "connection.json"))
    # SIGINT to bwrap would not reach the kernel (another session, another PID namespace): the
    # client asks the kernel itself to interrupt a cell that runs past its limit.
    manager.kernel_spec.interrupt_mode = "message"
    return manager
