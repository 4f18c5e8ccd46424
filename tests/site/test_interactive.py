"""llm_foundations.interactive: the HTML and data of the site's interactive figures (no browser here;
tests/test_browser.py moves their controls in Chromium)."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser

import pytest
import torch

from llm_foundations.interactive import attention_explorer, sampling_distribution, sampling_explorer, shade
from llm_foundations.sampling import sample_next_token, softmax_with_temperature, toy_bigram_model


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text of the JSON data block."""

    def __init__(self):
        super().__init__()
        self.tags, self.data, self._in_data = [], None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._in_data = tag == "script" and attrs.get("class") == "lf-data"

    def handle_data(self, text):
        if self._in_data:
            self.data = (self.data or "") + text

    def handle_endtag(self, tag):
        self._in_data = False


def _parse(figure) -> _Elements:
    parser = _Elements()
    parser.feed(str(figure))
    return parser


@pytest.fixture(scope="module")
def bigram():
    words, logits = toy_bigram_model()
    index = {w: i for i, w in enumerate(words)}
    return words, {w: logits[index[w]] for w in ("the", "saw", "cat")}


def _contrast(a: str, b: str) -> float:
    def lum(hex_colour):
        rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_sampling_distribution_is_what_sample_next_token_draws_from(bigram):
    _, rows = bigram
    row = rows["the"]
    torch.testing.assert_close(sampling_distribution(row, 0.7).float(), softmax_with_temperature(row, 0.7))
    target = sampling_distribution(row, 0.7, top_k=5, top_p=0.8)
    assert math.isclose(float(target.sum()), 1.0, rel_tol=1e-9), f"expected a distribution, sums to {target.sum()}"
    generator = torch.Generator().manual_seed(0)
    draws = sample_next_token(row.expand(40_000, -1), 0.7, top_k=5, top_p=0.8, generator=generator)
    freq = torch.bincount(draws, minlength=row.numel()).double() / draws.numel()
    assert (freq[target == 0] == 0).all(), "sample_next_token drew a word that sampling_distribution gives probability 0"
    gap = float((freq - target).abs().max())
    assert gap < 0.015, f"draws of sample_next_token differ from sampling_distribution by {gap:.3f} (expected < 0.015)"


def test_sampling_distribution_top_k_zero_is_off_and_rejects_temperature_zero(bigram):
    _, rows = bigram
    torch.testing.assert_close(sampling_distribution(rows["saw"], 1.0, top_k=0), torch.softmax(rows["saw"].double(), -1))
    with pytest.raises(ValueError, match="temperature"):
        sampling_distribution(rows["saw"], 0.0)


def test_sampling_explorer_carries_every_context_and_labels_every_control(bigram):
    words, rows = bigram
    figure = sampling_explorer(words, rows, context="saw", temperature=0.5, top_k=3)
    parsed = _parse(figure)
    data = json.loads(parsed.data)
    assert data == figure.data, "the JSON in the page must be the figure's data"
    assert [c["name"] for c in data["contexts"]] == ["the", "saw", "cat"]
    # -inf (the <s> token: never next) travels as null, every other logit as a number
    the = data["contexts"][0]["logits"]
    assert the[words.index("<s>")] is None and all(isinstance(z, float) for i, z in enumerate(the) if i != 0)
    assert math.isclose(the[words.index("cat")], float(rows["the"][words.index("cat")]), abs_tol=1e-6)
    ids = {a["id"] for t, a in parsed.tags if "id" in a}
    labelled = {a["for"] for t, a in parsed.tags if t == "label"}
    controls = [a for t, a in parsed.tags if t in ("input", "select")]
    assert {c["name"] for c in controls} == {"context", "temperature", "top_k", "top_p"}
    for control in controls:
        assert control["id"] in labelled, f"control {control['name']!r} has no <label for=...>: screen readers cannot name it"
    assert labelled <= ids
    assert any(t == "figure" and a.get("data-lf-figure") == "sampling" for t, a in parsed.tags)


