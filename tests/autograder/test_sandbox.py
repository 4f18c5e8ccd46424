"""The grading sandbox on its own, without a kernel: what code inside it can see, reach and start.

Each test runs a few lines of Python through :func:`autograder.sandbox.command`, exactly as the
grader wraps a kernel, and reads what it printed. (The whole pipeline, attacks included, is
tested in ``test_escape.py``.)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.cli import main as cli
from autograder.limits import Limits
from submissions import REPO


pytestmark = pytest.mark.skipif(sys.platform != "linux" or sandbox.bwrap() is None,
                                reason="the sandbox needs Linux and bubblewrap (make test installs it)")


@pytest.fixture
def course(tmp_path):
    course = tmp_path / "course"
    (course / "source" / "04_self_attention").mkdir(parents=True)
    (course / "source" / "04_self_attention" / "04_self_attention.ipynb").write_text("{}", encoding="utf-8")
    (course / "source" / "04_self_attention" / "data.txt").write_text("shipped with the assignment\n", encoding="utf-8")
    (course / "results" / "04_self_attention").mkdir(parents=True)
    (course / "results" / "04_self_attention" / "ann.json").write_text("{}", encoding="utf-8")
    return course


def run_inside(course: Path, code: str, limits: Limits = Limits(), timeout: float = 60) -> subprocess.CompletedProcess:
    settings = sandbox.settings_for(course, REPO, course / "source" / "04_self_attention", limits, threads=1)
    with tempfile.TemporaryDirectory(prefix="sandbox-test-") as private:
        os.chmod(private, 0o755)
        argv = [sys.executable, "-c", textwrap.dedent(code)]
        return subprocess.run(sandbox.command(settings, private, argv, sandbox._kernel_user()), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def report(course: Path, code: str, **kwargs) -> dict:
    ran = run_inside(course, textwrap.dedent(code) + "\nprint('REPORT', json.dumps(out))", **kwargs)
    lines = [line for line in ran.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, f"the sandboxed code did not report (exit {ran.returncode}):\n{ran.stderr[-2000:]}"
    return json.loads(lines[-1][len("REPORT "):])


def test_the_course_the_repository_and_home_folders_are_not_there(course):
    seen = report(course, f"""
        import json, os
        import llm_foundations
        paths = {{"course": {str(course)!r}, "results": {str(course / 'results')!r},
                  "solutions": {str(REPO / 'solutions')!r}, "grader": {str(REPO / 'autograder')!r},
                  "tests": {str(REPO / 'tests')!r}, "git": {str(REPO / '.git')!r}, "root": "/root/.bashrc"}}
        out = {{name: os.path.exists(path) for name, path in paths.items()}}
        out["package"] = os.path.isfile(llm_foundations.__file__)
        out["cwd"] = os.getcwd()
        out["shipped"] = open("data.txt").read()
        try:
            import autograder
            out["imports_grader"] = True
        except ImportError:
            out["imports_grader"] = False
    """)
    assert seen.pop("package") is True, "the course package must be importable inside"
    assert seen.pop("cwd") == sandbox.WORKDIR
    assert seen.pop("shipped") == "shipped with the assignment\n", "the assignment's own files are in the working directory"
    assert seen == {name: False for name in seen}, f"visible inside the sandbox: {[n for n, v in seen.items() if v]}"


def test_nothing_outside_the_working_directory_can_be_written(course, tmp_path):
    marker = f"escape-{uuid.uuid4().hex}"
    targets = [f"/tmp/{marker}", f"{tmp_path}/{marker}", f"{course}/results/{marker}", f"{REPO}/{marker}",
               f"{REPO}/llm_foundations/{marker}", f"/etc/{marker}", f"{os.path.dirname(sys.executable)}/{marker}"]
    seen = report(course, f"""
        import json, os
        out = {{}}
        for path in {targets!r}:
            try:
                with open(path, "w") as handle:
                    handle.write("x")
                out[path] = "written inside"
            except OSError as error:
                out[path] = type(error).__name__
        import llm_foundations.checks.core as checks
        try:
            open(checks.__file__, "a").write("# tampered")
            out["checks"] = "written"
        except OSError as error:
            out["checks"] = type(error).__name__
        open("mine.txt", "w").write("the working directory is writable")
        out["own"] = open("mine.txt").read()
    """)
    assert seen.pop("own") == "the working directory is writable"
    assert seen.pop("checks") != "written", "the check modules must be read-only"
    for path in targets:
        assert not os.path.exists(path), f"{path} was created on the host"


def test_no_network_not_even_the_hosts_loopback(course):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        seen = report(course, f"""
            import json, socket
            out = {{}}
            for host in ("127.0.0.1", "localhost", "8.8.8.8"):
                try:
                    socket.create_connection((host, {port}), timeout=2).close()
                    out[host] = "connected"
                except OSError as error:
                    out[host] = type(error).__name__
        """)
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
    assert "connected" not in seen.values(), seen


def test_the_graders_environment_does_not_reach_the_kernel(course, monkeypatch):
    monkeypatch.setenv("COURSE_API_TOKEN", "s3cret-token-for-the-test")
    seen = report(course, """
        import json, os
        out = {"environ": dict(os.environ)}
        try:
            out["parent"] = open("/proc/1/environ", "rb").read().decode(errors="replace")
        except OSError as error:  # as root the grader runs the kernel as another user: not even readable
            out["parent"] = type(error).__name__
        out["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    """)
    assert "s3cret-token-for-the-test" not in json.dumps(seen), "the grader's environment leaked into the sandbox"
    assert set(seen["environ"]) <= set(sandbox.kernel_environment(1)) | {"PWD"}, sorted(seen["environ"])
    assert max(seen["processes"]) < 10, f"the sandbox sees other processes: {seen['processes']}"


