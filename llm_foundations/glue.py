"""Numbers measured by a chapter's cells, inserted into its prose by the site build.

A chapter page states a measured value (a loss, an accuracy, a timing, a speed-up) only through
the cell that measured it: the cell calls :func:`glue` and the markdown says
``{glue:text}`chNN_name``` (myst-nb's role), so the text shows what this run produced and cannot
drift from the outputs. ``tests/test_measured_numbers.py`` checks that chapters follow this rule.
"""

from __future__ import annotations

from typing import Any


def glue(name: str, value: Any, fmt: str | None = None) -> None:
    """Store ``value`` under ``name`` for the page's ``{glue:text}`name``` roles; shows nothing.

    With ``fmt`` the stored text is ``format(value, fmt)`` (e.g. ``".1f"``, ``","``), so the prose
    uses the same formatting as the cell's printed output; without it the value itself is stored
    and the role may format it (``{glue:text}`name:.2f```). Where myst-nb is not installed (Colab,
    plain Jupyter) nothing reads the value and this does nothing.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"glue: the name must be a non-empty string, got {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value if fmt is None else format(value, fmt), display=False)
