"""Saving drawings on the Draw page and the My digits page, driven as a person would through AppTest.

The fixtures and helpers are test_pages.py's: `app` (a new browser session on a scratch model store), `store`,
`open_page`, `forge_canvas` (the canvas reports a value, as a browser would). Collections go to the scratch data
folder tests/conftest.py gives every test (MNIST_LAB_DATA_DIR).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from test_pages import (  # noqa: F401  (app and store are fixtures)
    app,
    assert_ran_cleanly,
    by_label,
    figures,
    forge_canvas,
    open_page,
    session_visitor,
    store,
    texts,
    wait_until,
)
from test_preprocess import drawn_canvas_url

from mnist_core.handwriting import Handwriting, new_drawing, picture_png

WHITE = (255, 255, 255, 255)
ONE = drawn_canvas_url(draw=lambda pen: pen.line([(140, 50), (140, 230)], fill=WHITE, width=20))
ZERO = drawn_canvas_url(draw=lambda pen: pen.ellipse([(80, 50), (200, 230)], outline=WHITE, width=20))


def canvas(url: str, generation: int) -> dict:
    return {"png": url, "strokes": [{"width": 20, "points": [[140, 50], [140, 230]]}], "generation": generation}


def grid_titles(at) -> list[tuple[str, str]]:
    """(caption, colour) of each tile of the My digits grid."""
    for figure in figures(at):
        annotations = figure.get("layout", {}).get("annotations", [])
        if annotations and all(annotation["text"].startswith("#") for annotation in annotations):
            return [(annotation["text"], annotation["font"]["color"]) for annotation in annotations]
    return []


def counts_shown(at) -> list[int]:
    [figure] = [figure for figure in figures(at)
                if figure.get("layout", {}).get("title", {}).get("text") == "Drawings per digit"]
    from test_pages import plotly_array

    return plotly_array(figure["data"][0]["y"]).tolist()


def save(at, verdict: str = "Right", digit: int | None = None) -> None:
    by_label(at.button_group, "Is it right?").set_value(verdict)
    at.run()
    if digit is not None:
        by_label(at.selectbox, "True digit").set_value(digit)
        at.run()
    at.button(key="save_drawing").click()
    at.run()
    assert_ran_cleanly(at)


def add_digits(visitor, images: np.ndarray, labels, predicted=None) -> None:
    """Save drawings straight into `visitor`'s collection, as the Draw page would."""
    drawings = Handwriting()
    for index, (image, label) in enumerate(zip(images, labels)):
        png = picture_png(np.kron(image, np.ones((10, 10), np.uint8)))
        guess = int(label) if predicted is None else int(predicted[index])
        drawings.add(visitor, new_drawing(png, image, int(label), guess, 0.9, "cnn"))


def test_a_drawing_is_saved_right_or_corrected_and_my_digits_shows_it(app, monkeypatch):
    at = open_page(app(model="cnn"), "draw")
    forge_canvas(monkeypatch, canvas(ONE, generation=0))
    at.run()
    assert "### Prediction: 1" in texts(at.markdown)
    assert by_label(at.selectbox, "True digit").disabled  # until "It is a" is chosen
    save(at, "Right")
    [toast] = texts(at.toast)
    name = session_visitor(at).name
    assert toast == f"Saved as a 1 in your collection `{name}` (1 drawing)."
    # The canvas starts empty for the next digit: the drawing the browser still reports is from before the save.
    assert any(text.startswith("Draw a digit") for text in texts(at.info))

    forge_canvas(monkeypatch, canvas(ZERO, generation=1))
    at.run()
    assert "### Prediction: 0" in texts(at.markdown)
    save(at, "It is a", 6)  # the person says it is a 6: the model's 0 is a mistake
    assert texts(at.toast)[-1] == f"Saved as a 6 in your collection `{name}` (2 drawings)."

    forge_canvas(monkeypatch, canvas(ZERO, generation=2))  # the same drawing again, now called a 0
    at.run()
    save(at, "Right")
    assert texts(at.toast)[-1] == f"Already in your collection `{name}`: its label is now 0."

    forge_canvas(monkeypatch, canvas(ONE, generation=3))
    at.run()
    by_label(at.button_group, "Is it right?").set_value("It is a")
    at.run()
    assert at.button(key="save_drawing").disabled  # "It is a" what? No digit picked yet

    open_page(at, "my_digits")
    assert texts(at.title) == ["My digits"]
    assert f"Collection `{name}` · 2 drawings · yours" in texts(at.markdown)
    assert grid_titles(at) == [("#1: 1", "#444444"), ("#2: 0", "#444444")]
    assert counts_shown(at) == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]


