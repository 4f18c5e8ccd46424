"""Checks and known mistakes for the chapter 2 exercise (tokenizers and embeddings).

The general checks live in :mod:`llm_foundations.checks.core`; this module adds what chapter 2's
test cells need besides: comparing lists and strings with hints, forbidding a named PyTorch
function, random Unicode text made with a local random generator, and what the classic mistakes
in each task return (so that a wrong answer can be named). Like every check, these raise
``AssertionError`` and write nothing to stderr.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

import llm_foundations.embeddings as _reference_embeddings
import llm_foundations.tokenizers as _reference_tokenizers
import llm_foundations.checks.core as core
from llm_foundations.tokenizers import bpe_vocabulary, merge_pair

# ----------------------------------------------------------------------------- comparing values


def _show(value: object, limit: int = 12) -> str:
    if isinstance(value, (list, tuple)) and len(value) > limit:
        shown = ", ".join(repr(v) for v in value[:limit])
        return f"[{shown}, ...] ({len(value)} items)"
    if isinstance(value, str) and len(value) > 80:
        return repr(value[:80]) + f"... ({len(value)} characters)"
    return repr(value)


def as_int_list(got: object, what: str) -> list[int]:
    """``got`` as a list of Python ints; fail clearly unless it is a sequence of integers."""
    if isinstance(got, Tensor):
        if got.dim() != 1 or got.dtype.is_floating_point:
            raise AssertionError(f"{what}: expected a list of ints, got a tensor of shape {tuple(got.shape)} and dtype {got.dtype}")
        return [int(v) for v in got.tolist()]
    if not isinstance(got, (list, tuple)):
        raise AssertionError(f"{what}: expected a list of ints, got {type(got).__name__}: {_show(got)}")
    out = []
    for position, v in enumerate(got):
        if isinstance(v, Tensor) and v.dim() == 0 and not v.dtype.is_floating_point:
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise AssertionError(f"{what}: item {position} is {v!r} ({type(v).__name__}), expected an int")
        out.append(int(v))
    return out


def as_merges(got: object, what: str) -> list[tuple[int, int]]:
    """``got`` as a list of ``(int, int)`` tuples; fail clearly unless it is a list of pairs."""
    if not isinstance(got, (list, tuple)):
        raise AssertionError(f"{what}: expected a list of (int, int) pairs, got {type(got).__name__}: {_show(got)}")
    merges = []
    for position, pair in enumerate(got):
        try:
            a, b = pair
        except (TypeError, ValueError):
            raise AssertionError(f"{what}: merge {position} is {pair!r}, expected a pair (a, b) of ids") from None
        a, b = as_int_list([a, b], f"{what}, merge {position}")
        merges.append((a, b))
    return merges


def expect_equal(
    got: object,
    expected: object,
    what: str,
    hints: Mapping[str, object] | None = None,
    hint: str = "",
) -> object:
    """Fail unless ``got == expected`` (lists, tuples, strings, ints).

    Args:
        got: the student's result (already normalised, e.g. with :func:`as_int_list`).
        expected: the right answer.
        what: what is being checked, in words.
        hints: known mistakes, ``{explanation: what that mistake returns}``.
        hint: a hint to give when no known mistake matches.
    """
    if got == expected:
        return got
    message = f"{what} is wrong.\n  expected {_show(expected)}\n  got      {_show(got)}"
    if isinstance(got, (list, tuple, str)) and isinstance(expected, (list, tuple, str)):
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        message += f"\n  (they first differ at position {first}; lengths {len(got)} and {len(expected)})"
    for explanation, mistake in (hints or {}).items():
        if mistake != expected and got == mistake:
            raise AssertionError(f"{message}\nHint: this is what happens when {explanation}.")
    raise AssertionError(f"{message}\nHint: {hint}" if hint else message)


def expect_error_naming(error: type[BaseException], fn: Callable[[], object], name: str, what: str, hint: str = "") -> None:
    """Fail unless ``fn()`` raises ``error`` with a message that contains ``name``."""
    try:
        fn()
    except error as raised:
        if name not in str(raised) and repr(name) not in str(raised):
            raise AssertionError(
                f"{what}: raised {error.__name__}({str(raised)!r}), but the message should name {name!r} "
                "so that the user knows what to fix"
            ) from None
        return
    except Exception as other:  # noqa: BLE001 - reported to the student
        raise AssertionError(
            f"{what}: expected {error.__name__}, got {type(other).__name__}: {other}" + (f"\nHint: {hint}" if hint else "")
        ) from None
    raise AssertionError(f"{what}: expected {error.__name__}, but nothing was raised" + (f"\nHint: {hint}" if hint else ""))


def call_hinted(fn: Callable, *args, what: str, hints: Mapping[str, str], **kwargs):
    """Call ``fn``; if it raises, fail with the error and the hint whose key occurs in the error's text."""
    try:
        return fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - turned into a teaching failure
        text = f"{type(error).__name__}: {error}"
        hint = next((h for key, h in hints.items() if key in text), "")
        if not hint and isinstance(error, NotImplementedError):
            hint = "you have not written this part yet: replace `raise NotImplementedError()` with your code."
        raise AssertionError(f"{what} raised {text}" + (f"\nHint: {hint}" if hint else "")) from error