def test_every_process_it_started_is_gone_when_it_ends(course):
    marker = f"leftover-{uuid.uuid4().hex}"
    ran = run_inside(course, f"""
        import os, subprocess, sys
        # detached twice over: a new session, and a grandchild whose parent has exited
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)  # {marker}"], start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)  # {marker}"])
            os._exit(0)
        print("started")
    """)
    assert "started" in ran.stdout, ran.stderr
    time.sleep(0.5)
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                alive.append(pid)
        except OSError:
            pass
    assert not alive, f"processes started in the sandbox outlived it: {alive}"


def test_processes_and_file_sizes_are_limited(course):
    seen = report(course, """
        import json, os, time
        out = {"uid": os.getuid(), "no_new_privs": open("/proc/self/status").read().split("NoNewPrivs:")[1].split()[0]}
        children = []
        try:
            for _ in range(2000):  # a bounded fork bomb: every child sleeps, then leaves
                pid = os.fork()
                if pid == 0:
                    time.sleep(5)
                    os._exit(0)
                children.append(pid)
        except OSError as error:
            out["fork"] = type(error).__name__
        out["forked"] = len(children)
        try:
            with open("big.bin", "wb") as handle:
                for _ in range(64):
                    handle.write(b"x" * 2**20)
            out["file"] = "written"
        except OSError as error:
            out["file"] = type(error).__name__
    """, limits=Limits(processes=64, file_mb=16))
    assert seen["forked"] < 64 and seen.get("fork") == "BlockingIOError", seen
    assert seen["file"] == "OSError", "a file past the size limit must fail to write"
    assert seen["no_new_privs"] == "1"
    if os.geteuid() == 0:
        assert seen["uid"] != 0, "as root the grader must drop the kernel to a user of its own"


def test_no_bubblewrap_is_a_clear_error_naming_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "bwrap", lambda: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap.*--no-sandbox"):
        sandbox.check(sandbox.SandboxSettings())
    assert cli(["grade", "04_self_attention", "--course-dir", str(tmp_path / "course")]) == 2
    assert "bubblewrap (bwrap) is not installed" in capsys.readouterr().err


def test_a_machine_without_namespaces_is_a_clear_error(monkeypatch):
    broken = subprocess.CompletedProcess([], 1, "", "bwrap: No permissions to creating new namespace, likely because the "
                                                  "kernel does not allow non-privileged user namespaces")
    monkeypatch.setattr(sandbox.subprocess, "run", lambda *a, **k: broken)
    sandbox._preflight.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="namespaces.*--no-sandbox"):
            sandbox._preflight(json.dumps(sandbox.SandboxSettings().to_json()))
    finally:
        sandbox._preflight.cache_clear()


def test_paths_that_contain_a_hidden_folder_are_not_mounted(monkeypatch):
    monkeypatch.setattr(sandbox, "python_paths", lambda python=None: ("/usr/lib/python3", "/srv/course", "/srv",
                                                                       "/srv/course-repo/.venv/lib", "/srv/other"))
    kept = sandbox.readable_paths(["/srv/course", "/srv/course-repo"])
    assert kept == ["/srv/course-repo/.venv/lib", "/srv/other", "/usr/lib/python3"]


def test_grading_without_the_sandbox_says_so_in_every_row_and_the_summary(tmp_path):
    from autograder.grade import summarize
    from autograder.status import FLAGGED, GRADED, NOT_ISOLATED, Status

    assert Status(GRADED, (), sandboxed=True).text() == "graded"
    rows = [("a", 15, Status(GRADED, (), sandboxed=False).text()),
            ("b", 4, Status(FLAGGED, ("reads environment variables",), sandboxed=False).text())]
    grades = tmp_path / "grades.csv"
    grades.write_text("student_id,assignment,score,max_score,status\n"
                      + "".join(f'{s},04,{p},15,"{status}"\n' for s, p, status in rows), encoding="utf-8")
    line = summarize(grades)
    assert line.startswith("2 submissions: 1 graded, 1 flagged; mean score 9.5 of 15"), line
    assert "2 graded WITHOUT the sandbox (--no-sandbox)" in line
    assert all(status.endswith(NOT_ISOLATED) for _, _, status in rows)
