"""A class of determined cheaters, graded by the real pipeline in its sandbox: every attack fails.

Each attacker hands in a wrong answer (no 1/sqrt(d_k): 4 of 15 points at best) plus a few lines
that try to raise their grade, lower a classmate's, change the course's sources, read hidden
tests or classmates' code, reach the network, or leave something running. The attackers know
the course directory's path (a classmate could guess it), so only the sandbox stands in the way.
After grading: no attacker has full marks, the honest classmates keep theirs, the stored results
and a second run agree, no feedback page holds a line of the hidden tests, a classmate's code or
the grader's secrets, nothing they started is running, nothing connected, and the repository,
the course directory's sources and every original submission are byte-identical.
"""

from __future__ import annotations

import csv
import hashlib
import html
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import nbformat
import pytest

from autograder import feedback, grade, sandbox
from autograder.limits import Limits
from autograder.score import secret_lines
from submissions import REPO, Answer, build_submission

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("escape"), pytest.mark.skipif(sys.platform != "linux" or sandbox.bwrap() is None,
                                                   reason="the sandbox needs Linux and bubblewrap")]

ASSIGNMENT = "04_self_attention"
SDPA = "scaled_dot_product_attention"
MARKER = f"escape-{uuid.uuid4().hex[:12]}"  # in the command line of everything an attacker starts
HONEST_MARKER = f"honest-{uuid.uuid4().hex[:12]}"  # only in the honest students' own code
SECRET = f"grader-secret-{uuid.uuid4().hex[:12]}"  # in the grader's environment

WRONG = '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)  # no 1/sqrt(d_k): wrong
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.nan_to_num(torch.softmax(scores, dim=-1))
    return weights @ v, weights