@contextlib.contextmanager
def forbid_torch_functions(what: str, forbidden: Sequence[str], instead: str) -> Iterator[None]:
    """Fail if the code run inside the block calls a torch function whose name contains one of ``forbidden``.

    Args:
        what: the student's function, for the message.
        forbidden: name fragments, e.g. ``("cosine_similarity",)``.
        instead: what to build it from, for the message.
    """
    with core.forbid_torch_functions(what, forbidden, "{what} calls PyTorch's built-in {used}, the very thing "
                                         f"this task asks you to write. Build it yourself from {instead}; the "
                                         "built-in is what the tests compare you with."):
        yield


def expect_finite(got: object, what: str, hint: str = "") -> Tensor:
    """Fail unless ``got`` is a tensor without NaN or infinite entries."""
    if not isinstance(got, Tensor):
        raise AssertionError(f"{what}: expected a torch.Tensor, got {type(got).__name__}: {got!r:.200}")
    bad = ~torch.isfinite(got.detach())
    if bad.any():
        kinds = sorted({"NaN" if math.isnan(v) else str(v) for v in got.detach()[bad].flatten()[:20].float().tolist()})
        raise AssertionError(
            f"{what}: your result has {int(bad.sum())} non-finite entries ({', '.join(kinds)})."
            + (f"\nHint: {hint}" if hint else "")
        )
    return got


# ----------------------------------------------------------------------------- random texts

_ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()\n\t"
_ACCENTED = "éèêëàâäçñöüßøåæœíóúÉÀÇ"
_SCRIPTS = "αβγδλμπσωΩжзийклмнопрשלוםمرحبا"
_CJK = "世界你好日本語漢字中文한국어ひらがなカタカナ"
_EMOJI = ["🙂", "🦙", "👍🏽", "👩‍💻", "🇯🇵", "❤️", "🎉", "🐍", "🫠", "👨‍👩‍👧‍👦"]
_COMBINING = ["e\u0301", "a\u0308", "n\u0303", "\u200d", "\ufeff"]


def random_code_point(rng: random.Random) -> str:
    """Any Unicode scalar value (every code point except the surrogates U+D800..U+DFFF)."""
    while True:
        cp = rng.randrange(0x110000)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def random_unicode_text(rng: random.Random, length: int) -> str:
    """A random string of about ``length`` pieces mixing ASCII, accents, other scripts, CJK, emoji
    (with modifiers and zero-width joiners), combining marks and arbitrary code points."""
    pieces = []
    for _ in range(length):
        kind = rng.random()
        if kind < 0.45:
            pieces.append(rng.choice(_ASCII))
        elif kind < 0.55:
            pieces.append(rng.choice(_ACCENTED))
        elif kind < 0.65:
            pieces.append(rng.choice(_SCRIPTS))
        elif kind < 0.75:
            pieces.append(rng.choice(_CJK))
        elif kind < 0.87:
            pieces.append(rng.choice(_EMOJI))
        elif kind < 0.92:
            pieces.append(rng.choice(_COMBINING))
        else:
            pieces.append(random_code_point(rng))
    return "".join(pieces)


def random_repetitive_text(rng: random.Random, length: int) -> str:
    """A random string built from a few repeated pieces (some multi-byte), so that BPE has many
    pairs to merge, ties to break, and overlapping runs such as ``aaa``."""
    units = rng.sample(["a", "b", "c", "ab", "aa", " ", "the ", "é", "🙂", "中", "xy", "\n"], rng.randint(2, 5))
    weights = [rng.random() + 0.1 for _ in units]
    return "".join(rng.choices(units, weights)[0] for _ in range(length))


# ----------------------------------------------------------------------------- BPE mistakes


