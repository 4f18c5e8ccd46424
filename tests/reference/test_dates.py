"""llm_foundations.dates: every format reads back to its date, seeds, the vocabulary and the batches."""

import datetime
import random
import re

import pytest
import torch

from llm_foundations.dates import (
    BOS, EOS, FORMATS, PAD, VOCAB, date_batches, decode_ids, encode_batch, format_date, random_dates,
)

MONTHS = {name: i + 1 for i, name in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"])}
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _month(name: str) -> int:
    """A month from its full name or its three-letter abbreviation, in any case."""
    name = name.lower()
    matches = [number for full, number in MONTHS.items() if full == name or full[:3] == name]
    assert len(matches) == 1, f"{name!r} is not one month"
    return matches[0]


def _year(text: str) -> int:
    year = int(text)
    return year if len(text) == 4 else (1900 + year if year >= 50 else 2000 + year)  # 50-99 -> 19xx


def _ordinal_day(text: str) -> int:
    day, suffix = int(text[:-2]), text[-2:]
    expected = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    assert suffix == expected, f"wrong ordinal suffix in {text!r}"
    return day


# An independent reader of each format: (pattern, function of the match -> (year, month, day)).
READERS = {
    "iso": (r"(\d{4})-(\d{2})-(\d{2})", lambda y, m, d: (int(y), int(m), int(d))),
    "us_short": (r"(\d{2})/(\d{2})/(\d{2})", lambda m, d, y: (_year(y), int(m), int(d))),
    "us_long": (r"(\d{1,2})/(\d{1,2})/(\d{4})", lambda m, d, y: (int(y), int(m), int(d))),
    "dotted": (r"(\d{2})\.(\d{2})\.(\d{4})", lambda d, m, y: (int(y), int(m), int(d))),
    "dashed": (r"(\d{1,2})-(\d{1,2})-(\d{4})", lambda d, m, y: (int(y), int(m), int(d))),
    "year_dotted": (r"(\d{4})\.(\d{2})\.(\d{2})", lambda y, m, d: (int(y), int(m), int(d))),
    "day_month_year": (r"(\d{1,2}) ([A-Z][a-z]+) (\d{4})", lambda d, m, y: (int(y), _month(m), int(d))),
    "short_month": (r"(\d{1,2}) ([A-Z][a-z]{2}) (\d{2})", lambda d, m, y: (_year(y), _month(m), int(d))),
    "month_day_year": (r"([A-Z][a-z]+) (\d{1,2}), (\d{4})", lambda m, d, y: (int(y), _month(m), int(d))),
    "short_month_day": (r"([A-Z][a-z]{2}) (\d{1,2}), (\d{4})", lambda m, d, y: (int(y), _month(m), int(d))),
    "ordinal": (r"(\d{1,2}[a-z]{2}) of ([A-Z][a-z]+) (\d{4})", lambda d, m, y: (int(y), _month(m), _ordinal_day(d))),
    "weekday_short": (r"([A-Z][a-z]{2}), (\d{1,2}) ([A-Z][a-z]+) (\d{4})",
                      lambda w, d, m, y: (int(y), _month(m), int(d), w)),
    "weekday_long": (r"([A-Z][a-z]+) (\d{1,2}[a-z]{2}) ([A-Z][a-z]+) (\d{4})",
                     lambda w, d, m, y: (int(y), _month(m), _ordinal_day(d), w)),
    "upper": (r"(\d{1,2}) ([A-Z]+) (\d{4})", lambda d, m, y: (int(y), _month(m), int(d))),
    "lower": (r"([a-z]+) (\d{1,2}[a-z]{2}), (\d{4})", lambda m, d, y: (int(y), _month(m), _ordinal_day(d))),
}


def _read(text: str, style: str) -> datetime.date:
    pattern, fields = READERS[style]
    match = re.fullmatch(pattern, text)
    assert match, f"{text!r} does not look like the {style} format"
    year, month, day, *weekday = fields(*match.groups())
    date = datetime.date(year, month, day)
    if weekday:  # the weekday written must be the date's own
        assert WEEKDAYS[date.weekday()].startswith(weekday[0].lower()), f"wrong weekday in {text!r}"
    return date


def test_every_format_has_a_reader():
    assert set(READERS) == set(FORMATS)


def _sample_dates(n: int = 150) -> list[datetime.date]:
    rng = random.Random(0)
    first, last = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)
    edges = [first, last, datetime.date(1999, 12, 31), datetime.date(2000, 1, 1), datetime.date(2024, 2, 29),
             datetime.date(1972, 11, 11), datetime.date(2013, 3, 23), datetime.date(2001, 5, 2)]
    return edges + [first + datetime.timedelta(days=rng.randint(0, (last - first).days)) for _ in range(n)]