def test_sampling_explorer_starting_bars_show_the_starting_setting(bigram):
    words, rows = bigram
    figure = sampling_explorer(words, rows, context="saw", temperature=0.5, top_k=3, shown=12)
    bars = [a for t, a in _parse(figure).tags if t == "rect" and a.get("class") == "lf-bar-final"]
    assert len(bars) == 12
    expected = sampling_distribution(rows["saw"], 0.5, top_k=3)
    order = torch.softmax(rows["saw"].double(), -1).argsort(descending=True, stable=True)[:12]
    heights = [float(b["data-p"]) for b in bars]
    assert heights == pytest.approx(expected[order].tolist(), abs=1e-6)
    assert sum(h > 0 for h in heights) == 3, "top-k = 3 keeps three of the shown words"
    assert "3 of 21 words can be sampled" in str(figure)


def test_sampling_explorer_explains_bad_input(bigram):
    words, rows = bigram
    with pytest.raises(ValueError, match=r"expected \(21,\)"):
        sampling_explorer(words, {"the": rows["the"][:5]})
    with pytest.raises(ValueError, match="not one of"):
        sampling_explorer(words, rows, context="dog")


def test_attention_explorer_data_and_table_match_the_weights():
    torch.manual_seed(0)
    tokens = ["the", "cat", "<sat>", "&"]
    weights = torch.softmax(torch.randn(2, 4, 4), -1)
    figure = attention_explorer(tokens, weights, head_names=["a", "b"], query=2)
    parsed = _parse(figure)
    data = json.loads(parsed.data)
    assert data["queries"] == tokens and data["keys"] == tokens and data["query"] == 2
    assert torch.allclose(torch.tensor(data["heads"][1]["weights"], dtype=torch.double), weights[1].double(), atol=1e-4)
    html = str(figure)
    assert "&lt;sat&gt;" in html and "<sat>" not in html.replace('"<sat>"', ""), "tokens must be escaped in the markup"
    cells = re.findall(r'<td data-key="\d+"[^>]*>([0-9.]+)</td>', html)
    assert [float(c) for c in cells] == pytest.approx(weights[0].flatten().tolist(), abs=0.006)
    buttons = [a for t, a in parsed.tags if t == "button"]
    assert [b["aria-pressed"] for b in buttons] == ["false", "false", "true", "false"]


def test_attention_explorer_accepts_one_map_and_distinct_key_tokens():
    figure = attention_explorer(["x", "y"], torch.tensor([[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]]), key_tokens=["a", "b", "c"])
    assert figure.data["keys"] == ["a", "b", "c"] and len(figure.data["heads"]) == 1
    assert "gives its largest weight, 0.50, to 'a'" in str(figure)


@pytest.mark.parametrize("tokens, weights, message", [
    (["a", "b"], torch.ones(3, 3) / 3, "need 3 query and 3 key tokens"),
    (["a"], torch.ones(1, 1, 1, 1), r"\(L_q, L_k\) or \(H, L_q, L_k\)"),
    (["a", "b"], torch.tensor([[1.0, float("nan")], [0.5, 0.5]]), "finite"),
])
def test_attention_explorer_explains_bad_input(tokens, weights, message):
    with pytest.raises(ValueError, match=message):
        attention_explorer(tokens, weights)


def test_two_figures_on_one_page_have_distinct_ids(bigram):
    words, rows = bigram
    first, second = str(sampling_explorer(words, rows)), str(sampling_explorer(words, rows))
    ids = lambda html: set(re.findall(r'id="([^"]+)"', html))
    assert not ids(first) & ids(second)


@pytest.mark.parametrize("weight", [i / 20 for i in range(21)])
def test_shaded_text_is_readable_at_every_weight(weight):
    background, text = shade(weight)
    assert _contrast(background, text) >= 4.5, f"weight {weight}: {text} on {background} is below WCAG AA's 4.5 : 1"
