"""A grid of digits to pick from (the Dataset page): a components-v2 widget of our own (digit_grid.js, .css).

Why not a Plotly heatmap with invisible points on it, as before: the grid is the first thing the Dataset page
shows, and a Plotly chart makes a first visit load and evaluate plotly.js (about 1.2 s of the 3.4 s to the grid,
issue 9). Here each digit is a small PNG in a button: the browser draws it at once, a click, a tap or the keyboard
picks it, and the columns fold to five on a phone.

What the browser sends back (a tile's position) is checked in the core (`data.checked_pick`) before use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import streamlit as st

from mnist_core.data import checked_pick
from mnist_core.plots import tile_urls

_HERE = Path(__file__).parent
_component = st.components.v2.component(
    "mnist_lab.digit_grid",
    html='<div class="digit-grid" role="group"></div>',
    css=(_HERE / "digit_grid.css").read_text(encoding="utf-8"),
    js=(_HERE / "digit_grid.js").read_text(encoding="utf-8"),
)


def new_pick(key: str, count: int) -> int | None:
    """The position of the tile the visitor picked since the last run of the grid `key` of `count` images, or None
    (no new pick: a rerun for anything else, or the same tile clicked again is a new pick). Raises ValueError for a
    pick the grid could not have sent."""
    state = st.session_state.get(key)
    pick = checked_pick(state.get("picked") if hasattr(state, "get") else None, count)
    seen_key = f"{key}_seen"
    if pick is None or st.session_state.get(seen_key) == pick[1]:
        return None
    st.session_state[seen_key] = pick[1]
    return pick[0]


def digit_grid(images: np.ndarray, captions: Sequence[str], labels: Sequence[str], key: str, label: str,
               columns: int = 10, highlighted: int | None = None) -> None:
    """Show `images` (28 x 28) as a grid of buttons captioned `captions` and named `labels` (for screen readers and
    tests), the grid itself named `label`, the one at position `highlighted` marked as the one looked at; read picks
    with `new_pick(key, ...)`."""
    _component(
        key=key,
        data={"tiles": tile_urls(images), "captions": list(captions), "labels": list(labels), "label": label,
              "columns": columns, "picked": highlighted},
        on_picked_change=lambda: None,
    )
