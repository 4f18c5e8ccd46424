"""Figures a reader can play with on the static website, with no kernel and no network.

Each function returns an :class:`InteractiveFigure`: a block of plain HTML that already shows the
figure in its starting state, with the figure's data as JSON inside it. A notebook cell that ends
with one displays it (``_repr_html_``). On the course website, ``book/_static/interactive.js``
(loaded on every page) finds each block by its ``data-lf-figure`` attribute and makes it respond:
moving a slider or pointing at a token redraws it in the browser, from the data in the page.
Elsewhere (a notebook viewer, Colab) the block stays a still picture of its starting state, and
says so.

- :func:`sampling_explorer` (chapter 7): the distribution that :func:`~llm_foundations.sampling.sample_next_token`
  draws from, under a temperature, top-k and top-p that the reader chooses.
- :func:`attention_explorer` (chapter 4): an attention map; pointing at a query token shows how
  its weight is spread over the keys.
"""

from __future__ import annotations

import html
import itertools
import json
import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from llm_foundations.sampling import top_k_filter, top_p_filter

__all__ = ["InteractiveFigure", "attention_explorer", "sampling_distribution", "sampling_explorer", "shade"]

_ids = itertools.count(1)  # element ids, unique within a kernel and so within a page

# The shade of an attention weight: white (0) to this dark blue (1), as in interactive.js.
_DARK = (31, 78, 121)
# Bar colours of the sampling explorer: the model's own distribution, and the one sampled from.
MODEL_COLOR, SAMPLED_COLOR = "#8c8c8c", "#1f77b4"
_NOTE = ("This figure responds to its controls on the course website; "
         "here it shows its starting state.")