def test_a_drawing_sent_as_grey_pixels_is_kept_as_a_png_of_the_canvas(app, monkeypatch):
    # Chromium sends the canvas' deflated grey pixels, not a PNG: the page makes the PNG the collection keeps.
    import io

    from PIL import Image
    from test_preprocess import grey_value

    from mnist_core.preprocess import decode_canvas

    at = open_page(app(model="cnn"), "draw")
    grey = decode_canvas(ONE, 280)[..., 0]
    forge_canvas(monkeypatch, {**canvas(ONE, generation=0), "png": None, "grey": grey_value(grey)})
    at.run()
    assert "### Prediction: 1" in texts(at.markdown)
    save(at, "Right")
    collection = Handwriting().own(session_visitor(at))
    [drawing] = Handwriting().drawings(collection.id)
    with Image.open(io.BytesIO(Handwriting().png(drawing.id))) as kept:
        assert kept.format == "PNG" and kept.size == (280, 280)
        np.testing.assert_array_equal(np.asarray(kept.convert("L")), grey)


def test_a_corrected_drawing_is_marked_as_the_models_mistake(app, mnist):
    at = open_page(app(model="cnn"), "my_digits")
    (_, _), (x_test, y_test) = mnist
    add_digits(session_visitor(at), x_test[:3], y_test[:3], predicted=[y_test[0], 1, y_test[2]])
    at.run()
    assert grid_titles(at) == [(f"#1: {y_test[0]}", "#444444"), (f"#2: {y_test[1]} (1)", "#d62728"),
                               (f"#3: {y_test[2]}", "#444444")]
    assert any("the 1 drawing(s) the active model of the moment got wrong" in text for text in texts(at.caption))


def test_my_digits_without_drawings_says_how_to_start(app):
    at = open_page(app(model="cnn"), "my_digits")
    assert any(text.startswith("You have not saved any digits yet") for text in texts(at.info))
    assert "Nothing to export yet." in texts(at.caption)
    assert not [text for text in texts(at.subheader) if text.startswith("Every model")]


def test_deleting_one_drawing_then_the_whole_collection_after_confirming(app, mnist):
    at = open_page(app(model="cnn"), "my_digits")
    (_, _), (x_test, y_test) = mnist
    add_digits(session_visitor(at), x_test[:3], y_test[:3])
    at.run()
    target = by_label(at.selectbox, "Drawing to delete")
    assert target.options[1].startswith(f"#2: a {y_test[1]} · saved ")
    second = Handwriting().drawings(Handwriting().own(session_visitor(at)).id)[1]
    target.set_value(second.id)
    at.run()
    by_label(at.button, "Delete drawing").click()
    at.run()
    assert_ran_cleanly(at)
    assert [title for title, _ in grid_titles(at)] == [f"#1: {y_test[0]}", f"#2: {y_test[2]}"]
    assert "Drawing deleted." in texts(at.toast)

    assert by_label(at.button, "Delete the collection").disabled
    by_label(at.checkbox, "Yes, delete all 2 drawings").check()
    at.run()
    by_label(at.button, "Delete the collection").click()
    at.run()
    assert_ran_cleanly(at)
    assert any(text.startswith("You have not saved any digits yet") for text in texts(at.info))
    assert Handwriting().own(session_visitor(at)) is None


