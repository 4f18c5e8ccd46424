"""A text corpus for the decoder-only language model of chapter 10: tiny Shakespeare, safe offline.

- :func:`load_corpus`: tiny Shakespeare (about 1 MB of plays, the classic corpus of character-level
  language models). It reads a local copy when there is one (a path you pass, the file named by
  ``$LLM_FOUNDATIONS_CORPUS``, the download cache, or ``shared/data/tinyshakespeare.txt`` in the
  working directory or one above it); it downloads and caches it when there is none and a network is
  expected (Colab, or ``download=True``); and only when neither works does it fall back to the
  course's offline corpus, saying so. The website build and the tests never touch the network.
- :func:`offline_corpus`: that offline corpus, a play written by a program. Speakers from the
  lighthouse story of :data:`~llm_foundations.corpus.SAMPLE_TEXT` take turns, and their speeches
  are sentences of :func:`~llm_foundations.corpus.generate_corpus` and of the story itself. It
  has the layout of a play script (a name in capitals, a colon, the lines, a blank line), so a
  small model can learn both the layout and the words.
- :func:`lm_batches`: endless batches of random windows of a token sequence, each paired with
  the same window shifted by one token (the next-token targets).

Everything here is deterministic: the same arguments give the same text and the same batches on
every machine, drawn from private random generators, never the global random state.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import sys
import tempfile
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from llm_foundations.corpus import SAMPLE_TEXT, WORD_GROUPS, generate_corpus

__all__ = ["CORPUS_ENV", "SPEAKERS", "TINY_SHAKESPEARE_URL", "default_cache_path", "find_local_corpus", "lm_batches",
           "load_corpus", "offline_corpus"]

#: Where tiny Shakespeare is downloaded from (Karpathy's char-rnn repository).
TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"

#: The environment variable that names a local copy of tiny Shakespeare (the tests set it).
CORPUS_ENV = "LLM_FOUNDATIONS_CORPUS"

#: Where a checkout keeps its local copy, relative to the working directory or a folder above it.
SHARED_COPY = Path("shared") / "data" / "tinyshakespeare.txt"

#: The speakers of the offline corpus: the people of the lighthouse story.
SPEAKERS = ["KEEPER", "GIRL", "BAKER", "FISHERMAN", "CAPTAIN", "PAINTER"]

_CONNECTIVES = [", and ", "; ", ", but ", ", so ", ". "]
_ENDINGS = [".", ".", ".", ".", ".", ".", ".", "!"]
# generate_corpus writes everything in lower case; a play spells names with a capital
_NAMES = re.compile(r"\b(" + "|".join(WORD_GROUPS["countries"] + WORD_GROUPS["capitals"] + WORD_GROUPS["days"])
                    + r")\b")


def default_cache_path() -> Path:
    """Where :func:`load_corpus` keeps the downloaded corpus: ``~/.cache/llm_foundations/tinyshakespeare.txt``.

    ``$XDG_CACHE_HOME`` replaces ``~/.cache`` when it is set.
    """
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "llm_foundations" / "tinyshakespeare.txt"


def _story_sentences() -> list[str]:
    """The sentences of the lighthouse story, each without its final full stop."""
    text = " ".join(SAMPLE_TEXT.split())
    return [s.rstrip(".") for s in re.split(r"(?<=\.) (?=[A-Z])", text) if s]


def offline_corpus(num_chars: int = 300_000, seed: int = 0) -> str:
    """The course's own corpus: a generated play of about ``num_chars`` characters.

    Each speech is a speaker's name in capitals and a colon on a line of its own, then one to
    three lines of one or two sentences, then a blank line. Most sentences come from
    :func:`~llm_foundations.corpus.generate_corpus` ("the farmer feeds the goat every
    morning"), capitalised and punctuated; one in twenty is a sentence of the lighthouse
    story of :data:`~llm_foundations.corpus.SAMPLE_TEXT`. Nothing is downloaded.

    Args:
        num_chars: the text stops at the end of the first speech that reaches this length.
        seed: seed of the corpus's own random generator; the global random state is untouched.

    Returns:
        The text, ending with a newline.
    """
    if num_chars < 1:
        raise ValueError(f"num_chars must be >= 1, got {num_chars}")
    rng = random.Random(seed)
    story = _story_sentences()
    pool = generate_corpus(max(1000, num_chars // 25), seed=seed)  # about 25 characters a sentence

    def sentence() -> str:
        return rng.choice(story) if rng.random() < 0.05 else rng.choice(pool)

    speeches, length, previous = [], 0, None
    while length - 1 < num_chars:  # the final blank line is dropped below
        speaker = rng.choice([s for s in SPEAKERS if s != previous])  # speakers take turns
        lines = []
        for _ in range(rng.choice([1, 1, 2, 2, 3])):
            line = sentence()
            if rng.random() < 0.4:
                connective, second = rng.choice(_CONNECTIVES), sentence()
                line += connective + (second if connective == ". " else second[0].lower() + second[1:])
            line = _NAMES.sub(lambda m: m.group(1).capitalize(), line)
            line = re.sub(r"(^|\. )([a-z])", lambda m: m.group(1) + m.group(2).upper(), line)  # sentences
            lines.append(line + rng.choice(_ENDINGS))
        speech = f"{speaker}:\n" + "\n".join(lines) + "\n\n"
        speeches.append(speech)
        length += len(speech)
        previous = speaker
    return "".join(speeches)[:-1]  # one newline at the end, not a blank line


def _download(url: str, timeout: float) -> bytes:
    """The bytes at ``url`` (the one function here that uses the network; the tests replace it)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def find_local_corpus(path: str | os.PathLike | None = None) -> Path | None:
    """The first local copy of tiny Shakespeare that exists (and is not empty), or None.

    Looked for, in this order: ``path``; the file named by ``$LLM_FOUNDATIONS_CORPUS``
    (:data:`CORPUS_ENV`); the download cache (:func:`default_cache_path`); and
    ``shared/data/tinyshakespeare.txt`` in the working directory or any folder above it (where a
    course checkout keeps its copy, beside the repository). Nothing is downloaded.
    """
    candidates = []
    if path is not None:
        candidates.append(Path(path))
    if os.environ.get(CORPUS_ENV):
        candidates.append(Path(os.environ[CORPUS_ENV]))
    candidates.append(default_cache_path())
    here = Path.cwd()
    candidates += [folder / SHARED_COPY for folder in (here, *here.parents)]
    for candidate in candidates:
        try:
            if candidate.is_file() and candidate.stat().st_size > 0:
                return candidate
        except OSError:  # an unreadable folder on the way: look further
            continue
    return None


def load_corpus(path: str | os.PathLike | None = None, download: bool | None = None, timeout: float = 10.0,
                verbose: bool = True) -> str:
    """The text chapter 10's GPT is trained on: tiny Shakespeare, or the offline corpus when it cannot be had.

    1. A local copy, when :func:`find_local_corpus` finds one (``path``, ``$LLM_FOUNDATIONS_CORPUS``,
       the cache, ``shared/data/tinyshakespeare.txt``), is read; no network is used.
    2. Otherwise, with ``download=True`` (or ``download=None`` on Colab, where a network is there),
       tiny Shakespeare is downloaded from :data:`TINY_SHAKESPEARE_URL` and saved to ``path``
       (default :func:`default_cache_path`) for next time. A failed download (no network, a
       timeout, an HTTP error, text that is not UTF-8) warns and goes on to 3.
    3. Otherwise :func:`offline_corpus`, the course's generated play, and a printed line says so.

    Args:
        path: a local copy of tiny Shakespeare, and where a download is cached (default
            :func:`default_cache_path`).
        download: True: download when there is no local copy; False: never; None: on Colab only.
        timeout: seconds to wait for the server before giving up.
        verbose: print one line saying which text was loaded and from where.

    Returns:
        The corpus as one string.
    """
    say = print if verbose else (lambda *args, **kwargs: None)
    local = find_local_corpus(path)
    if local is not None:
        text = local.read_text(encoding="utf-8")
        say(f"tiny Shakespeare: {len(text):,} characters, read from {local}")
        return text
    if download is None:
        download = "google.colab" in sys.modules
    if download:
        text = _download_corpus(Path(path) if path is not None else default_cache_path(), timeout)
        if text is not None:
            say(f"tiny Shakespeare: {len(text):,} characters, downloaded from {TINY_SHAKESPEARE_URL}")
            return text
    say(f"tiny Shakespeare is not here (no local copy: pass a path or set ${CORPUS_ENV}"
        + ("" if download else "; and no download was asked for: download=True")
        + "), so this is the course's offline corpus, a play generated from chapter 2's sentences")
    return offline_corpus()


def _download_corpus(path: Path, timeout: float) -> str | None:
    """Download tiny Shakespeare and cache it at ``path``; None (with a warning) when that fails."""
    try:
        text = _download(TINY_SHAKESPEARE_URL, timeout).decode("utf-8")
        if not text.strip():
            raise ValueError("the server sent an empty file")
    except (OSError, ValueError, http.client.HTTPException) as error:  # URLError and timeouts are OSErrors
        warnings.warn(f"could not download tiny Shakespeare ({error}); using the course's offline corpus instead",
                      RuntimeWarning, stacklevel=3)
        return None
    try:  # write to a temporary file first: an interrupted run never leaves half a corpus in the cache
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except OSError as error:  # a read-only home directory: the text is still good, only not cached
        warnings.warn(f"could not cache the corpus at {path} ({error})", RuntimeWarning, stacklevel=3)
    return text


def lm_batches(ids: Tensor, context: int, batch_size: int, seed: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless language-modelling batches: random windows of ``ids`` and the windows one token later.

    Args:
        ids: the whole corpus as one sequence of token ids.
        context: tokens per window (the model's context length).
        batch_size: windows per batch.
        seed: seed of the batches' own generator (the same seed gives the same batches).

    Shape:
        - ids: ``(N,)`` with ``N > context``
        - yields ``(inputs, targets)``, each ``(batch_size, context)``; ``targets[:, t]`` is the token
          after ``inputs[:, t]``
    """
    if ids.dim() != 1:
        raise ValueError(f"ids must be one sequence (N,), got shape {tuple(ids.shape)}")
    if ids.numel() <= context:
        raise ValueError(f"a window of {context} tokens and its next token need more than {ids.numel()} tokens")
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.arange(context + 1)  # (context + 1,)
    while True:
        starts = torch.randint(0, ids.numel() - context, (batch_size, 1), generator=generator)  # (B, 1)
        windows = ids[starts + offsets]  # (B, context + 1)
        yield windows[:, :-1], windows[:, 1:]