def _merge_overlapping(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    # finds every position, overlaps included, and replaces them from the right: "aaa" -> [X]
    positions = [i for i in range(len(ids) - 1) if (ids[i], ids[i + 1]) == pair]
    ids = list(ids)
    for i in reversed(positions):
        ids[i : i + 2] = [new_id]
    return ids


def _train_variant(
    text: str,
    num_merges: int,
    choose: str = "first",
    merge: Callable = merge_pair,
    first_id: int = 256,
    min_count: int = 2,
    recount: bool = True,
) -> list[tuple[int, int]]:
    ids = list(text.encode("utf-8"))
    merges: list[tuple[int, int]] = []
    counts = Counter(zip(ids, ids[1:]))
    for i in range(num_merges):
        if recount:
            counts = Counter(zip(ids, ids[1:]))
        if not counts:
            break
        if choose == "first":
            pair = max(counts, key=counts.get)
        elif choose == "last":
            pair = sorted(counts.items(), key=lambda item: item[1])[-1][0]
        elif choose == "largest":
            pair = max(counts, key=lambda p: (counts[p], p))
        else:  # smallest
            pair = min(counts, key=lambda p: (-counts[p], p))
        if counts[pair] < min_count:
            break
        ids = merge(ids, pair, first_id + i)
        merges.append(pair)
        if not recount:
            del counts[pair]
    return merges


def train_bpe_mistakes(text: str, num_merges: int) -> dict[str, list[tuple[int, int]]]:
    """What common mistakes in ``train_bpe`` return: ``{explanation: merges}``."""
    return {
        "ties are broken towards the pair that occurs last (the most frequent pair that occurs FIRST must win)":
            _train_variant(text, num_merges, choose="last"),
        "ties are broken towards the largest pair (a, b) (the most frequent pair that occurs FIRST must win)":
            _train_variant(text, num_merges, choose="largest"),
        "ties are broken towards the smallest pair (a, b) (the most frequent pair that occurs FIRST must win)":
            _train_variant(text, num_merges, choose="smallest"),
        "overlapping occurrences are all merged (in 'aaa' only the first 'aa' may become a token: "
        "merge left to right and skip past each merged pair)": _train_variant(text, num_merges, merge=_merge_overlapping),
        "new ids start at 255 instead of 256": _train_variant(text, num_merges, first_id=255),
        "new ids start at 257 instead of 256": _train_variant(text, num_merges, first_id=257),
        "training goes on while the best pair occurs once (stop when no pair occurs at least twice)":
            _train_variant(text, num_merges, min_count=1),
        "the pairs are counted only once, on the bytes, instead of on the current sequence at every step":
            _train_variant(text, num_merges, recount=False),
    }


def _encode_variant(ids: list[int], merges: Sequence[tuple[int, int]], order: Sequence[int], merge: Callable = merge_pair) -> list[int]:
    for i in order:
        ids = merge(ids, tuple(merges[i]), 256 + i)
    return ids


def bpe_encode_mistakes(text: str, merges: Sequence[tuple[int, int]]) -> dict[str, list[int]]:
    """What common mistakes in ``bpe_encode`` return: ``{explanation: ids}``."""
    data = list(text.encode("utf-8"))
    forward = range(len(merges))
    return {
        "the merges are applied in reverse order (apply them in the order they were learned)":
            _encode_variant(data, merges, list(reversed(forward))),
        "the text is split into code points with ord() instead of UTF-8 bytes (use text.encode('utf-8'))":
            _encode_variant([ord(c) for c in text], merges, forward),
        "overlapping occurrences are all merged (merge left to right and skip past each merged pair)":
            _encode_variant(data, merges, forward, _merge_overlapping),
        "no merge is applied": data,
    }


def bpe_decode_mistakes(ids: Sequence[int], merges: Sequence[tuple[int, int]]) -> dict[str, str]:
    """What common mistakes in ``bpe_decode`` return: ``{explanation: text}``."""
    vocab = bpe_vocabulary(merges)
    data = b"".join(vocab[i] for i in ids)
    return {
        "invalid bytes are dropped (errors='ignore'); they must become the replacement character '\\ufffd' "
        "(errors='replace')": data.decode("utf-8", errors="ignore"),
        "the bytes are decoded as latin-1 instead of UTF-8": data.decode("latin-1"),
        "each token is decoded on its own: a character whose bytes are spread over two tokens becomes "
        "replacement characters (join all the bytes first, then decode once)":
            "".join(vocab[i].decode("utf-8", errors="replace") for i in ids),
    }


BPE_DECODE_ERROR_HINTS = {
    "UnicodeDecodeError": "some byte sequences are not valid UTF-8; decode with errors='replace' so that they "
    "become the replacement character instead of an error.",
    "codec can't decode": "some byte sequences are not valid UTF-8; decode with errors='replace'.",
    "bytes must be in range": "bytes([...]) only takes values 0..255: turn merged ids back into their bytes "
    "first (build the bytes of every id from the merges).",
    "NotImplementedError": "you have not written this part yet: replace `raise NotImplementedError()` with your code.",
}

BPE_ENCODE_ERROR_HINTS = {
    "UnicodeEncodeError": "encode the text with text.encode('utf-8').",
    "NotImplementedError": "you have not written this part yet: replace `raise NotImplementedError()` with your code.",
}


# ----------------------------------------------------------------------------- embedding mistakes


def token_embedding_mistakes(weight: Tensor, ids: Tensor) -> dict[str, Tensor]:
    """What common mistakes in ``TokenEmbedding.forward`` return: ``{explanation: output}``."""
    d = weight.size(1)
    rows = weight[ids]
    return {
        "the rows are not multiplied by sqrt(d_model)": rows,
        "the rows are divided by sqrt(d_model) instead of multiplied": rows / math.sqrt(d),
        "the rows are multiplied by d_model instead of sqrt(d_model)": rows * d,
    }


def cosine_mistakes(x: Tensor) -> dict[str, Tensor]:
    """What common mistakes in ``cosine_similarity_matrix`` return: ``{explanation: output}``."""
    rows = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    cols = x / x.norm(dim=0, keepdim=True).clamp_min(1e-8)
    return {
        "the vectors are not normalised (that is the dot product, not the cosine)": x @ x.T,
        "the norms are taken over dim=0 (the columns) instead of over each row": cols @ cols.T,
        "only one side of the product is normalised": rows @ x.T,
        "the result is divided by the squared norms instead of the norms": (x @ x.T) / (x.norm(dim=-1) ** 2).clamp_min(1e-8)[:, None],
    }


def nearest_neighbor_mistakes(embeddings: Tensor, index: int, k: int) -> dict[str, list[int]]:
    """What common mistakes in ``nearest_neighbors`` return: ``{explanation: indices}``."""
    unit = embeddings / embeddings.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    sims = unit @ unit[index]
    excluded = sims.clone()
    excluded[index] = float("-inf")
    dots = embeddings @ embeddings[index]
    dots[index] = float("-inf")
    others = torch.ones_like(sims, dtype=torch.bool)
    others[index] = False
    return {
        "the row itself is not excluded (it is its own most similar row)": torch.sort(sims, descending=True, stable=True).indices[:k].tolist(),
        "the neighbours are sorted from least to most similar": torch.sort(excluded, descending=True, stable=True).indices[:k].flip(0).tolist(),
        "the least similar rows are returned (largest=False or an ascending sort)":
            torch.sort(sims.masked_fill(~others, float("inf")), stable=True).indices[:k].tolist(),
        "one neighbour too few is returned (off by one)": torch.sort(excluded, descending=True, stable=True).indices[: max(k - 1, 0)].tolist(),
        "the most similar row is dropped as if it were the row itself, which was already excluded (topk(k + 1)[1:])":
            torch.sort(excluded, descending=True, stable=True).indices[1 : k + 1].tolist(),
        "the dot product is used instead of the cosine (longer vectors win)": torch.sort(dots, descending=True, stable=True).indices[:k].tolist(),
    }


def sgns_loss_mistakes(center: Tensor, context: Tensor, negatives: Tensor) -> dict[str, Tensor]:
    """What common mistakes in ``sgns_loss`` return: ``{explanation: loss}``."""
    pos = (center * context).sum(-1)  # (B,)
    neg = torch.einsum("bkd,bd->bk", negatives, center)  # (B, K)
    with torch.no_grad():
        mistakes = {
            "the negative-sample term is added instead of subtracted (-log σ(u_o·v_c) - Σ log σ(-u_k·v_c))":
                (-F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean(),
            "the minus sign inside σ(-u_k·v_c) is missing": (-F.logsigmoid(pos) - F.logsigmoid(neg).sum(-1)).mean(),
            "the loss is summed over the batch instead of averaged": (-F.logsigmoid(pos) - F.logsigmoid(-neg).sum(-1)).sum(),
            "the negatives are averaged over K instead of summed": (-F.logsigmoid(pos) - F.logsigmoid(-neg).mean(-1)).mean(),
            "the loss is not negated (it must be minimised: -log σ(...))": (F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean(),
            "the loss is averaged over every term (batch and negatives together)":
                torch.cat([-F.logsigmoid(pos)[:, None], -F.logsigmoid(-neg)], 1).mean(),
            "the negative term is left out": (-F.logsigmoid(pos)).mean(),
        }
        if negatives.size(1) == center.size(0):
            # (B, K, d) * (B, d) broadcasts when K == B, pairing negative k with center k
            mistakes["the centers are broadcast against the wrong axis: use center.unsqueeze(1), shape (B, 1, d)"] = (
                -F.logsigmoid(pos) - F.logsigmoid(-(negatives * center).sum(-1)).sum(-1)
            ).mean()
    return mistakes


SGNS_HINT = (
    "ℓ = -log σ(u_o·v_c) - Σ_k log σ(-u_k·v_c) for every pair, then the mean over the batch; "
    "use F.logsigmoid, which stays finite where log(sigmoid(x)) becomes -inf"
)


#: Fail if the code in the block calls into this chapter's reference modules
#: (``llm_foundations.tokenizers``, ``llm_foundations.embeddings``), even through a wrapper.
forbid_reference = core.reference_guard(modules=(_reference_tokenizers, _reference_embeddings))
