"""Issue 13's page parts driven as a person would through AppTest: what made the model say that and every model on
one drawing (Draw), the live test-digit panel, reference lines and the augmentation preview (Train), the first
layer's filters and reference lines (Models).

The fixtures and helpers are test_pages.py's. The saliency maps and the augmentation preview come from the real
explainer process (TensorFlow loads there once); a page run waits for them a while, so the tests rerun it until
they appear.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_pages import (  # noqa: F401  (app and store are fixtures)
    annotation_texts,
    app,
    assert_ran_cleanly,
    by_label,
    configure_training,
    figure_titled,
    figures,
    forge_canvas,
    has_message,
    open_page,
    plotly_array,
    store,
    texts,
    wait_until,
)
from test_preprocess import drawn_canvas_url

from mnist_core import plots
from mnist_core.explainer import Failed, Pending
from mnist_core.panel import PANEL_INDICES, panel_digits

WHITE = (255, 255, 255, 255)
ONE = {"png": drawn_canvas_url(draw=lambda pen: pen.line([(140, 50), (140, 230)], fill=WHITE, width=20)),
       "strokes": [{"width": 20, "points": [[140, 50], [140, 230]]}]}
EXPLAINER_TIMEOUT = 180  # the explainer's first answer waits for TensorFlow's import on a busy machine


@pytest.fixture(autouse=True)
def own_explainer():
    """A fresh explainer per test, shut down after it: no worker process outlives the test that started it."""
    import ui

    ui._explainer.clear()
    yield
    ui._explainer().shutdown()
    ui._explainer.clear()


def captions(at) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


def reference_names(figure: dict) -> list[str]:
    """The legend names of a chart's dashed reference lines."""
    return [shape.get("name", "") for shape in figure.get("layout", {}).get("shapes", [])
            if shape.get("line", {}).get("dash") not in (None, "solid")]


def every_model_table(at):
    tables = [table.value for table in at.dataframe if "second guess" in table.value.columns]
    assert len(tables) == 1, "expected the table of every model's answer"
    return tables[0]


class BusyExplainer:
    """An explainer whose worker never answers (still importing TensorFlow), then one that gives up with a reason."""

    def __init__(self):
        self.answer = Pending(starting=True)
        self.asked = 0

    def explanation(self, name, models_dir, image, wait=0.0):
        self.asked += 1
        return self.answer

    def warm_up(self):
        pass


def test_draw_says_when_the_saliency_map_is_late_and_asks_again_on_request(app, monkeypatch):
    import ui

    busy = BusyExplainer()
    monkeypatch.setattr(ui, "explainer", lambda: busy)
    monkeypatch.setenv("MNIST_LAB_EXPLAIN_WAIT_S", "0.3")
    ui.limits.clear()
    try:
        at = open_page(app(model="cnn"), "draw")
        forge_canvas(monkeypatch, ONE)
        at.run()
        assert_ran_cleanly(at)
        # The prediction and everything else are there; the map is not, and the page says so instead of waiting on.
        assert "### Prediction: 1" in texts(at.markdown)
        assert "Every model on this drawing" in texts(at.subheader) and "Feature maps" in texts(at.subheader)
        assert has_message(at.caption, "The explainer is still busy: the map comes with your next stroke")
        assert busy.asked >= 2  # it waited in steps before giving up
        assert not any(caption.startswith("Integrated gradients for") for caption in captions(at))

        busy.answer = Failed("the model file went away")
        by_label(at.button, "Show the map").click()
        at.run()
        assert_ran_cleanly(at)
        assert has_message(at.warning, "No saliency map: the model file went away")
        assert "### Prediction: 1" in texts(at.markdown)
    finally:
        ui.limits.clear()


def test_draw_shows_every_models_answer_and_what_made_it_say_that(app, monkeypatch):
    at = open_page(app(model="cnn"), "draw")
    forge_canvas(monkeypatch, ONE)
    at.run()
    assert_ran_cleanly(at)
    assert "### Prediction: 1" in texts(at.markdown)
    sure = next(float(match.group(1)) for text in texts(at.markdown)
                if (match := re.match(r"\*\*([\d.]+)%\*\* sure", text)))

    # Every model: the active one first, then the other shipped one; the active one's row is the prediction above.
    assert "Every model on this drawing" in texts(at.subheader)
    table = every_model_table(at)
    assert list(table["model"]) == ["cnn", "strong-cnn"]
    assert list(table["says"]) == [1, 1]
    assert table["sure"].iloc[0] == pytest.approx(sure, abs=0.05)
    assert all(re.fullmatch(r"\d \(\d+\.\d%\)", guess) for guess in table["second guess"])
    assert "**All 2 models say 1.**" in texts(at.markdown)

    # What made it say that: the explainer's map for its answer, once the worker has computed it.
    assert "What made it say that" in texts(at.subheader)
    wait_until(at, lambda at: any(caption.startswith("Integrated gradients for 1") for caption in captions(at)),
               "the saliency map", timeout=EXPLAINER_TIMEOUT)
    assert any(caption.startswith("Integrated gradients for 1: red ink argues for a 1") for caption in captions(at))

    # "What would make it a 4?": Grad-CAM of the last convolution, for 4.
    by_label(at.button_group, "Method").set_value("Grad-CAM")
    by_label(at.button_group, "Map for the digit").set_value(4)
    at.run()
    assert_ran_cleanly(at)
    assert any(caption.startswith("Grad-CAM for 4 from conv2d_1") for caption in captions(at)), captions(at)
    probability = [text for text in texts(at.caption) if re.match(r"[\d.]+% for 4 · computed in [\d.]+ m?s", text)]
    assert len(probability) == 1 and float(probability[0].split("%")[0]) < 50  # a 1 is not much of a 4