'''

HONEST = f'''
def scaled_dot_product_attention(q, k, v, mask=None):
    # {HONEST_MARKER}
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights
'''


def _detached(code: str) -> str:
    """Lines that start ``code`` in a process of its own session, outliving the cell that started it."""
    return (f"import subprocess as _sp, sys as _sys\n"
            f"_sp.Popen([_sys.executable, '-c', {code!r} + '  # {MARKER}'], start_new_session=True,\n"
            f"          stdout=_sp.DEVNULL, stderr=_sp.DEVNULL)\n")


def attacks(course: str, port: int) -> dict[str, str]:
    results = f"{course}/results/{ASSIGNMENT}"
    return {
        "forge-own": _detached(
            "import glob, json, time\n"
            "for _ in range(600):\n"
            f"    for p in glob.glob({results!r} + '/forge-own.json'):\n"
            "        r = json.load(open(p)); r['score'] = r['max_score']; r['status'] = 'graded'\n"
            "        r['tests'] = [dict(t, points=t['max_points'], passed=True) for t in r['tests']]\n"
            "        json.dump(r, open(p, 'w'))\n"
            "    time.sleep(0.2)\n"),
        "zero-classmates": _detached(
            "import glob, json, time\n"
            "for _ in range(600):\n"
            f"    for p in glob.glob({results!r} + '/*.json'):\n"
            "        r = json.load(open(p)); r['score'] = 0; json.dump(r, open(p, 'w'))\n"
            "    time.sleep(0.2)\n"),
        "rewrite-sources": (
            "import glob, llm_foundations.checks.core as _t\n"
            f"for _p in glob.glob({course!r} + '/source/*/*.ipynb') + glob.glob({str(REPO)!r} + '/solutions/*/*.ipynb') "
            "+ [_t.__file__]:\n"
            "    try:\n"
            "        open(_p, 'w').write('{}')\n"
            "    except OSError:\n"
            "        pass\n"),
        "read-hidden-on-disk": (
            "import glob\n"
            "_found = []\n"
            f"for _pattern in [_root + '/**/*.ipynb' for _root in ('/home', '/root', '/tmp', '/srv', '/opt', '/mnt', "
            f"{course!r}, {str(REPO)!r}, {str(REPO.parent)!r})]:\n"
            "    for _p in glob.glob(_pattern, recursive=True):\n"
            "        try:\n"
            "            _text = open(_p).read()\n"
            "        except OSError:\n"
            "            continue\n"
            "        if 'BEGIN HIDDEN' in _text:\n"
            "            _found.append(_text)\n"
            "def scaled_dot_product_attention(q, k, v, mask=None):\n"
            "    raise AssertionError('\\n'.join(_found) or 'no hidden tests on disk')\n"),
        "read-hidden-in-kernel": (
            "import inspect, linecache\n"
            "def scaled_dot_product_attention(q, k, v, mask=None):\n"
            "    _caller = inspect.currentframe().f_back\n"
            "    _lines = linecache.getlines(_caller.f_code.co_filename)\n"
            "    _history = '\\n'.join(get_ipython().user_ns.get('In', []))\n"
            "    raise AssertionError(''.join(_lines) + '\\n' + _history)\n"),
        "read-classmates": (
            "import glob\n"
            f"_found = [open(_p).read() for _p in glob.glob({course!r} + '/submitted/*/*/*.ipynb')"
            f" + glob.glob({course!r} + '/autograded/*/*/*.ipynb')]\n"
            "def scaled_dot_product_attention(q, k, v, mask=None):\n"
            "    raise AssertionError('\\n'.join(_found) or 'no classmates on disk')\n"),
        "connect-localhost": (
            "import socket\n"
            "for _host in ('127.0.0.1', 'localhost'):\n"
            "    try:\n"
            f"        socket.create_connection((_host, {port}), timeout=2).sendall(b'{MARKER}')\n"
            "    except OSError:\n"
            "        pass\n"),
        "leave-running": _detached("import time; time.sleep(900)"),
        "fork-bomb": (
            "import os, time\n"
            "try:\n"
            "    for _ in range(3000):  # bounded: each child sleeps 30 s, then leaves\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(30)\n"
            "            os._exit(0)\n"
            "except OSError:\n"
            "    pass\n"),
        "huge-file": (
            "try:\n"
            "    with open('filler.bin', 'wb') as _f:\n"
            "        for _ in range(2048):\n"
            "            _f.write(b'x' * 2**20)  # 2 GiB, if nothing stops it\n"
            "except OSError:\n"
            "    pass\n"),
        "environment-secrets": (
            "import os\n"
            "_seen = repr(dict(os.environ))\n"
            "for _p in ('/proc/1/environ', '/proc/self/environ'):\n"
            "    try:\n"
            "        _seen += open(_p, 'rb').read().decode(errors='replace')\n"
            "    except OSError:\n"
            "        pass\n"
            "def scaled_dot_product_attention(q, k, v, mask=None):\n"
            "    raise AssertionError(_seen)\n"),
        "write-outside": (
            f"for _p in ('/tmp/{MARKER}', '/root/{MARKER}', '/etc/{MARKER}', {str(REPO)!r} + '/{MARKER}',\n"
            f"           {course!r} + '/{MARKER}', {course!r} + '/grades/{ASSIGNMENT}.csv'):\n"
            "    try:\n"
            "        open(_p, 'w').write('escaped')\n"
            "    except OSError:\n"
            "        pass\n"),
    }


def _tree_digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def _repository_digest() -> dict[str, str]:
    """What a forger would rewrite: the solutions, the released exercises, the package and the grader."""
    tracked = subprocess.run(["git", "ls-files", "-z", "solutions", "exercises", "llm_foundations", "autograder"],
                             cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    return {name.decode(): hashlib.sha256((REPO / name.decode()).read_bytes()).hexdigest()
            for name in tracked if name and (REPO / name.decode()).is_file()}


def _running_markers() -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if MARKER.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                found.append(pid)
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def escape_class(tmp_path_factory):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
                accepted.append(connection.recv(100))
                connection.close()
            except OSError:
                pass

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    course = tmp_path_factory.mktemp("escape-course")
    inbox = tmp_path_factory.mktemp("escape-inbox")
    students = {name: build_submission(ASSIGNMENT, Answer(name, "", source={SDPA: WRONG + "\n" + code}))
                for name, code in attacks(str(course), listener.getsockname()[1]).items()}
    students["honest-a"] = students["honest-b"] = build_submission(
        ASSIGNMENT, Answer("honest", "", source={SDPA: HONEST}))
    for name, nb in students.items():
        (inbox / f"{name}_{ASSIGNMENT}.ipynb").write_text(nbformat.writes(nb), encoding="utf-8")
    originals, repository = _tree_digest(inbox), _repository_digest()
    limits = Limits(cell_seconds=45, submission_seconds=300, memory_mb=2048)
    os.environ["ESCAPE_TEST_SECRET"] = SECRET
    try:
        started = time.perf_counter()
        grades = grade(ASSIGNMENT, course, submissions=[inbox], jobs=2, limits=limits)
        seconds = time.perf_counter() - started
        time.sleep(2)  # a forger that outlived its sandbox would strike now
        results = {p.name: p.read_bytes() for p in (course / "results" / ASSIGNMENT).glob("*.json")}
        sources = _tree_digest(course / "source")
        regraded = grade(ASSIGNMENT, course, jobs=2, limits=limits).read_text(encoding="utf-8")
    finally:
        del os.environ["ESCAPE_TEST_SECRET"]
        stop.set()
        server.join(timeout=5)
        listener.close()
    with grades.open(encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"rows": rows, "course": course, "inbox": inbox, "originals": originals, "repository": repository,
            "accepted": accepted, "results": results, "sources": sources, "grades_text": grades.read_text(encoding="utf-8"),
            "regraded": regraded, "seconds": seconds, "limits": limits}


def test_no_attacker_gets_full_marks_and_honest_classmates_keep_theirs(escape_class):
    rows = escape_class["rows"]
    assert set(rows) == set(attacks("", 0)) | {"honest-a", "honest-b"}, sorted(rows)
    for student, row in rows.items():
        if student.startswith("honest"):
            assert (row["score"], row["status"]) == (row["max_score"], "graded"), f"honest {student}: {row}"
        else:
            assert float(row["score"]) < float(row["max_score"]), f"{student} got full marks: {row}"


def test_stored_results_are_the_graders_own_and_survive_a_second_run(escape_class):
    course = escape_class["course"]
    now = {p.name: p.read_bytes() for p in (course / "results" / ASSIGNMENT).glob("*.json")}
    assert now == escape_class["results"], "a stored result changed after grading"
    assert escape_class["regraded"] == escape_class["grades_text"], "a second grade run disagrees with the first"


def test_nothing_they_started_is_still_running(escape_class):
    assert _running_markers() == []


def test_no_connection_reached_the_host(escape_class):
    assert escape_class["accepted"] == [], f"connections from submissions: {escape_class['accepted']}"


def test_sources_repository_and_originals_are_unchanged(escape_class):
    assert _repository_digest() == escape_class["repository"], "the repository was modified"
    assert _tree_digest(escape_class["course"] / "source") == escape_class["sources"]
    assert _tree_digest(escape_class["inbox"]) == escape_class["originals"], "an original submission was modified"
    for path in (f"/tmp/{MARKER}", f"/root/{MARKER}", f"/etc/{MARKER}", f"{REPO}/{MARKER}",
                 f"{escape_class['course']}/{MARKER}"):
        assert not os.path.exists(path), f"{path} was written from a sandbox"


def test_feedback_holds_no_hidden_test_classmate_or_secret(escape_class):
    course = escape_class["course"]
    source = nbformat.read(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    secrets = secret_lines(source)
    assert len(secrets) > 20
    pages = feedback(ASSIGNMENT, course)
    assert len(pages) == len(escape_class["rows"])
    for page in pages:
        text = " ".join(html.unescape(page.read_text(encoding="utf-8")).split())
        student = page.parent.name
        leaked = [line for line in secrets if line in text]
        assert not leaked, f"{student}'s feedback quotes the hidden tests or the solution: {leaked[:3]}"
        assert SECRET not in text, f"{student}'s feedback holds the grader's environment"
        if not student.startswith("honest"):
            assert HONEST_MARKER not in text, f"{student}'s feedback holds a classmate's code"
    kernel_reader = (course / "feedback" / "read-hidden-in-kernel" / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")
    assert "withheld" in kernel_reader, "the scrubbed message must say that something was withheld"


def test_attempts_are_flagged_for_review(escape_class):
    rows = escape_class["rows"]
    for student in ("forge-own", "zero-classmates", "leave-running", "connect-localhost", "read-hidden-in-kernel",
                    "environment-secrets"):
        assert rows[student]["status"].startswith(("flagged:", "error:")), f"{student}: {rows[student]['status']}"
