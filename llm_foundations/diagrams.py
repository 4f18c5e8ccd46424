"""The course map: the encoder-decoder Transformer from text to the next token, drawn with matplotlib.

Chapter 1 shows the whole map; later chapters show a small copy with their own boxes
highlighted, e.g. ``draw_transformer(highlight=[4], figsize=(6, 7))``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

#: What each chapter of the course builds, for the map's legend.
CHAPTERS = {
    1: "overview (this map)",
    2: "tokens and embeddings",
    3: "positional encoding",
    4: "self-attention",
    5: "cross-attention",
    6: "residuals, LayerNorm, feed-forward",
    7: "token sampling",
    8: "encoder",
    9: "decoder",
    10: "the full model",
}

_KIND_COLOURS = {
    "text": "#ffffff",
    "tokenizer": "#e5e8e8",
    "embedding": "#f5b7b1",
    "positions": "#d7bde2",
    "attention": "#f8c471",
    "norm": "#f9e79f",
    "feed_forward": "#aed6f1",
    "output": "#abebc6",
}
_FADED = "#f4f4f4"
_HIGHLIGHT_EDGE = "#c0392b"


@dataclass(frozen=True)
class _Box:
    key: str
    label: str
    chapters: tuple[int, ...]
    kind: str
    x: float  # centre
    y: float  # centre
    width: float = 3.9
    height: float = 0.72


_XE, _XD = 3.2, 9.2  # centres of the encoder and decoder columns


def _boxes() -> list[_Box]:
    boxes = []
    for side, x, text in (("src", _XE, 'source text: "the cat sat"'), ("tgt", _XD, 'target so far: "<bos> die Katze"')):
        boxes += [
            _Box(f"{side}_text", text, (), "text", x, 0.45, height=0.6),
            _Box(f"{side}_tokenizer", "tokenizer: text → token ids", (2,), "tokenizer", x, 1.55),
            _Box(f"{side}_embedding", "token embedding", (2,), "embedding", x, 2.65),
        ]
    px = {"src": _XE - 2.85, "tgt": _XD + 2.85}
    boxes += [_Box(f"{s}_positions", "positional\nencoding", (3,), "positions", px[s], 3.75, width=1.6, height=0.9)
              for s in ("src", "tgt")]
    boxes += [
        _Box("enc_self_attention", "multi-head self-attention", (4, 8), "attention", _XE, 5.0),
        _Box("enc_norm1", "add & norm", (6, 8), "norm", _XE, 6.05, height=0.55),
        _Box("enc_feed_forward", "feed-forward", (6, 8), "feed_forward", _XE, 7.2),
        _Box("enc_norm2", "add & norm", (6, 8), "norm", _XE, 8.25, height=0.55),
        _Box("dec_self_attention", "masked multi-head self-attention", (4, 9), "attention", _XD, 5.0),
        _Box("dec_norm1", "add & norm", (6, 9), "norm", _XD, 6.05, height=0.55),
        _Box("cross_attention", "multi-head cross-attention", (5, 9), "attention", _XD, 7.2),
        _Box("dec_norm2", "add & norm", (6, 9), "norm", _XD, 8.25, height=0.55),
        _Box("dec_feed_forward", "feed-forward", (6, 9), "feed_forward", _XD, 9.4),
        _Box("dec_norm3", "add & norm", (6, 9), "norm", _XD, 10.45, height=0.55),
        _Box("output_projection", "linear: output projection\n(tied to the embedding)", (10,), "output", _XD, 12.15,
             height=0.9),
        _Box("softmax", "softmax → probabilities", (7,), "output", _XD, 13.35),
        _Box("sampling", "sampling → next token", (7,), "output", _XD, 14.45),
        _Box("next_token", 'next token: "saß"', (), "text", _XD, 15.5, height=0.6),
    ]
    return boxes


_STACKS = {  # key: (label, chapter, column centre, bottom, top)
    "encoder": ("encoder layer\n× N", 8, _XE, 4.35, 8.8),
    "decoder": ("decoder layer\n× N", 9, _XD, 4.35, 11.0),
}

#: Keys that ``highlight`` accepts besides chapter numbers (the sides' boxes share a short name).
COMPONENTS = (
    "tokenizer", "embedding", "positions", "self_attention", "masked_self_attention", "cross_attention",
    "add_norm", "feed_forward", "encoder", "decoder", "output_projection", "softmax", "sampling",
)


def _component(box_key: str) -> str:
    if box_key.endswith(("_tokenizer", "_embedding", "_positions")):
        return box_key.split("_", 1)[1]
    if "norm" in box_key:
        return "add_norm"
    if box_key == "dec_self_attention":
        return "masked_self_attention"
    if box_key.endswith("feed_forward"):
        return "feed_forward"
    if box_key.endswith("self_attention"):
        return "self_attention"
    return box_key


def _parse_highlight(highlight: Iterable[int | str] | int | str | None) -> tuple[set[int], set[str]]:
    if highlight is None:
        return set(), set()
    if isinstance(highlight, (int, str)):
        highlight = [highlight]
    if not isinstance(highlight, Iterable):
        raise ValueError(f"highlight takes chapter numbers or component names, got {highlight!r}")
    chapters, keys = set(), set()
    for item in highlight:
        if isinstance(item, bool):
            raise ValueError(f"highlight takes chapter numbers or component names, got {item!r}")
        if isinstance(item, int):
            if item not in CHAPTERS:
                raise ValueError(f"there is no chapter {item}: chapters are 1 to {max(CHAPTERS)}")
            chapters.add(item)
        elif isinstance(item, str):
            if item not in COMPONENTS:
                raise ValueError(f"unknown component {item!r}; choose chapter numbers or one of {list(COMPONENTS)}")
            keys.add(item)
        else:
            raise ValueError(f"highlight takes chapter numbers or component names, got {item!r}")
    return chapters, keys


def draw_transformer(
    highlight: Iterable[int | str] | int | str | None = None,
    *,
    figsize: tuple[float, float] = (10.0, 11.0),
    title: str | None = "The Transformer, from text to the next token",
    legend: bool = True,
) -> Figure:
    """Draw the encoder-decoder Transformer with a chapter number on every box.

    Data flows upwards: text becomes token ids, then vectors (embedding + positions); the
    encoder stack reads the source, the decoder stack reads the target so far and, through
    cross-attention, the encoder's output; the output projection, a softmax and a sampler turn
    the decoder's last vector into the next token, which is appended to the target (dashed arrow).

    Args:
        highlight: chapter numbers (``4``) and/or component names (see :data:`COMPONENTS`, e.g.
            ``"cross_attention"``) to highlight; every other box is greyed out. ``None``
            colours every box by kind. Chapter 1 (the overview) highlights everything.
        figsize: figure size in inches; the text scales with the width, so small copies work.
        title: the figure's title (``None`` for none).
        legend: show the list of chapters in the upper left corner.

    Returns:
        The matplotlib figure (not shown; call ``plt.show()`` in a notebook).

    Raises:
        ValueError: ``highlight`` names an unknown chapter or component.
    """
    chapters, keys = _parse_highlight(highlight)
    selective = highlight is not None and 1 not in chapters  # chapter 1 is the whole map
    scale = figsize[0] / 10.0
    fig, ax = plt.subplots(figsize=figsize)
    ax.set(xlim=(-0.9, 13.3), ylim=(-0.1, 16.3))
    ax.set_axis_off()

    def lit(box_chapters: tuple[int, ...], component: str) -> bool:
        return selective and (bool(chapters & set(box_chapters)) or component in keys)

    def arrow(start, end, dashed=False, colour="#333333", style="-|>", **kw):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12 * scale, color=colour,
                                     linewidth=1.2 * scale, linestyle="--" if dashed else "-", **kw))

    # the stacks: a rounded frame around each layer, with "x N" and the chapter on the outside
    for key, (label, chapter, x, bottom, top) in _STACKS.items():
        on = lit((chapter,), key)
        ax.add_patch(FancyBboxPatch((x - 2.35, bottom), 4.7, top - bottom, boxstyle="round,pad=0.05,rounding_size=0.3",
                                    facecolor="#fbfcfc", edgecolor=_HIGHLIGHT_EDGE if on else "#7f8c8d",
                                    linewidth=(2.6 if on else 1.2) * scale))
        side = -1 if key == "encoder" else 1
        ax.text(x + side * 2.55, (bottom + top) / 2, f"{label}\n(ch {chapter})", ha="center", va="center",
                fontsize=9.5 * scale, fontweight="bold", rotation=90, linespacing=1.3,
                color=_HIGHLIGHT_EDGE if on else "#2c3e50")

    boxes = {b.key: b for b in _boxes()}
    for b in boxes.values():
        on = lit(b.chapters, _component(b.key))
        faded = selective and not on
        face = _KIND_COLOURS[b.kind] if not faded or b.kind == "text" else _FADED
        edge = _HIGHLIGHT_EDGE if on else "#555555"
        ax.add_patch(FancyBboxPatch((b.x - b.width / 2, b.y - b.height / 2), b.width, b.height,
                                    boxstyle="round,pad=0.02,rounding_size=0.12", facecolor=face, edgecolor=edge,
                                    linewidth=(2.4 if edge == _HIGHLIGHT_EDGE else 1.0) * scale,
                                    linestyle=":" if b.kind == "text" else "-"))
        label = b.label + (f" (ch {', '.join(map(str, b.chapters))})" if b.chapters and "\n" not in b.label
                           else (f"\n(ch {', '.join(map(str, b.chapters))})" if b.chapters else ""))
        ax.text(b.x, b.y, label, ha="center", va="center", fontsize=8.6 * scale, linespacing=1.15,
                color="#999999" if faded else "black", style="italic" if b.kind == "text" else "normal")

    def top(k):
        return boxes[k].x, boxes[k].y + boxes[k].height / 2

    def bottom(k):
        return boxes[k].x, boxes[k].y - boxes[k].height / 2

    # the upward flow through each column
    for side, column in (("src", ["src_text", "src_tokenizer", "src_embedding"]),
                         ("tgt", ["tgt_text", "tgt_tokenizer", "tgt_embedding"])):
        for a, b in zip(column, column[1:]):
            arrow(top(a), bottom(b))
        x = boxes[column[0]].x
        ax.add_patch(plt.Circle((x, 3.75), 0.22, facecolor="white", edgecolor="#333333", linewidth=1.1 * scale))
        ax.text(x, 3.75, "+", ha="center", va="center", fontsize=12 * scale)
        arrow(top(column[-1]), (x, 3.53))
        pos = boxes[f"{side}_positions"]
        edge_x = pos.x + pos.width / 2 if side == "src" else pos.x - pos.width / 2
        arrow((edge_x, 3.75), (x - 0.22 if side == "src" else x + 0.22, 3.75))
        arrow((x, 3.97), bottom("enc_self_attention" if side == "src" else "dec_self_attention"))
    encoder = ["enc_self_attention", "enc_norm1", "enc_feed_forward", "enc_norm2"]
    decoder = ["dec_self_attention", "dec_norm1", "cross_attention", "dec_norm2", "dec_feed_forward", "dec_norm3"]
    for column in (encoder, decoder):
        for a, b in zip(column, column[1:]):
            arrow(top(a), bottom(b))
        # residual paths: from the input of each sublayer around it to its add & norm
        for sub, norm in zip(column[::2], column[1::2]):
            x0 = boxes[sub].x - boxes[sub].width / 2
            y_in = boxes[sub].y - boxes[sub].height / 2 - 0.2
            ax.plot([boxes[sub].x, x0 - 0.18, x0 - 0.18], [y_in, y_in, boxes[norm].y], color="#7f8c8d",
                    linewidth=1.1 * scale)
            arrow((x0 - 0.18, boxes[norm].y), (x0, boxes[norm].y), colour="#7f8c8d")
    ax.text(boxes["enc_norm1"].x - 1.75, boxes["enc_norm1"].y - 0.55, "residual path", fontsize=7 * scale,
            color="#7f8c8d", ha="left", va="center")

    # the encoder's output (memory) becomes the keys and values of every cross-attention
    xe, ye = boxes["enc_norm2"].x, 9.45
    ax.plot([xe, xe], [top("enc_norm2")[1], ye], color="#1f618d", linewidth=1.6 * scale)
    xm = (_XE + _XD) / 2 + 0.05
    ax.plot([xe, xm, xm], [ye, ye, boxes["cross_attention"].y], color="#1f618d", linewidth=1.6 * scale)
    arrow((xm, boxes["cross_attention"].y), (boxes["cross_attention"].x - boxes["cross_attention"].width / 2,
                                             boxes["cross_attention"].y), colour="#1f618d")
    ax.text(xe - 1.55, ye + 0.12, "encoder output (memory):\nkeys and values for every\ndecoder layer",
            fontsize=7.8 * scale, color="#1f618d", va="bottom", ha="left")
    ax.text(boxes["cross_attention"].x + 0.35, boxes["cross_attention"].y - 0.62, "queries", fontsize=7 * scale,
            color="#555555", ha="left")

    # the head: projection, softmax, sampling, then the next token goes back in
    arrow(top("dec_norm3"), bottom("output_projection"))
    for a, b in (("output_projection", "softmax"), ("softmax", "sampling"), ("sampling", "next_token")):
        arrow(top(a), bottom(b))
    xr = boxes["next_token"].x + boxes["next_token"].width / 2
    ax.plot([xr, 13.1, 13.1], [15.5, 15.5, 0.45], color="#7f8c8d", linewidth=1.2 * scale, linestyle="--")
    arrow((13.1, 0.45), (boxes["tgt_text"].x + boxes["tgt_text"].width / 2, 0.45), dashed=True, colour="#7f8c8d")
    ax.text(12.95, 13.0, "appended to the target: repeat", rotation=90, fontsize=7.8 * scale, color="#555555",
            ha="center", va="center")

    if legend:
        lines = [f"{n:>2}  {what}" for n, what in CHAPTERS.items()]
        ax.text(-0.7, 16.1, "Chapters\n" + "\n".join(lines), fontsize=8.2 * scale, va="top", ha="left",
                family="monospace", linespacing=1.35,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": "#fdfefe", "edgecolor": "#aab7b8"})
    if title:
        ax.set_title(title, fontsize=13 * scale, fontweight="bold")
    fig.tight_layout()
    return fig
