"""llm_foundations.text: chapter 10's corpus: a local copy first, a download only when asked, the offline play last.

No test here touches the network: the one function that downloads is replaced by fakes, and a
guard fails any test that opens a connection anyway.
"""

from __future__ import annotations

import random
import socket
import sys
import types
import urllib.error
import warnings

import pytest
import torch

from llm_foundations import text as text_module
from llm_foundations.text import (
    CORPUS_ENV,
    SPEAKERS,
    TINY_SHAKESPEARE_URL,
    default_cache_path,
    find_local_corpus,
    lm_batches,
    load_corpus,
    offline_corpus,
)

SHAKESPEARE = "First Speaker:\nA line of verse, written for this test.\n"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to connect fails the test, and Colab is never detected unless a test says so."""

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


@pytest.fixture
def downloads(monkeypatch):
    """Replace the download with a fake that records its calls and returns SHAKESPEARE."""
    calls = []

    def fake(url, timeout):
        calls.append((url, timeout))
        return SHAKESPEARE.encode("utf-8")

    monkeypatch.setattr(text_module, "_download", fake)
    return calls


@pytest.fixture
def no_downloads(monkeypatch):
    def fail(url, timeout):
        raise AssertionError("load_corpus downloaded when it should not have")

    monkeypatch.setattr(text_module, "_download", fail)


# --- the offline corpus ---------------------------------------------------------------------------


def test_offline_corpus_is_deterministic_and_leaves_the_global_random_state_alone():
    random.seed(7)
    state, torch_state = random.getstate(), torch.random.get_rng_state()
    first = offline_corpus(20_000, seed=3)
    assert first == offline_corpus(20_000, seed=3)
    assert first != offline_corpus(20_000, seed=4)
    assert random.getstate() == state
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_offline_corpus_has_the_requested_size_and_the_layout_of_a_play():
    corpus = offline_corpus()
    assert 300_000 <= len(corpus) < 301_000  # it stops at the end of the speech that reaches the size
    assert corpus.endswith("\n") and not corpus.endswith("\n\n")
    speeches = corpus.rstrip("\n").split("\n\n")
    assert len(speeches) > 1000
    previous = None
    for speech in speeches:
        name, *lines = speech.split("\n")
        assert name.endswith(":") and name[:-1] in SPEAKERS, name
        assert name != previous, "the same speaker twice in a row"
        assert 1 <= len(lines) <= 3
        for line in lines:
            assert line[0].isupper() and line[-1] in ".!", line
        previous = name
    assert corpus.isascii() and "{" not in corpus and "  " not in corpus
    assert {"KEEPER", "Monday", "Paris", "lighthouse"} <= set(corpus.replace(":", " ").split())


def test_offline_corpus_is_small_enough_for_a_cpu_and_rejects_a_bad_size():
    assert 100 <= len(offline_corpus(100)) < 1000
    with pytest.raises(ValueError, match="num_chars"):
        offline_corpus(0)


# --- load_corpus: a local copy first, a download only when asked, the offline corpus last -----------


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No local copy anywhere: no $LLM_FOUNDATIONS_CORPUS, an empty cache, a working directory without shared/."""
    monkeypatch.delenv(CORPUS_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_without_a_copy_or_colab_it_is_the_offline_corpus_and_it_says_so(nowhere, no_downloads, capsys):
    path = nowhere / "cache" / "corpus.txt"
    assert load_corpus(path) == offline_corpus()
    assert load_corpus(path, download=False) == offline_corpus()
    assert not path.parent.exists(), "nothing may be written when nothing was downloaded"
    said = capsys.readouterr().out
    assert said.count("offline corpus") == 2 and CORPUS_ENV in said, (
        f"the fallback must say that it is not Shakespeare and how to get it; it printed {said!r}")


def test_a_local_copy_is_read_without_the_network_even_with_download_false(nowhere, no_downloads, capsys):
    path = nowhere / "corpus.txt"
    path.write_text(SHAKESPEARE, encoding="utf-8")
    assert load_corpus(path, download=False) == SHAKESPEARE
    assert load_corpus(path, download=True) == SHAKESPEARE
    assert str(path) in capsys.readouterr().out
    assert load_corpus(path, verbose=False) == SHAKESPEARE and capsys.readouterr().out == ""


def test_the_environment_variable_names_a_copy_and_an_explicit_path_comes_first(nowhere, monkeypatch, no_downloads):
    named = nowhere / "named.txt"
    named.write_text("FROM THE ENVIRONMENT:\nYes.\n", encoding="utf-8")
    monkeypatch.setenv(CORPUS_ENV, str(named))
    assert find_local_corpus() == named
    assert load_corpus() == named.read_text(encoding="utf-8")
    explicit = nowhere / "explicit.txt"
    explicit.write_text(SHAKESPEARE, encoding="utf-8")
    assert load_corpus(explicit) == SHAKESPEARE
    monkeypatch.setenv(CORPUS_ENV, str(nowhere / "missing.txt"))  # a name that is not there: look further
    assert find_local_corpus() is None


def test_a_checkout_copy_in_shared_is_found_from_a_folder_below_it(nowhere, monkeypatch, no_downloads):
    copy = nowhere / "shared" / "data" / "tinyshakespeare.txt"
    copy.parent.mkdir(parents=True)
    copy.write_text(SHAKESPEARE, encoding="utf-8")
    chapter = nowhere / "repo" / "book"  # a chapter runs in <repo>/book; shared/ lies beside <repo>
    chapter.mkdir(parents=True)
    monkeypatch.chdir(chapter)
    assert find_local_corpus() == copy
    assert load_corpus() == SHAKESPEARE


def test_the_download_cache_is_a_local_copy(nowhere, no_downloads):
    cached = default_cache_path()
    cached.parent.mkdir(parents=True)
    cached.write_text(SHAKESPEARE, encoding="utf-8")
    assert load_corpus() == SHAKESPEARE


def test_on_colab_the_default_downloads(nowhere, monkeypatch, downloads):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    path = nowhere / "cache" / "corpus.txt"
    assert load_corpus(path) == SHAKESPEARE
    assert downloads == [(TINY_SHAKESPEARE_URL, 10.0)]
    assert path.read_text(encoding="utf-8") == SHAKESPEARE


def test_download_true_saves_the_corpus_and_the_next_call_reads_the_cache(nowhere, monkeypatch, downloads):
    path = nowhere / "nested" / "dirs" / "tinyshakespeare.txt"
    assert load_corpus(path, download=True, timeout=3.0) == SHAKESPEARE
    assert downloads == [(TINY_SHAKESPEARE_URL, 3.0)]
    assert path.read_text(encoding="utf-8") == SHAKESPEARE
    assert [p.name for p in path.parent.iterdir()] == [path.name], "a temporary file was left behind"

    def fail(url, timeout):
        raise AssertionError("downloaded again although the corpus is cached")

    monkeypatch.setattr(text_module, "_download", fail)
    assert load_corpus(path, download=True) == SHAKESPEARE


def test_an_empty_cached_file_is_downloaded_again(nowhere, downloads):
    path = nowhere / "corpus.txt"
    path.write_text("", encoding="utf-8")
    assert load_corpus(path, download=True) == SHAKESPEARE
    assert len(downloads) == 1 and path.read_text(encoding="utf-8") == SHAKESPEARE


def test_the_shared_copy_is_tiny_shakespeare():
    """The copy the tests and the site build use (set by tests/conftest.py), never downloaded."""
    path = find_local_corpus()
    if path is None:
        pytest.skip(f"no local copy of tiny Shakespeare on this machine (set ${CORPUS_ENV})")
    text = path.read_text(encoding="utf-8")
    assert (len(text), len(set(text))) == (1_115_394, 65), (
        f"{path} should be tiny Shakespeare (1,115,394 characters, 65 distinct), got {len(text):,} and {len(set(text))}")
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")


@pytest.mark.parametrize("failure", [
    urllib.error.URLError("no network"),
    TimeoutError("timed out"),
    urllib.error.HTTPError(TINY_SHAKESPEARE_URL, 404, "Not Found", None, None),
    ConnectionResetError("reset by peer"),
], ids=["no-network", "timeout", "http-404", "reset"])
def test_a_failed_download_warns_and_falls_back_to_the_offline_corpus(nowhere, monkeypatch, failure):
    def fail(url, timeout):
        raise failure

    monkeypatch.setattr(text_module, "_download", fail)
    path = nowhere / "corpus.txt"
    with pytest.warns(RuntimeWarning, match="offline corpus"):
        assert load_corpus(path, download=True) == offline_corpus()
    assert not path.exists(), "nothing may be cached after a failed download"


@pytest.mark.parametrize("payload", [b"", b"  \n", b"\xff\xfe not utf-8 \xc3"], ids=["empty", "blank", "not-utf8"])
def test_a_useless_download_is_not_cached(nowhere, monkeypatch, payload):
    monkeypatch.setattr(text_module, "_download", lambda url, timeout: payload)
    path = nowhere / "corpus.txt"
    with pytest.warns(RuntimeWarning, match="offline corpus"):
        assert load_corpus(path, download=True) == offline_corpus()
    assert not path.exists()


def test_an_unwritable_cache_still_returns_the_downloaded_text(nowhere, downloads):
    blocker = nowhere / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.warns(RuntimeWarning, match="could not cache"):
        assert load_corpus(blocker / "corpus.txt", download=True) == SHAKESPEARE


def test_the_default_cache_is_under_the_user_cache_directory(nowhere, monkeypatch, downloads):
    tmp_path = nowhere
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "llm_foundations" / "tinyshakespeare.txt"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "llm_foundations" / "tinyshakespeare.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_corpus(download=True) == SHAKESPEARE
    assert (tmp_path / "xdg" / "llm_foundations" / "tinyshakespeare.txt").read_text(encoding="utf-8") == SHAKESPEARE


def test_the_real_download_function_asks_the_server_with_the_timeout(monkeypatch):
    """_download itself, with urlopen replaced: the URL and the timeout reach it, and the bytes come back."""
    seen = {}

    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b"bytes"

    def fake_urlopen(url, timeout):
        seen.update(url=url, timeout=timeout)
        return Response()

    monkeypatch.setattr(text_module.urllib.request, "urlopen", fake_urlopen)
    assert text_module._download("https://example.invalid/x", 2.5) == b"bytes"
    assert seen == {"url": "https://example.invalid/x", "timeout": 2.5}


# --- lm_batches ------------------------------------------------------------------------------------


def test_lm_batches_are_windows_and_the_same_windows_one_token_later():
    ids = torch.arange(1000)
    inputs, targets = next(lm_batches(ids, context=16, batch_size=8, seed=0))
    assert inputs.shape == targets.shape == (8, 16)
    assert inputs.dtype == targets.dtype == torch.long
    assert torch.equal(targets, inputs + 1)  # ids are 0..999, so the next token is the id plus one
    assert torch.equal(inputs[:, 1:], inputs[:, :-1] + 1)  # contiguous windows
    assert int(targets.max()) <= 999 and int(inputs.min()) >= 0


def test_lm_batches_are_reproducible_and_cover_the_whole_sequence():
    ids = torch.arange(50)
    first = [next(b) for b in [lm_batches(ids, 4, 16, seed=1)] * 3]
    again = [next(b) for b in [lm_batches(ids, 4, 16, seed=1)] * 3]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    other = next(lm_batches(ids, 4, 16, seed=2))
    assert not torch.equal(first[0][0], other[0])
    batches = lm_batches(ids, 4, 64, seed=0)
    starts = set(torch.cat([next(batches)[0][:, 0] for _ in range(10)]).tolist())
    assert starts == set(range(50 - 4)), "every window start, and the last one, must be possible"


def test_lm_batches_reject_bad_input():
    with pytest.raises(ValueError, match="one sequence"):
        next(lm_batches(torch.zeros(2, 10, dtype=torch.long), 4, 2))
    with pytest.raises(ValueError, match="more than"):
        next(lm_batches(torch.arange(4), 4, 2))