def test_the_train_page_shows_the_test_digit_panel_change_and_the_reference_lines(app, store):
    at = open_page(app(model="cnn"), "train")
    configure_training(at, "mlp", epochs=2, train_size=1000, name="apptest-panel")
    by_label(at.button, "Start training").click()
    at.run()
    assert_ran_cleanly(at)
    wait_until(at, lambda at: has_message(at.success, "Training finished"), "the tiny run to finish")

    _, labels = panel_digits()
    panel = figure_titled(at, "After epoch 2")
    tiles = annotation_texts(panel)
    assert len(tiles) == len(PANEL_INDICES) and all(re.fullmatch(r"\d · \d+%", tile) for tile in tiles)
    colours = [annotation["font"]["color"] for annotation in panel["layout"]["annotations"]]
    right = [int(tile[0]) == label for tile, label in zip(tiles, labels)]
    assert colours == ["#2ca02c" if ok else "#d62728" for ok in right]  # green right, red wrong
    assert panel["layout"]["title"]["text"] == f"After epoch 2: {sum(right)} of 20 right"
    # Before training an untrained network reads few of them; the history of the panel is told epoch by epoch.
    history = [text for text in texts(at.caption) if text.startswith("Right so far: ")]
    assert len(history) == 1
    counts = [int(count) for count in re.findall(r"(?:start|epoch \d): (\d+)", history[0])]
    assert len(counts) == 3 and counts[-1] == sum(right) and counts[-1] > counts[0]

    curves = [figure for figure in figures(at) if any("seed 000's CNN (reported) 99.22%" in name
                                                      for name in reference_names(figure))]
    assert len(curves) == 1  # the per-epoch chart carries the seeds' and the shipped models' figures
    assert any("seed 004's MLP (reported) 97.70%" in name for name in reference_names(curves[0]))


def test_the_augmentation_preview_shows_digits_and_new_draws_on_demand(app):
    at = open_page(app(model="cnn"), "train")
    at.sidebar.toggle(key="train_augment").set_value(True)
    at.run()
    assert_ran_cleanly(at)
    assert not [figure for figure in figures(at) if "draw 1" in annotation_texts(figure)]  # only when asked
    by_label(at.button, "Show").click()
    at.run()

    def preview(at):
        grids = [figure for figure in figures(at) if "draw 1" in annotation_texts(figure)]
        return grids[0] if grids else None

    wait_until(at, lambda at: preview(at) is not None, "the augmentation preview", timeout=EXPLAINER_TIMEOUT)
    first = preview(at)
    assert annotation_texts(first)[:10] == [str(digit) for digit in range(10)]  # a training digit of each kind
    pixels = plots.grid_pixels(plotly_array(first["data"][0]["z"]))
    assert pixels.shape[1] == 10 * 30  # ten columns of 28 pixels and their gaps
    originals, distorted = pixels[9:37], pixels[9 + 39:37 + 39]
    assert np.nanmax(originals) > 0.9 and np.nanmax(distorted) > 0.5  # digits, not blanks
    assert not np.allclose(np.nan_to_num(originals), np.nan_to_num(distorted))  # each draw changes the digits

    by_label(at.button, "Other random draws").click()
    at.run()
    wait_until(at, lambda at: preview(at) is not None and not np.array_equal(
        plotly_array(preview(at)["data"][0]["z"]), plotly_array(first["data"][0]["z"]), equal_nan=True),
        "new random draws", timeout=EXPLAINER_TIMEOUT)
    again = plots.grid_pixels(plotly_array(preview(at)["data"][0]["z"]))
    np.testing.assert_array_equal(again[9:37], originals)  # the same training digits, new distortions


def test_the_models_page_shows_first_layer_filters_and_reference_lines(app):
    at = open_page(app(model="cnn"), "models")
    assert "First-layer filters" in texts(at.subheader)
    mosaic = figure_titled(at, "conv2d: 32 filters of 3 x 3")
    scaled = plotly_array(mosaic["data"][0]["z"]).astype(float)
    assert np.nanmax(np.abs(scaled)) == pytest.approx(1.0)  # each filter scaled to its own largest weight
    accuracy = figure_titled(at, "val accuracy per epoch")
    assert any("shipped strong-cnn" in name for name in reference_names(accuracy))
    assert any("seed 000's CNN (reported) 99.22%" in name for name in reference_names(accuracy))