def npz_file(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def upload(at, name: str, data: bytes) -> None:
    by_label(at.file_uploader, "Import a .zip or .npz").set_value((name, data, "application/octet-stream"))
    at.run()
    by_label(at.button, "Import").click()
    at.run()
    assert_ran_cleanly(at)


def test_import_refuses_a_wrong_file_with_the_reason_and_adds_a_good_one(app, mnist):
    (_, _), (x_test, y_test) = mnist
    at = open_page(app(model="cnn"), "my_digits")
    upload(at, "floats.npz", npz_file(x=x_test[:3].astype(np.float32), y=y_test[:3]))
    assert texts(at.error) == ["floats.npz was not imported: The array x holds float32 values; it must hold whole "
                               "numbers (uint8)."]
    upload(at, "labels.npz", npz_file(x=x_test[:3], y=np.array([1, 2, 12], np.uint8)))
    assert "labels from 1 to 12" in texts(at.error)[0]
    assert any(text.startswith("You have not saved any digits yet") for text in texts(at.info))

    upload(at, "mine.npz", npz_file(x=x_test[:4], y=y_test[:4]))
    name = session_visitor(at).name
    assert texts(at.success)[0] == f"Imported 4 drawing(s) from `mine.npz` into `{name}`."
    assert [title for title, _ in grid_titles(at)] == [f"#{i + 1}: {y_test[i]}" for i in range(4)]
    upload(at, "mine-again.npz", npz_file(x=x_test[:5], y=y_test[:5]))
    assert texts(at.success)[0] == \
        f"Imported 1 drawing(s) from `mine-again.npz` into `{name}` (4 were there already)."
    exports = [button.proto.label for button in at.get("download_button")]
    assert exports == ["Export .zip (npz + PNGs)", "Export .npz (MNIST's format)"]


def test_a_named_collection_is_opened_elsewhere_but_only_its_owner_changes_it(app, mnist):
    (_, _), (x_test, y_test) = mnist
    anna = open_page(app(model="cnn"), "my_digits")
    add_digits(session_visitor(anna), x_test[:2], y_test[:2])
    anna.run()
    assert "Give your collection a name to find it again from another browser on this server." in texts(anna.caption)
    by_label(anna.text_input, "New name for your collection").input("annas hand")
    by_label(anna.button, "Rename").click()
    anna.run()
    assert_ran_cleanly(anna)
    assert "Collection `annas hand` · 2 drawings · yours" in texts(anna.markdown)

    ben = open_page(app(model="cnn"), "my_digits")
    by_label(ben.text_input, "Name of a collection").input("Annas Hand")
    by_label(ben.button, "Open").click()
    ben.run()
    assert_ran_cleanly(ben)
    assert f"Collection `annas hand` · 2 drawings · by {session_visitor(anna).name}" in texts(ben.markdown)
    assert any(text.startswith("You are looking at somebody else's collection") for text in texts(ben.info))
    assert not [button for button in ben.button if button.label in ("Delete drawing", "Delete the collection")]
    assert by_label(ben.button, "Rename").disabled
    assert len(grid_titles(ben)) == 2  # Ben sees the drawings, and can test models on them
    by_label(ben.text_input, "Name of a collection").input("nobody's")
    by_label(ben.button, "Open").click()
    ben.run()
    assert texts(ben.error) == ["Use letters, digits, spaces, '-', '_' and '.' in a collection name, starting with a "
                                "letter or digit."]
    by_label(ben.button, "Back to my collection").click()
    ben.run()
    assert any(text.startswith("You have not saved any digits yet") for text in texts(ben.info))


def test_every_model_is_measured_on_the_collection(app, store, mnist):
    import pandas

    from mnist_core.evaluation import evaluate
    from mnist_core.inference import Classifier

    (_, _), (x_test, y_test) = mnist
    at = open_page(app(model="cnn"), "my_digits")
    chosen = np.flatnonzero(np.isin(y_test, [2, 3, 5]))[:24]  # a hand that writes only 2, 3 and 5
    add_digits(session_visitor(at), x_test[chosen], y_test[chosen])
    at.run()
    assert "Every model on your handwriting" in texts(at.subheader)
    table = at.dataframe[0].value
    assert sorted(table["model"]) == ["cnn", "strong-cnn"]
    for name in ("cnn", "strong-cnn"):
        expected = evaluate(Classifier.load(name, store), x_test[chosen], y_test[chosen])
        row = table[table["model"] == name].iloc[0]
        assert row["your digits"] == pytest.approx(expected.accuracy * 100)
        assert row["mistakes"] == f"{expected.error_count} of 24"
        assert row["3"] == pytest.approx(expected.per_class_accuracy[3] * 100)
        assert pandas.isna(row["0"]) and pandas.isna(row["9"])  # no 0s or 9s drawn: no figure, not 0%
    assert by_label(at.selectbox, "Look closer at").value == "cnn"


def test_an_uploaded_photo_is_saved_like_a_drawing(app, mnist):
    from PIL import Image

    (_, _), (x_test, y_test) = mnist
    at = open_page(app(model="cnn"), "draw")
    by_label(at.button_group, "Source").set_value("Upload a photo")
    at.run()
    photo = Image.fromarray(255 - x_test[0]).resize((700, 700), Image.Resampling.BILINEAR)  # dark ink on paper
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    by_label(at.file_uploader, "A photo or scan").set_value(("seven.jpg", buffer.getvalue(), "image/jpeg"))
    at.run()
    assert f"### Prediction: {y_test[0]}" in texts(at.markdown)
    save(at, "Right")
    assert texts(at.toast)[-1].startswith(f"Saved as a {y_test[0]} in your collection")
    drawings = Handwriting()
    [saved] = drawings.drawings(drawings.own(session_visitor(at)).id)
    assert (saved.label, saved.source, saved.model) == (y_test[0], "upload", "cnn")
    kept = Image.open(io.BytesIO(drawings.png(saved.id)))
    assert kept.format == "PNG" and kept.size == (560, 560)  # the photo, kept at most 560 pixels on a side


def test_fine_tuning_from_the_page_runs_in_the_queue_and_shows_before_and_after(app, store, mnist):
    from mnist_core.store import read_info

    (_, _), (x_test, y_test) = mnist
    at = open_page(app(model="cnn"), "my_digits")
    add_digits(session_visitor(at), x_test[200:220], y_test[200:220])
    at.run()
    assert by_label(at.selectbox, "Start from").value == "cnn"
    by_label(at.select_slider, "Epochs").set_value(1)
    by_label(at.select_slider, "MNIST images").set_value(2000)
    by_label(at.text_input, "Name of the new model").input("cnn-mine")
    at.run()
    by_label(at.button, "Teach it my hand").click()
    at.run()
    assert_ran_cleanly(at)
    wait_until(at, lambda at: any(text.startswith("Fine-tuning finished: saved as `cnn-mine`")
                                  for text in texts(at.success)), "the fine-tuning to finish")
    assert "**Models taught this collection**: before and after, on the held-out drawings and on MNIST's test set" \
        in texts(at.markdown)
    [taught] = [frame.value for frame in at.dataframe if "held-out accuracy" in frame.value.columns]
    row = taught.iloc[0]
    record = read_info("cnn-mine", store).finetune
    assert (row["model"], row["from"], row["epochs"], row["held-out drawings"]) == ("cnn-mine", "cnn", 1,
                                                                                     record["held_out"])
    held, mnist_test = record["held_out_accuracy"], record["mnist_test_accuracy"]
    assert row["held-out accuracy"] == f"{held['before']:.1%} → {held['after']:.1%}"
    assert row["MNIST test accuracy"] == f"{mnist_test['before']:.2%} → {mnist_test['after']:.2%}"
    assert row["MNIST kept"] == (f"yes ({-mnist_test['drop_points']:+.2f} points)" if mnist_test["within_limit"]
                                 else f"NO: {-mnist_test['drop_points']:+.2f} points")
    assert record["collection"] == session_visitor(at).name and record["collection_size"] == 20
    assert "cnn-mine" in list(at.dataframe[0].value["model"])  # and it is measured on the collection like any model


def test_without_mnist_the_collection_still_works_and_fine_tuning_says_why_not(app, mnist):
    import ui
    from mnist_core.data import DatasetError

    (_, _), (x_test, y_test) = mnist
    message = "The MNIST file data/mnist.npz is missing. Restore it with `git checkout`."

    def missing(*args, **kwargs):
        raise DatasetError(message)

    real_load, real_check = ui.load_mnist, ui.check_mnist  # restored by hand: the store fixture needs them back
    ui.load_mnist = ui.check_mnist = missing
    ui._mnist_cached.clear()
    try:
        at = open_page(app(model="cnn"), "my_digits")
        add_digits(session_visitor(at), x_test[:12], y_test[:12])
        at.run()
        assert_ran_cleanly(at)
        assert len(grid_titles(at)) == 12 and "Every model on your handwriting" in texts(at.subheader)
        assert texts(at.main.error) == [f"**The MNIST data could not be loaded.** {message}"]
        assert not [button for button in at.button if button.label == "Teach it my hand"]
    finally:
        ui.load_mnist, ui.check_mnist = real_load, real_check
        ui._mnist_cached.clear()


def test_a_fine_tuned_model_that_lost_too_much_on_mnist_is_flagged(app, store, mnist):
    from mnist_core.architectures import build_model
    from mnist_core.finetune import Comparison, Record
    from mnist_core.store import ModelInfo, save_model

    (_, _), (x_test, y_test) = mnist
    at = open_page(app(model="cnn"), "my_digits")
    add_digits(session_visitor(at), x_test[:12], y_test[:12])
    record = Record(base_model="cnn", collection=session_visitor(at).name, collection_size=12, labels={"7": 12},
                    trained_on=9, held_out=3, held_out_indices=[0, 4, 8], held_out_accuracy=Comparison(0.5, 1.0),
                    mnist_test_accuracy=Comparison(0.9924, 0.9874), mnist_images=2000, repeats=56, epochs=2)
    save_model(build_model("mlp"), ModelInfo(name="overdone", architecture="mlp", config={}, test_accuracy=0.9874,
                                             finetune=record.to_dict()), store)
    at.run()
    assert_ran_cleanly(at)
    [taught] = [frame.value for frame in at.dataframe if "held-out accuracy" in frame.value.columns]
    assert taught.iloc[0].to_dict() == {"model": "overdone", "from": "cnn", "epochs": 2, "held-out drawings": 3,
                                        "held-out accuracy": "50.0% → 100.0%",
                                        "MNIST test accuracy": "99.24% → 98.74%", "MNIST kept": "NO: -0.50 points"}
    assert any(text.startswith("`overdone` lost 0.50 points on MNIST's test set, more than the 0.3 allowed")
               for text in texts(at.warning))
