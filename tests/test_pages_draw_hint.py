"""The Draw page tells a person when the ink is not one digit (issue 20, item 7), driven through AppTest.

The fixtures and helpers are test_pages.py's: `app` (a new session on a scratch model store), `open_page`,
`forge_canvas` (the canvas reports a value, as a browser would).
"""

import base64
import io

import numpy as np
from PIL import Image
from test_pages import app, assert_ran_cleanly, forge_canvas, open_page, store, texts  # noqa: F401  (fixtures)

from junk_strokes import draw
from mnist_core.ink import CONFIDENCE_NOTE


def canvas_value(strokes: list[list[list[float]]], pen: float) -> dict:
    """What the canvas sends for these strokes: its PNG (white on black, anti-aliased) and the strokes."""
    buffer = io.BytesIO()
    Image.fromarray(draw([np.array(points, dtype=float) for points in strokes], pen, alpha_canvas=False)).save(
        buffer, format="PNG")
    return {"png": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
            "strokes": [{"width": pen, "points": points} for points in strokes]}


def test_a_dot_gets_a_hint_above_the_models_answer(app, monkeypatch):
    at = open_page(app(model="cnn"), "draw")
    forge_canvas(monkeypatch, canvas_value([[[90.0, 120.0]]], pen=20))
    at.run()
    assert_ran_cleanly(at)
    [warning] = texts(at.warning)
    assert "only a dot" in warning and "Draw a whole digit" in warning and CONFIDENCE_NOTE in warning
    assert any(text.startswith("### Prediction: ") for text in texts(at.markdown)), "the answer is still shown"


def test_two_digits_side_by_side_are_told_to_draw_one_digit(app, monkeypatch):
    at = open_page(app(model="cnn"), "draw")
    one, zero = [[60.0, 60.0], [60.0, 220.0]], [[170.0 + 50 * np.sin(t), 140.0 - 80 * np.cos(t)]
                                                 for t in np.linspace(0, 2 * np.pi, 40)]
    forge_canvas(monkeypatch, canvas_value([one, zero], pen=16))
    at.run()
    assert_ran_cleanly(at)
    [warning] = texts(at.warning)
    assert "2 separate pieces side by side" in warning and "one digit only" in warning


def test_a_drawn_one_gets_no_hint(app, monkeypatch):
    at = open_page(app(model="cnn"), "draw")
    forge_canvas(monkeypatch, canvas_value([[[140.0, 50.0], [140.0, 230.0]]], pen=20))
    at.run()
    assert_ran_cleanly(at)
    assert "### Prediction: 1" in texts(at.markdown)
    assert texts(at.warning) == []
