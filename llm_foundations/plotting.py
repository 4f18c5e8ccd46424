"""Figures the chapters and exercises share, so every attention map in the course looks the same."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch


def plot_attention(
    weights: torch.Tensor,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    annotate: bool = False,
) -> plt.Axes:
    """Draw one attention map as a heatmap: a row per query, a column per key.

    Args:
        weights: attention weights ``(L_q, L_k)`` (any device or dtype; extra leading dimensions
            of size 1 are squeezed away).
        query_labels: tick labels for the rows (e.g. the query tokens).
        key_labels: tick labels for the columns (e.g. the key tokens).
        ax: axes to draw on; a new figure is made when None.
        title: axes title.
        cmap: matplotlib colour map.
        annotate: write each weight in its cell (for small maps).

    Returns:
        The axes drawn on.
    """
    w = weights.detach().float().cpu()
    while w.dim() > 2 and w.size(0) == 1:
        w = w[0]
    if w.dim() != 2:
        raise ValueError(f"plot_attention draws one (L_q, L_k) map, got shape {tuple(weights.shape)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * w.size(1) + 2, 0.45 * w.size(0) + 1.5))
    image = ax.imshow(w.numpy(), cmap=cmap, vmin=0.0, vmax=max(1e-9, float(w.max())), aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
    if key_labels is not None:
        ax.set_xticks(range(len(key_labels)), labels=list(key_labels), rotation=60, ha="right")
    if query_labels is not None:
        ax.set_yticks(range(len(query_labels)), labels=list(query_labels))
    if annotate:
        for i in range(w.size(0)):
            for j in range(w.size(1)):
                value = float(w[i, j])
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if value > 0.5 * float(w.max()) else "white")
    if title:
        ax.set_title(title)
    return ax