@pytest.mark.parametrize("style", sorted(FORMATS))
def test_each_format_reads_back_to_the_same_date(style):
    for date in _sample_dates():
        assert _read(format_date(date, style), style) == date


def test_random_pairs_are_a_date_and_its_iso_form():
    pairs = random_dates(300, seed=5)
    seen_styles = set()
    for source, target in pairs:
        date = datetime.date.fromisoformat(target)
        assert datetime.date(1950, 1, 1) <= date <= datetime.date(2049, 12, 31)
        readable = [s for s in FORMATS if re.fullmatch(READERS[s][0], source)]
        assert readable, f"{source!r} matches no format"
        assert {_read(source, s) for s in readable} == {date}, f"{source!r} reads as another date in some format"
        seen_styles.update(readable)
    assert seen_styles >= set(FORMATS) - {"iso"}


def test_styles_restrict_the_formats():
    for source, target in random_dates(40, seed=2, styles=["us_short"]):
        assert _read(source, "us_short").isoformat() == target


def test_seeds_are_deterministic_and_leave_the_global_random_state_alone():
    random.seed(123)
    state = random.getstate()
    assert random_dates(50, seed=3) == random_dates(50, seed=3)
    assert random_dates(50, seed=3) != random_dates(50, seed=4)
    assert random_dates(80, seed=3)[:50] == random_dates(50, seed=3)
    assert random.getstate() == state


def test_format_date_rejects_an_unknown_style():
    with pytest.raises(ValueError, match="unknown date format"):
        format_date(datetime.date(2000, 1, 1), "klingon")


def test_vocabulary_covers_every_format_and_starts_with_the_specials():
    assert VOCAB[PAD] == "<pad>" and VOCAB[BOS] == "<bos>" and VOCAB[EOS] == "<eos>"
    assert len(set(VOCAB)) == len(VOCAB)
    characters = set(VOCAB[3:])
    assert all(len(ch) == 1 for ch in characters)
    for date in _sample_dates(40):
        for style in FORMATS:
            assert set(format_date(date, style)) <= characters, style


def test_encode_decode_round_trip():
    texts = ["Sat, 5 March 1994", "03/05/94", "1994-03-05", "september 1st, 2001"]
    ids = encode_batch(texts, bos=True, eos=True)
    assert ids.dtype == torch.long and ids.shape == (4, max(map(len, texts)) + 2)
    assert torch.all(ids[:, 0] == BOS)
    for row, text in zip(ids, texts):
        assert decode_ids(row) == text
        assert decode_ids(row.tolist()) == text
        assert int((row == EOS).sum()) == 1
    assert (ids[1] == PAD).sum() == len(texts[3]) - len(texts[1])  # right padding


def test_encode_pads_to_a_length_and_refuses_a_shorter_one():
    assert encode_batch(["12", "1"], length=5).tolist()[1][1:] == [PAD] * 4
    with pytest.raises(ValueError):
        encode_batch(["12345"], length=3)


def test_decode_stops_at_the_first_eos():
    ids = encode_batch(["2001-02-03"], bos=True, eos=True)[0].tolist()
    assert decode_ids(ids + encode_batch(["99"])[0].tolist()) == "2001-02-03"


def test_unknown_character_raises_naming_it():
    with pytest.raises(ValueError, match="!"):
        encode_batch(["1994-03-05!"])
    with pytest.raises(ValueError, match="é"):
        encode_batch(["5 février 1994"])


def test_date_batches_shapes_and_contents():
    pairs = random_dates(50, seed=1)
    batches = date_batches(pairs, batch_size=8, seed=0)
    seen = set()
    for _ in range(12):  # more than one epoch (6 batches per epoch)
        src, tgt = next(batches)
        assert src.shape[0] == 8 and tgt.shape == (8, 12)
        assert torch.all(tgt[:, 0] == BOS) and torch.all(tgt[:, -1] == EOS)
        for s, t in zip(src, tgt):
            seen.add((decode_ids(s), decode_ids(t)))
    assert seen <= set(pairs) and len(seen) >= 45
    first = next(date_batches(pairs, 8, seed=0))
    assert all(torch.equal(a, b) for a, b in zip(first, next(date_batches(pairs, 8, seed=0))))
