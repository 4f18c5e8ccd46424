import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from llm_foundations.plotting import plot_attention  # noqa: E402


def test_plot_attention_draws_one_cell_per_weight_with_labels():
    weights = torch.softmax(torch.randn(1, 1, 3, 4), -1)
    ax = plot_attention(weights, ["a", "b", "c"], ["w", "x", "y", "z"], annotate=True, title="t")
    image = ax.images[0].get_array()
    assert image.shape == (3, 4)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w", "x", "y", "z"]
    assert len(ax.texts) == 12 and ax.get_title() == "t"
    plt.close("all")


def test_plot_attention_rejects_batches():
    with pytest.raises(ValueError, match="one"):
        plot_attention(torch.rand(2, 3, 3))
