"""The drawing canvas of the Draw page: a components-v2 widget of our own (digit_canvas.js, digit_canvas.css).

Why not streamlit-drawable-canvas 0.13: its frontend waits 200 ms after every stroke before it sends the picture
(a fixed debounce in its bundle), which alone is more than the whole mouse-up -> prediction budget (issue 9:
p50 <= 150 ms; measured 237-262 ms with it, of which 205-210 ms before the picture left the browser). Digits
need only freehand strokes, so the component is small: pointer events (mouse, touch, pen), the picture at each
stroke's end (deflated grey pixels, or a PNG in a browser without CompressionStream), Undo and Clear buttons inside
it (a Clear inside the canvas cannot race a page rerun), and the strokes kept so the drawing comes back when the
canvas is shown again.

Everything it sends is checked in the core (`preprocess.decode_canvas_grey` or `preprocess.decode_canvas`,
`preprocess.checked_strokes`) before use.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from mnist_core.constants import CANVAS_SIZE
from mnist_core.i18n import gettext as _
from mnist_core.preprocess import CANVAS_PNG_PREFIX, checked_strokes, decode_canvas, decode_canvas_grey

_HERE = Path(__file__).parent
_HTML = """
<div class="digit-canvas">
  <canvas width="280" height="280" role="img" aria-label="drawing canvas: draw one digit"></canvas>
  <div class="buttons">
    <button type="button" data-action="undo" title="Take back the last stroke">Undo</button>
    <button type="button" data-action="clear" title="Start again on an empty canvas">Clear</button>
  </div>
</div>
"""
_component = st.components.v2.component(
    "mnist_lab.digit_canvas",
    html=_HTML,
    css=(_HERE / "digit_canvas.css").read_text(encoding="utf-8"),
    js=(_HERE / "digit_canvas.js").read_text(encoding="utf-8"),
)


@dataclass(frozen=True)
class Drawing:
    """What the canvas holds: the picture (None while empty: uint8 grey (H, W) when the browser sent the compact
    form, RGBA (H, W, 4) from a PNG), its strokes, and the PNG the browser sent (the bytes `picture` was decoded
    from, checked by preprocess.decode_canvas; None while empty or when it sent the grey form)."""

    picture: np.ndarray | None
    strokes: list = field(default_factory=list)
    png: bytes | None = None


def digit_canvas(stroke_width: int, key: str = "digit_canvas", size: int = CANVAS_SIZE) -> Drawing:
    """Show the canvas; returns the current drawing. Raises ValueError (a person's sentence) for a value that is
    not a drawing this canvas could have sent.

    The strokes are kept in session state beside the widget, so when the canvas is not shown for a while (the
    Upload source) and comes back, it redraws them.
    """
    kept_key = f"{key}_kept_strokes"
    kept_picture_key = f"{key}_kept_picture"
    generation_key = f"{key}_generation"
    st.session_state.setdefault(generation_key, 0)
    current = st.session_state.get(key)  # the component's state as this run starts: what the browser sent last
    sent = current.get("drawing") if hasattr(current, "get") else None
    seq = sent.get("seq") if isinstance(sent, dict) else None
    result = _component(
        key=key,
        data={
            "strokeWidth": int(stroke_width),
            "size": size,
            "strokes": st.session_state.get(kept_key, []),
            "generation": st.session_state[generation_key],
            # which send this run has read: the browser sends again what is not acknowledged (digit_canvas.js)
            "seen": seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
            "labels": {  # the HTML's English words, translated (digit_canvas.js puts them in)
                "undo": {"text": _("Undo"), "title": _("Take back the last stroke")},
                "clear": {"text": _("Clear"), "title": _("Start again on an empty canvas")},
                "canvas": _("drawing canvas: draw one digit"),
            },
        },
        on_drawing_change=lambda: None,
    )
    value = result.get("drawing") if result is not None else None
    if isinstance(value, dict) and "generation" in value and value["generation"] != st.session_state[generation_key]:
        value = None  # drawn before forget_drawing(): the browser shows an empty canvas now
    if value is None:  # nothing drawn since the canvas appeared: what it shows is what we kept
        strokes = st.session_state.get(kept_key, [])
        kept = st.session_state.get(kept_picture_key) if strokes else None
        if kept is None:
            return Drawing(None, strokes)
        # Back from the Upload source: the canvas redraws the kept strokes, and the page answers for them again.
        picture, png = _decoded(kept, size)
        return Drawing(picture, strokes, png)
    if not isinstance(value, dict):
        raise ValueError(_("The canvas sent something that is not a drawing."))
    strokes = checked_strokes(value.get("strokes"))
    st.session_state[kept_key] = strokes
    st.session_state[kept_picture_key] = None
    grey, png_url = value.get("grey"), value.get("png")
    if grey is None and png_url is None:
        return Drawing(None, strokes)
    sent = {"grey": grey} if grey is not None else {"png": png_url}
    picture, png = _decoded(sent, size)  # the check: only a picture of the canvas' size gets past it
    st.session_state[kept_picture_key] = sent  # checked: kept for when the canvas comes back
    return Drawing(picture, strokes, png)


def _decoded(sent: dict, size: int) -> tuple[np.ndarray, bytes | None]:
    """The picture of a canvas value (its compact grey form or a PNG), checked by the core; and the PNG's bytes
    when it came as a PNG."""
    if sent.get("grey") is not None:
        return decode_canvas_grey(sent["grey"], size), None
    png = sent["png"]
    return decode_canvas(png, size), base64.b64decode(png[len(CANVAS_PNG_PREFIX):])


def forget_drawing(key: str = "digit_canvas") -> None:
    """Start the next canvas empty (for example after the drawing was saved)."""
    st.session_state[f"{key}_kept_strokes"] = []
    st.session_state[f"{key}_kept_picture"] = None
    st.session_state[f"{key}_generation"] = st.session_state.get(f"{key}_generation", 0) + 1
