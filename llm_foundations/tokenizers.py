"""From text to token ids: a character tokenizer and byte-level byte-pair encoding (chapter 2).

Two ways to cut text into pieces a model can count:

- :class:`CharTokenizer`: one token per character, the vocabulary being the characters of a
  training text. Small and exact, but it cannot encode a character it has not seen.
- Byte-level BPE (:func:`train_bpe`, :func:`bpe_encode`, :func:`bpe_decode`), after Sennrich et
  al. (2016) applied to UTF-8 bytes: start from the 256 byte values, so that *every* string can be
  encoded, then repeatedly merge the most frequent adjacent pair of tokens into a new token.

Ids and merges (byte-level BPE):

- ids ``0..255`` are the bytes of the UTF-8 encoding;
- merge ``i`` (0-based) is a pair ``(a, b)`` of existing ids and creates id ``256 + i``;
- a merge may only use ids that exist before it: ``a, b < 256 + i``.

Counting pairs. The *count* of a pair ``(a, b)`` in a sequence ``s`` is the number of positions
``j`` with ``(s[j], s[j+1]) == (a, b)``: every adjacent position counts, so overlapping
occurrences count separately (``aaa`` holds the pair ``(a, a)`` twice). Merging replaces
occurrences **from left to right without overlap** (``aaa`` becomes ``[aa, a]``, ``aaaa`` becomes
``[aa, aa]``). Training and encoding use this same merge, so encoding a training text reproduces
the sequence training ended with.

Ties. Among the pairs with the largest count, training picks the one that **occurs first**: whose
first occurrence in the current sequence is leftmost. (This is what ``max(counts, key=counts.get)``
does over a ``Counter`` filled from left to right, since dictionaries keep insertion order.)

Texts must be encodable as UTF-8; the only Python strings that are not are those holding lone
surrogate code points (``"\\ud800"``), for which the functions raise ``ValueError``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

#: Number of byte values; BPE ids below this are raw bytes.
NUM_BYTES = 256


class CharTokenizer:
    """One token per character; the vocabulary is the sorted set of characters of ``text``.

    Character ``c`` gets id ``i`` when it is the ``i``-th smallest character of ``text`` (Python
    compares characters by code point), so the ids do not depend on the order in which characters
    appear, nor on Python's hash seed.

    Args:
        text: the training text whose characters form the vocabulary.

    Attributes:
        vocab: the characters, sorted; ``vocab[i]`` is the character of id ``i``.
        vocab_size: ``len(vocab)``.
    """

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer needs a str, got {type(text).__name__}")
        self.vocab: list[str] = sorted(set(text))
        self.vocab_size = len(self.vocab)
        self._ids = {ch: i for i, ch in enumerate(self.vocab)}

    def encode(self, s: str) -> list[int]:
        """The id of every character of ``s``, in order.

        Raises:
            ValueError: ``s`` holds a character that is not in the vocabulary; the message names it.
        """
        ids = []
        for position, ch in enumerate(s):
            if ch not in self._ids:
                raise ValueError(
                    f"unknown character {ch!r} (U+{ord(ch):04X}) at position {position}: it does not "
                    "occur in the text this tokenizer was built from"
                )
            ids.append(self._ids[ch])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of ``ids`` joined into a string (the inverse of :meth:`encode`).

        Args:
            ids: token ids (a list, or a 1-D integer tensor).

        Raises:
            ValueError: an id is outside ``0..vocab_size - 1``.
        """
        chars = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} is outside the vocabulary 0..{self.vocab_size - 1}")
            chars.append(self.vocab[i])
        return "".join(chars)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def utf8_bytes(text: str) -> list[int]:
    """The UTF-8 bytes of ``text`` as a list of ints in ``0..255`` (BPE's starting sequence)."""
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    try:
        return list(text.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise ValueError(f"the text cannot be encoded as UTF-8 ({error.reason}): {error.object[error.start:error.end]!r}") from None


def pair_counts(ids: Sequence[int]) -> Counter:
    """Count every adjacent pair of ``ids`` (overlapping occurrences count separately).

    Returns:
        A :class:`collections.Counter` ``{(a, b): count}`` whose keys are in order of first
        occurrence.
    """
    return Counter(zip(ids, ids[1:]))


def merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each occurrence of ``pair`` in ``ids`` by ``new_id``, left to right, without overlap.

    ``merge_pair([a, a, a], (a, a), X) == [X, a]``.
    """
    a, b = pair
    merged: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def train_bpe(text: str, num_merges: int) -> list[tuple[int, int]]:
    """Learn up to ``num_merges`` byte-level BPE merges from ``text`` (Sennrich et al., 2016).

    Start from the UTF-8 bytes of ``text``. At each step, count the adjacent pairs of the current
    sequence (overlapping occurrences count separately; see the module docstring), take the pair
    with the largest count, ties going to the pair whose first occurrence is leftmost, replace its
    occurrences left to right without overlap by the new id ``256 + i``, and record the pair.
    Stop after ``num_merges`` merges, or earlier when no pair occurs at least twice (a merge
    that saves one token learns nothing reusable).

    Args:
        text: the training text.
        num_merges: the largest number of merges to learn (``>= 0``).

    Returns:
        The merges, in the order they were learned: ``merges[i] == (a, b)`` means ids ``a`` and
        ``b`` side by side become id ``256 + i``.

    Raises:
        ValueError: ``num_merges`` is negative, or ``text`` cannot be encoded as UTF-8.
    """
    if isinstance(num_merges, bool) or not isinstance(num_merges, int) or num_merges < 0:
        raise ValueError(f"num_merges must be a non-negative int, got {num_merges!r}")
    ids = utf8_bytes(text)
    merges: list[tuple[int, int]] = []
    for i in range(num_merges):
        counts = pair_counts(ids)
        if not counts:
            break
        pair = max(counts, key=counts.get)  # the first of the most frequent pairs
        if counts[pair] < 2:
            break
        ids = merge_pair(ids, pair, NUM_BYTES + i)
        merges.append(pair)
    return merges


def _check_merges(merges: Sequence[tuple[int, int]]) -> None:
    for i, pair in enumerate(merges):
        if len(pair) != 2 or not all(0 <= int(t) < NUM_BYTES + i for t in pair):
            raise ValueError(
                f"merge {i} is {tuple(pair)!r}: a merge must be a pair of ids that exist before it, "
                f"i.e. in 0..{NUM_BYTES + i - 1}"
            )


def bpe_encode(text: str, merges: Sequence[tuple[int, int]]) -> list[int]:
    """Encode ``text`` with learned merges: UTF-8 bytes, then every merge **in training order**.

    Merge ``i`` replaces the occurrences of ``merges[i]`` left to right without overlap, exactly
    as in :func:`train_bpe`, so ``bpe_encode(t, train_bpe(t, n))`` is the sequence training ended
    with. (Applying, as many libraries do, the lowest-numbered merge present until none is left
    gives the same ids: a merge only creates pairs involving its new id, which only later merges
    can use.)

    Args:
        text: any string encodable as UTF-8 (unseen words, emoji and other scripts included).
        merges: the output of :func:`train_bpe`.

    Returns:
        The token ids, each in ``0..255 + len(merges)``.
    """
    _check_merges(merges)
    ids = utf8_bytes(text)
    for i, pair in enumerate(merges):
        ids = merge_pair(ids, tuple(pair), NUM_BYTES + i)
    return ids


def bpe_vocabulary(merges: Sequence[tuple[int, int]]) -> list[bytes]:
    """The bytes each id stands for: ``vocab[i]`` for ``i < 256`` is ``bytes([i])``, and merge ``i``
    gives ``vocab[256 + i] = vocab[a] + vocab[b]``."""
    _check_merges(merges)
    vocab = [bytes([i]) for i in range(NUM_BYTES)]
    for a, b in merges:
        vocab.append(vocab[int(a)] + vocab[int(b)])
    return vocab


def bpe_decode(ids: Iterable[int], merges: Sequence[tuple[int, int]]) -> str:
    """Turn BPE ids back into text: concatenate their bytes, then decode the bytes as UTF-8.

    The bytes of all tokens are joined **before** decoding, because one character's bytes may be
    spread over several tokens. Byte sequences that are not valid UTF-8 (e.g. the first two
    bytes of a four-byte emoji) decode to the replacement character ``"\\ufffd"``, as
    ``bytes.decode("utf-8", errors="replace")`` does.

    Args:
        ids: token ids (a list, or a 1-D integer tensor).
        merges: the merges the ids were made with.

    Returns:
        The text; ``bpe_decode(bpe_encode(t, merges), merges) == t`` for every UTF-8-encodable ``t``.

    Raises:
        ValueError: an id is outside ``0..255 + len(merges)``.
    """
    vocab = bpe_vocabulary(merges)
    pieces = []
    for i in ids:
        i = int(i)
        if not 0 <= i < len(vocab):
            raise ValueError(f"id {i} is outside the vocabulary 0..{len(vocab) - 1} of {len(merges)} merges")
        pieces.append(vocab[i])
    return b"".join(pieces).decode("utf-8", errors="replace")


def bpe_token_strings(ids: Iterable[int], merges: Sequence[tuple[int, int]]) -> list[str]:
    """How each token reads on its own, for display: its bytes decoded as UTF-8, with every byte
    that is not part of a whole character written as an escape such as ``\\xf0``."""
    vocab = bpe_vocabulary(merges)
    return [vocab[int(i)].decode("utf-8", errors="backslashreplace") for i in ids]