class InteractiveFigure:
    """HTML for a notebook output (``_repr_html_``) or a page (``str``)."""

    def __init__(self, markup: str, data: dict):
        self.markup = markup
        self.data = data  # what the page's script reads (also inside ``markup``, as JSON)

    def _repr_html_(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return f"<InteractiveFigure {self.data['kind']}>"


def _json_script(data: dict) -> str:
    # "</" inside a <script> would end it early: JSON allows the escaped slash
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return f'<script type="application/json" class="lf-data">{text}</script>'


def _finite_or_none(values: Tensor, digits: int = 6) -> list[float | None]:
    """A JSON-friendly list: ``-inf`` (a removed token) becomes ``None``."""
    out = []
    for v in values.detach().double().cpu().tolist():
        if math.isnan(v) or v == math.inf:
            raise ValueError(f"logits must be finite or -inf, got {v}")
        out.append(None if v == -math.inf else round(v, digits))
    return out


def shade(weight: float) -> tuple[str, str]:
    """Background and text colour for a weight in ``[0, 1]``: white to dark blue, text readable on it.

    The text colour (black or white) is whichever contrasts more with the background, so the
    contrast is at least 4.5 : 1 (WCAG AA) at every weight.
    """
    t = min(max(float(weight), 0.0), 1.0)
    rgb = [round(255 + (c - 255) * t) for c in _DARK]

    def luminance(channels):
        lin = [(c / 255) / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    lum = luminance(rgb)
    dark_text = (lum + 0.05) / (luminance((0, 0, 0)) + 0.05) >= 1.05 / (lum + 0.05)
    return "#{:02x}{:02x}{:02x}".format(*rgb), "#000000" if dark_text else "#ffffff"


# ----------------------------------------------------------------------------------------------
# Chapter 7: temperature, top-k, top-p


def sampling_distribution(logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """The distribution :func:`~llm_foundations.sampling.sample_next_token` draws from.

    Temperature, then top-k (``0`` switches it off), then top-p (``1`` keeps everything), then a
    softmax: the order of ``sample_next_token``, computed in float64. The explorer's script
    computes the same thing in the browser.

    Shape:
        - logits: ``(..., V)``; output: ``(..., V)``, each row summing to 1
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive (greedy decoding is not a distribution), got {temperature}")
    scaled = logits.double() / temperature
    if top_k:
        scaled = top_k_filter(scaled, int(top_k))
    scaled = top_p_filter(scaled, top_p)
    return torch.softmax(scaled, dim=-1)


def _log_slider(value: float, low: float, high: float) -> float:
    return round(math.log10(min(max(value, low), high)), 2)


def sampling_explorer(
    words: Sequence[str],
    rows: Mapping[str, Tensor],
    *,
    shown: int = 12,
    context: str | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    temperature_range: tuple[float, float] = (0.05, 10.0),
) -> InteractiveFigure:
    """Sliders for the temperature, top-k and top-p over a model's next-token distribution.

    The figure shows, for the ``shown`` likeliest words after the chosen context, the model's own
    probabilities (grey, ``T = 1``) beside the distribution that is sampled from (blue), and says how
    many words survive the filters. The reader picks the context from ``rows``.

    Args:
        words: the vocabulary, ``V`` names.
        rows: context name -> that context's next-token logits, ``(V,)`` each (``-inf`` allowed).
        shown: how many words the bars show (the likeliest at ``T = 1``).
        context, temperature, top_k, top_p: the starting setting (``top_k = 0``: off).
        temperature_range: the temperature slider's ends (a log scale).
    """
    if not rows:
        raise ValueError("rows must name at least one context")
    V = len(words)
    contexts = []
    for name, row in rows.items():
        if row.shape != (V,):
            raise ValueError(f"the logits after {name!r} have shape {tuple(row.shape)}, expected ({V},): one per word")
        contexts.append({"name": str(name), "logits": _finite_or_none(row)})
    context = contexts[0]["name"] if context is None else context
    if context not in rows:
        raise ValueError(f"context {context!r} is not one of {list(rows)}")
    shown = min(shown, V)
    low, high = temperature_range
    fid = f"lf-sampling-{next(_ids)}"
    data = {"kind": "sampling", "words": list(map(str, words)), "contexts": contexts, "shown": shown,
            "context": context, "temperature": temperature, "top_k": top_k, "top_p": top_p}

    row = rows[context]
    model_p = torch.softmax(row.double(), -1)
    final = sampling_distribution(row, temperature, top_k, top_p)
    order = model_p.argsort(descending=True, stable=True)[:shown].tolist()
    kept = int((final > 0).sum())

    # the chart: an SVG of `shown` pairs of bars, redrawn by the script (same geometry there)
    width, height, left, top, bottom = 640, 300, 44, 12, 78
    plot_w, plot_h = width - left - 8, height - top - bottom
    slot = plot_w / shown
    parts = [f'<svg class="lf-chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="{fid}-title {fid}-summary" data-top="{top}" data-plot-height="{plot_h}">',
             f'<title id="{fid}-title">Bar chart: probability of the {shown} likeliest next words, '
             'the model at temperature 1 (grey) and the distribution sampled from (blue)</title>']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" class="lf-grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="lf-tick">{tick:g}</text>')
    for slot_i, word_i in enumerate(order):
        x = left + slot_i * slot
        for cls, p, dx, color in (("lf-bar-model", model_p[word_i], 0.12, MODEL_COLOR),
                                  ("lf-bar-final", final[word_i], 0.5, SAMPLED_COLOR)):
            h = float(p) * plot_h
            parts.append(f'<rect class="{cls}" data-slot="{slot_i}" data-p="{float(p):.6f}" x="{x + dx * slot:.1f}" '
                         f'width="{0.38 * slot:.1f}" y="{top + plot_h - h:.1f}" height="{h:.1f}" fill="{color}"/>')
        lx, ly = x + slot / 2, top + plot_h + 10
        parts.append(f'<text class="lf-word" data-slot="{slot_i}" x="{lx:.1f}" y="{ly:.1f}" text-anchor="end" '
                     f'transform="rotate(-50 {lx:.1f} {ly:.1f})">{html.escape(words[word_i])}</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" class="lf-axis" '
                 f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">probability</text></svg>')
    chart = "".join(parts)

    options = "".join(f'<option value="{html.escape(c["name"])}"{" selected" if c["name"] == context else ""}>'
                      f'{html.escape(c["name"])}</option>' for c in contexts)
    t_low, t_high = _log_slider(low, low, high), _log_slider(high, low, high)
    controls = (
        f'<div class="lf-controls">'
        f'<label for="{fid}-context">context (previous word)</label>'
        f'<select id="{fid}-context" name="context">{options}</select>'
        f'<label for="{fid}-temperature">temperature T</label>'
        f'<input type="range" id="{fid}-temperature" name="temperature" min="{t_low}" max="{t_high}" step="0.01" '
        f'value="{_log_slider(temperature, low, high)}" aria-valuetext="T = {temperature:g}">'
        f'<output for="{fid}-temperature" class="lf-value" data-for="temperature">{temperature:g}</output>'
        f'<label for="{fid}-top_k">top-k (0: off)</label>'
        f'<input type="range" id="{fid}-top_k" name="top_k" min="0" max="{V}" step="1" value="{top_k}">'
        f'<output for="{fid}-top_k" class="lf-value" data-for="top_k">{top_k or "off"}</output>'
        f'<label for="{fid}-top_p">top-p</label>'
        f'<input type="range" id="{fid}-top_p" name="top_p" min="0.05" max="1" step="0.05" value="{top_p:g}">'
        f'<output for="{fid}-top_p" class="lf-value" data-for="top_p">{top_p:g}</output>'
        f'</div>')
    summary = (f'<p class="lf-summary" id="{fid}-summary" aria-live="polite">'
               f'After {html.escape(context)!r}: {kept} of {V} words can be sampled; the likeliest has probability '
               f'{float(final.max()):.2f}.</p>')
    legend = (f'<p class="lf-legend"><span class="lf-swatch" style="background:{MODEL_COLOR}"></span> model, T = 1 '
              f'<span class="lf-swatch" style="background:{SAMPLED_COLOR}"></span> sampled from</p>')
    markup = (f'<figure class="lf-figure lf-sampling" id="{fid}" data-lf-figure="sampling">'
              f'{_json_script(data)}{controls}{legend}{chart}{summary}'
              f'<p class="lf-static-note">{_NOTE}</p></figure>')
    return InteractiveFigure(markup, data)


# ----------------------------------------------------------------------------------------------
# Chapter 4: an attention map to point at


def attention_explorer(
    tokens: Sequence[str],
    weights: Tensor,
    *,
    head_names: Sequence[str] | None = None,
    query: int = 0,
    title: str = "Attention weights",
    key_tokens: Sequence[str] | None = None,
) -> InteractiveFigure:
    """An attention map in which pointing at (or focusing) a query token shows its weights.

    The map is a table, a row per query and a column per key, each cell shaded by its weight.
    Pointing at a query token (the buttons above it, or a row of the table) highlights its row
    and shades the key tokens of the sentence below by that query's weights, with the key that
    gets the most weight named in words.

    Args:
        tokens: the query tokens, ``L_q`` names (also the keys, unless ``key_tokens`` is given).
        weights: ``(L_q, L_k)``, or ``(H, L_q, L_k)`` for several heads (a menu picks the head);
            each row a distribution over the keys.
        head_names: a label per head (default ``head 0``, ``head 1``, ...).
        query: the query selected at the start.
        title: the figure's caption.
        key_tokens: the key tokens, ``L_k`` names, when they differ from the queries (cross-attention).
    """
    w = weights.detach().double().cpu()
    if w.dim() == 2:
        w = w[None]
    if w.dim() != 3:
        raise ValueError(f"weights must be (L_q, L_k) or (H, L_q, L_k), got shape {tuple(weights.shape)}")
    keys = list(tokens if key_tokens is None else key_tokens)
    H, Lq, Lk = w.shape
    if Lq != len(tokens) or Lk != len(keys):
        raise ValueError(f"weights of shape {tuple(weights.shape)} need {Lq} query and {Lk} key tokens, "
                         f"got {len(tokens)} and {len(keys)}")
    if not torch.isfinite(w).all() or (w < 0).any():
        raise ValueError("attention weights must be finite and non-negative")
    names = [f"head {h}" for h in range(H)] if head_names is None else list(head_names)
    if len(names) != H:
        raise ValueError(f"{H} heads need {H} head_names, got {len(names)}")
    if not 0 <= query < Lq:
        raise ValueError(f"query must be a position in 0..{Lq - 1}, got {query}")
    fid = f"lf-attention-{next(_ids)}"
    data = {"kind": "attention", "queries": list(map(str, tokens)), "keys": list(map(str, keys)),
            "heads": [{"name": n, "weights": [[round(x, 4) for x in r] for r in w[h].tolist()]}
                      for h, n in enumerate(names)],
            "query": query}
    esc = html.escape

    def cell(x: float) -> str:
        bg, fg = shade(x)
        return f'style="background:{bg};color:{fg}"'

    head0 = w[0]
    controls = ""
    if H > 1:
        options = "".join(f'<option value="{h}">{esc(n)}</option>' for h, n in enumerate(names))
        controls = (f'<div class="lf-controls"><label for="{fid}-head">head</label>'
                    f'<select id="{fid}-head" name="head">{options}</select></div>')
    buttons = "".join(f'<button type="button" class="lf-query{" lf-selected" if i == query else ""}" data-query="{i}" '
                      f'aria-pressed="{"true" if i == query else "false"}">{esc(t)}</button>'
                      for i, t in enumerate(tokens))
    selected = ' class="lf-selected"'
    head_row = "".join(f'<th scope="col">{esc(k)}</th>' for k in keys)
    body = "".join(
        f'<tr data-query="{i}"{selected if i == query else ""}><th scope="row">{esc(t)}</th>'
        + "".join(f'<td data-key="{j}" {cell(x)}>{x:.2f}</td>' for j, x in enumerate(head0[i].tolist()))
        + "</tr>" for i, t in enumerate(tokens))
    row = head0[query]
    sentence = "".join(f'<span class="lf-key" data-key="{j}" {cell(x)}>{esc(k)}</span> '
                       for j, (k, x) in enumerate(zip(keys, row.tolist())))
    best = int(row.argmax())
    summary = (f'<p class="lf-summary" aria-live="polite">Query {esc(tokens[query])!r} (position {query}) gives its '
               f'largest weight, {float(row[best]):.2f}, to {esc(keys[best])!r} (position {best}).</p>')
    markup = (
        f'<figure class="lf-figure lf-attention" id="{fid}" data-lf-figure="attention">'
        f'{_json_script(data)}{controls}'
        f'<p class="lf-hint">Point at a query token (or press Tab to it) to see where it looks:</p>'
        f'<div class="lf-queries" role="group" aria-label="query tokens">{buttons}</div>'
        f'<p class="lf-sentence"><span class="lf-label">keys, shaded by its weights:</span> {sentence}</p>'
        f'{summary}'
        f'<div class="lf-table-wrap" tabindex="0" role="region" aria-label="attention map">'
        f'<table class="lf-map"><caption>{esc(title)}: a row per query, a column per key</caption>'
        f'<thead><tr><th scope="col">query \\ key</th>{head_row}</tr></thead><tbody>{body}</tbody></table></div>'
        f'<p class="lf-static-note">{_NOTE}</p></figure>')
    return InteractiveFigure(markup, data)
