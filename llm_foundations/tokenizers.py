"""From text to token ids: a character tokenizer and byte-level byte-pair encoding (chapter 2).

Two ways to cut text into pieces a model can count:

- :class:`CharTokenizer`: one token per character, the vocabulary being the characters of a
  training text. Small and exact, but it cannot encode a character it has not seen.
- Byte-level BPE (:func:`train_bpe`, :func:`bpe_encode`, :func:`bpe_decode`), after Sennrich et
  al. (2016) applied to UTF-8 bytes: start from the 256 byte values, so that *every* string can be
  encoded, then repeatedly merge the most frequent adjacent pair of tokens into a new token.
- :class:`ByteLevelBPE` (chapter 10): GPT-2's byte-level BPE. The text is first cut into pieces
  by GPT-2's pattern (:data:`GPT2_PATTERN`: words with their leading space, numbers, punctuation,
  whitespace), merges apply inside each piece by rank, and it reads GPT-2's own ``vocab.json``
  and ``merges.txt`` (or the merges of :func:`train_bpe`).

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


# --------------------------------------------------------------------------------------------
# GPT-2's byte-level BPE (chapter 10): pre-tokenisation, merges by rank, GPT-2's own files

#: GPT-2's pre-tokenisation pattern (Radford et al., 2019): English contractions, a run of letters,
#: of digits or of other symbols (each with at most one leading space), then whitespace. BPE runs
#: inside each piece, so no token spans a word and the punctuation or space after it.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _compiled_pattern():
    try:
        import regex  # the standard library's re has no \p{L} (letters) or \p{N} (digits)
    except ImportError as error:  # pragma: no cover - regex comes with transformers, and on Colab
        raise ImportError("ByteLevelBPE needs the `regex` package for GPT-2's pattern: pip install regex") from error
    return regex.compile(GPT2_PATTERN)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte, so that a vocabulary file is text.

    The 188 bytes that are printable Latin-1 characters (``!`` to ``~``, ``¡`` to ``¬``, ``®`` to
    ``ÿ``) stand for themselves; the other 68 (control bytes, the space, ...) get the characters
    ``U+0100`` onwards in byte order: the space is ``Ġ`` (U+0120), the newline ``Ċ`` (U+010A).
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {}, 0
    for byte in range(NUM_BYTES):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(NUM_BYTES + extra)
            extra += 1
    return mapping


class ByteLevelBPE:
    """A GPT-2-style byte-level BPE: GPT-2's pre-tokenisation, then merges applied by rank inside each piece.

    A token is a string of GPT-2's byte stand-ins (:func:`bytes_to_unicode`): ``"Ġthe"`` is the
    bytes of ``" the"``. Encoding splits the text with :data:`GPT2_PATTERN`, writes each piece's
    UTF-8 bytes as stand-ins, and then, while any adjacent pair of the piece's tokens is a merge,
    merges the pair of lowest rank (earliest learned) everywhere in the piece, left to right.
    Decoding joins the tokens, maps the stand-ins back to bytes and decodes UTF-8 (invalid
    sequences become ``"\\ufffd"``).

    Args:
        vocab: token string -> id (GPT-2's ``vocab.json``), every byte's stand-in included.
        merges: the merges in rank order, pairs of token strings (GPT-2's ``merges.txt``).

    Attributes:
        vocab, merges, vocab_size (the largest id + 1), ranks (pair -> rank).
    """

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]]):
        self.vocab = dict(vocab)
        self.merges = [tuple(pair) for pair in merges]
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.vocab_size = max(self.vocab.values()) + 1 if self.vocab else 0
        self._tokens = {i: token for token, i in self.vocab.items()}
        self._byte_symbol = bytes_to_unicode()
        self._symbol_byte = {symbol: byte for byte, symbol in self._byte_symbol.items()}
        missing = [symbol for symbol in self._byte_symbol.values() if symbol not in self.vocab]
        if missing:
            raise ValueError(f"the vocabulary must hold every byte's stand-in; missing {missing[:5]}")
        for a, b in self.merges:
            if a + b not in self.vocab:
                raise ValueError(f"merge ({a!r}, {b!r}) makes {a + b!r}, which is not in the vocabulary")
        self._pattern = _compiled_pattern()
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def from_gpt2_files(cls, vocab_path, merges_path) -> ByteLevelBPE:
        """Read GPT-2's ``vocab.json`` (token -> id) and ``merges.txt`` (a version line, then ``a b`` per line)."""
        import json

        with open(vocab_path, encoding="utf-8") as file:
            vocab = json.load(file)
        with open(merges_path, encoding="utf-8") as file:
            lines = file.read().split("\n")
        merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
        return cls(vocab, merges)

    def save_gpt2_files(self, folder) -> tuple[str, str]:
        """Write ``vocab.json`` and ``merges.txt`` in GPT-2's format (what Hugging Face ``tokenizers`` reads).

        Returns:
            The two paths.
        """
        import json
        import os

        os.makedirs(folder, exist_ok=True)
        vocab_path, merges_path = os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
        with open(vocab_path, "w", encoding="utf-8") as file:
            json.dump(self.vocab, file, ensure_ascii=False)
        with open(merges_path, "w", encoding="utf-8") as file:
            file.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self.merges))
        return vocab_path, merges_path

    @classmethod
    def from_merges(cls, merges: Sequence[tuple[int, int]]) -> ByteLevelBPE:
        """The tokenizer of merges learned by :func:`train_bpe` (or :meth:`train`), with the course's ids.

        Id ``i < 256`` is byte ``i`` and merge ``i`` makes id ``256 + i``, as in :func:`bpe_encode`;
        only the order in which merges are applied changes (by rank, inside GPT-2's pieces).
        """
        symbol = bytes_to_unicode()
        names = ["".join(symbol[byte] for byte in token) for token in bpe_vocabulary(merges)]
        vocab = {}
        for i, name in enumerate(names):
            vocab.setdefault(name, i)  # two merges can spell the same bytes: the first id keeps the name
        return cls(vocab, [(names[a], names[b]) for a, b in merges])

    @classmethod
    def train(cls, text: str, num_merges: int) -> ByteLevelBPE:
        """Learn up to ``num_merges`` merges GPT-2's way: pairs are counted inside the pattern's pieces only.

        Like :func:`train_bpe` (most frequent pair first, ties to the pair seen first, stop when no
        pair occurs twice), but a merge never crosses a piece boundary: no token ``"the "`` or ``"d."``.
        """
        if isinstance(num_merges, bool) or not isinstance(num_merges, int) or num_merges < 0:
            raise ValueError(f"num_merges must be a non-negative int, got {num_merges!r}")
        pieces = Counter(_compiled_pattern().findall(text))  # piece -> how often it occurs, in order of appearance
        words = [(utf8_bytes(piece), count) for piece, count in pieces.items()]
        merges: list[tuple[int, int]] = []
        for i in range(num_merges):
            counts: Counter = Counter()
            for ids, count in words:
                for pair in zip(ids, ids[1:]):
                    counts[pair] += count
            if not counts:
                break
            pair = max(counts, key=counts.get)
            if counts[pair] < 2:
                break
            words = [(merge_pair(ids, pair, NUM_BYTES + i), count) for ids, count in words]
            merges.append(pair)
        return cls.from_merges(merges)

    def pieces(self, text: str) -> list[str]:
        """The pre-tokenisation: ``text`` cut by :data:`GPT2_PATTERN` (the pieces join back to ``text``)."""
        if not isinstance(text, str):
            raise TypeError(f"expected a str, got {type(text).__name__}")
        return self._pattern.findall(text)

    def _bpe(self, piece: str) -> list[str]:
        if piece in self._cache:
            return self._cache[piece]
        tokens = [self._byte_symbol[byte] for byte in utf8_bytes(piece)]
        while len(tokens) > 1:
            ranked = [(self.ranks.get(pair, len(self.ranks)), pair) for pair in zip(tokens, tokens[1:])]
            rank, pair = min(ranked)
            if rank == len(self.ranks):  # no pair is a merge
                break
            merged, i = [], 0
            while i < len(tokens):
                if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) == pair:
                    merged.append(pair[0] + pair[1])
                    i += 2
                else:
                    merged.append(tokens[i])
                    i += 1
            tokens = merged
        if len(self._cache) < 100_000:
            self._cache[piece] = tokens
        return tokens

    def tokens(self, text: str) -> list[str]:
        """The token strings of ``text`` (byte stand-ins: ``"Ġthe"``), piece by piece."""
        return [token for piece in self.pieces(text) for token in self._bpe(piece)]

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``: any string encodable as UTF-8."""
        return [self.vocab[token] for token in self.tokens(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``: their bytes joined, then decoded as UTF-8 (invalid sequences: ``"\\ufffd"``)."""
        symbols = []
        for i in ids:
            i = int(i)
            if i not in self._tokens:
                raise ValueError(f"id {i} is not in the vocabulary of {len(self.vocab)} tokens")
            symbols.append(self._tokens[i])
        data = bytes(self._symbol_byte[s] for s in "".join(symbols) if s in self._symbol_byte)
        return data.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"ByteLevelBPE(vocab_size={self.vocab_size}, merges={len(self.merges)})"
