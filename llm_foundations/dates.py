"""Date normalisation, the sequence-to-sequence task of chapter 10, generated here (never downloaded).

A source is a date written the way people write dates ("Sat, 5 March 1994", "03/05/94",
"5th of March 1994", "1994.03.05", ...); its target is the ISO form "1994-03-05". The model has
to learn month names and abbreviations, ordinal suffixes, two-digit years, the order of day
and month in each format, and to ignore the weekday. Every format is unambiguous on its own
(slashes are month/day/year, as in the US; dots and dashes day.month.year, as in most of
Europe), so a perfect model is possible.

Characters are the tokens. Source and target share one vocabulary (:data:`VOCAB`), so the
model can tie its embeddings. Ids ``0, 1, 2`` are ``<pad>``, ``<bos>``, ``<eos>``.

Everything is deterministic: the same seed gives the same dates on every machine, drawn from a
private :class:`random.Random`, never the global random state.
"""

from __future__ import annotations

import datetime
import random

import torch
from torch import Tensor

__all__ = [
    "BOS", "EOS", "FORMATS", "PAD", "VOCAB", "date_batches", "decode_ids", "encode_batch", "exact_match",
    "format_date", "random_dates",
]

PAD, BOS, EOS = 0, 1, 2

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


#: Each format as (name, function of a date): the surface forms of the source side.
FORMATS = {
    "iso": lambda d: d.isoformat(),
    "us_short": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",
    "us_long": lambda d: f"{d.month}/{d.day}/{d.year}",
    "dotted": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "dashed": lambda d: f"{d.day}-{d.month}-{d.year}",
    "year_dotted": lambda d: f"{d.year}.{d.month:02d}.{d.day:02d}",
    "day_month_year": lambda d: f"{d.day} {_MONTHS[d.month - 1]} {d.year}",
    "short_month": lambda d: f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year % 100:02d}",
    "month_day_year": lambda d: f"{_MONTHS[d.month - 1]} {d.day}, {d.year}",
    "short_month_day": lambda d: f"{_MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    "ordinal": lambda d: f"{_ordinal(d.day)} of {_MONTHS[d.month - 1]} {d.year}",
    "weekday_short": lambda d: f"{_DAYS[d.weekday()][:3]}, {d.day} {_MONTHS[d.month - 1]} {d.year}",
    "weekday_long": lambda d: f"{_DAYS[d.weekday()]} {_ordinal(d.day)} {_MONTHS[d.month - 1]} {d.year}",
    "upper": lambda d: f"{d.day} {_MONTHS[d.month - 1].upper()} {d.year}",
    "lower": lambda d: f"{_MONTHS[d.month - 1].lower()} {_ordinal(d.day)}, {d.year}",
}

_FIRST, _LAST = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)  # two-digit years: 50-99 -> 19xx

#: The shared character vocabulary: the three special tokens, then every character any format uses.
VOCAB: list[str] = ["<pad>", "<bos>", "<eos>"] + sorted(
    set("0123456789-/.,: ")
    | set("".join(_MONTHS + _DAYS))
    | set("".join(_MONTHS + _DAYS).upper())
    | set("".join(_MONTHS + _DAYS).lower())
    | set("stndrhof")
)
_INDEX = {ch: i for i, ch in enumerate(VOCAB)}


def format_date(date: datetime.date, style: str) -> str:
    """``date`` written in the format called ``style`` (a key of :data:`FORMATS`)."""
    if style not in FORMATS:
        raise ValueError(f"unknown date format {style!r}; the formats are {sorted(FORMATS)}")
    return FORMATS[style](date)


def random_dates(n: int, seed: int = 0, styles: list[str] | None = None) -> list[tuple[str, str]]:
    """``n`` (source, target) pairs: a uniformly random date between 1950 and 2049 in a random format.

    Args:
        n: number of pairs.
        seed: the same seed gives the same pairs (use different seeds for training and held-out sets).
        styles: formats to draw from (default: all of :data:`FORMATS`).
    """
    rng = random.Random(seed)
    styles = styles or list(FORMATS)
    span = (_LAST - _FIRST).days
    pairs = []
    for _ in range(n):
        date = _FIRST + datetime.timedelta(days=rng.randint(0, span))
        pairs.append((format_date(date, rng.choice(styles)), date.isoformat()))
    return pairs


def encode_batch(texts: list[str], bos: bool = False, eos: bool = False, length: int | None = None) -> Tensor:
    """Character ids of ``texts``, padded with ``PAD`` on the right to a common length.

    Args:
        texts: strings over :data:`VOCAB`'s characters (an unknown character raises ``ValueError``).
        bos, eos: start each row with ``BOS`` / end it with ``EOS``.
        length: pad to this length (default: the longest row).

    Returns:
        ``(B, L)`` long tensor.
    """
    if not texts:
        raise ValueError("encode_batch needs at least one text")
    rows = []
    for text in texts:
        unknown = sorted(set(text) - set(_INDEX))
        if unknown:
            raise ValueError(f"characters not in the date vocabulary: {unknown} (in {text!r})")
        rows.append([BOS] * bos + [_INDEX[ch] for ch in text] + [EOS] * eos)
    width = max(len(r) for r in rows) if length is None else length
    if any(len(r) > width for r in rows):
        raise ValueError(f"a row is longer than length={width}")
    return torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.long)


def decode_ids(ids: Tensor | list[int]) -> str:
    """The text of one row of ids: specials dropped, stopping at the first ``EOS``."""
    chars = []
    for i in (ids.tolist() if isinstance(ids, Tensor) else ids):
        if i == EOS:
            break
        if i > EOS:
            chars.append(VOCAB[i])
    return "".join(chars)


def date_batches(pairs: list[tuple[str, str]], batch_size: int, seed: int = 0):
    """Endless ``(src_ids, tgt_ids)`` batches drawn from ``pairs``, reshuffled every epoch.

    ``src_ids``: ``(B, L_s)`` padded sources; ``tgt_ids``: ``(B, 12)``, ``BOS`` + 10 characters + ``EOS``.
    """
    rng = random.Random(seed)
    order = list(range(len(pairs)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            chosen = [pairs[i] for i in order[start : start + batch_size]]
            yield encode_batch([s for s, _ in chosen]), encode_batch([t for _, t in chosen], bos=True, eos=True)


def exact_match(model, pairs: list[tuple[str, str]], batch_size: int = 500, device: torch.device | str = "cpu") -> float:
    """Fraction of ``pairs`` whose greedy decoding by ``model`` (a Transformer) is exactly the target."""
    from llm_foundations.attention import padding_mask
    from llm_foundations.model import greedy_decode

    correct = 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        src = encode_batch([s for s, _ in chunk]).to(device)
        out = greedy_decode(model, src, BOS, EOS, max_len=12, src_mask=padding_mask(src, PAD))
        correct += sum(decode_ids(row) == target for row, (_, target) in zip(out.cpu(), chunk))
    return correct / len(pairs)
