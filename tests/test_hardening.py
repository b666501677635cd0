"""Hardening: the app is public, so bad input, several users and faults must give a message, never a traceback or a
lost model. One test per point of the hardening issue that the other test files do not already prove.

Already proven elsewhere (and not repeated here):
- decoding each bad kind of file in the core: tests/test_preprocess.py (test_decode_*), and the hypothesis fuzz of
  to_mnist over uint8/float arrays: test_any_array_gives_a_valid_image_or_a_value_error;
- unsafe model names, kill during save, broken listing, Lambda refused by load_model: tests/test_store.py;
- a second session queues behind the first, the owner stops it, broken models deleted from the Models page,
  a missing MNIST file on every page, UI bounds of the training settings: tests/test_pages.py;
- TrainConfig's errors: tests/test_training.py; stop before the first batch, a failure frees the queue, a worker
  that dies: tests/test_jobs.py. Browser load and a closed tab: tests/e2e/test_load.py.

The page tests reuse tests/test_pages.py's fixtures (a scratch store per test, one AppTest per browser session).
"""

from __future__ import annotations

import inspect
import io
import json
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

import mnist_core.jobs.work as jobs
import mnist_core.training as training
from job_runners import InProcessRunner
from mnist_core.constants import DATA_PATH, IMAGE_SIZE
from mnist_core.jobs import JobStatus, Scheduler
from mnist_core.visitors import Visitor
from mnist_core.preprocess import MAX_PIXELS, UnreadableImageError, decode_upload, preprocess_steps, to_mnist
from mnist_core.store import list_models, load_model, read_info
from mnist_core.training import BatchEvent, TrainConfig
from test_pages import (  # noqa: F401  (app and store are fixtures)
    PAGE_TITLES,
    app,
    assert_ran_cleanly,
    by_label,
    choose_model,
    configure_training,
    has_message,
    open_page,
    store,
    texts,
    wait_until,
)
from test_preprocess import with_claimed_size

ROOT = Path(__file__).resolve().parents[1]
WAIT = 120  # seconds; only reached when something hangs
TINY = TrainConfig(architecture="mlp", epochs=2, batch_size=32, train_size=600, validation="test")
TINY_STEPS = -(-600 // 32)
QUICK = TrainConfig(architecture="mlp", epochs=1, batch_size=32, train_size=100)


# --- Uploads: every bad file is a message on the Draw page --------------------------------------------------------


def encoded(picture: Image.Image, file_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=file_format, **options)
    return buffer.getvalue()


def photo_of(digit_image: np.ndarray) -> Image.Image:
    """An MNIST digit as a photo would show it: dark ink on white paper, four times larger."""
    return Image.fromarray(255 - digit_image).resize((112, 112), Image.Resampling.BILINEAR)


def test_upload_size_is_capped_in_the_streamlit_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert 1 <= config["server"]["maxUploadSize"] <= 10  # MB
    # Visitors never see a traceback's details, whatever happens.
    assert config["client"]["showErrorDetails"] in ("none", False)


def test_no_element_is_sent_as_a_reference_to_a_browser_cache_that_may_have_dropped_it():
    """Streamlit 1.67 sends a large element a browser reported having as a reference to it; with fragments rerunning
    every second the browser had at times dropped it ("Cached ForwardMsg MISS": a fatal websocket error, a blank page,
    in the classroom bench). The setting that turns the cache off must exist under its name and be read."""
    from streamlit import config as streamlit_config
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.forward_msg_cache import populate_hash_if_needed

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["global"]["minCachedMessageSize"] >= 1e12
    original = streamlit_config.get_option("global.minCachedMessageSize")  # raises if Streamlit renamed it
    streamlit_config.set_option("global.minCachedMessageSize", config["global"]["minCachedMessageSize"])
    try:
        message = ForwardMsg()
        message.delta.new_element.markdown.body = "x" * 200_000  # a big chart's worth of bytes
        populate_hash_if_needed(message)
        assert message.hash and not message.metadata.cacheable
    finally:
        streamlit_config.set_option("global.minCachedMessageSize", original)


def test_no_per_run_cleanup_starves_the_server_when_many_visitors_poll(monkeypatch):
    """Several sessions at once: after every script run (and every sidebar poll of every session) Streamlit would
    force two full garbage collections and clear Keras' session, 0.2-0.5 s holding the GIL each time; with five
    visitors the server stopped serving pages (tests/e2e/test_load.py). Both are turned off, and must stay off."""
    import keras
    from streamlit.runtime.scriptrunner import script_runner

    import ui  # noqa: F401  (importing it turns Streamlit's Keras reset off)

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["postScriptGC"] is False
    # ui replaces Streamlit's private after-run hook: it must still be the one the run loop calls...
    assert "_clean_problem_modules" in inspect.getsource(script_runner.ScriptRunner._run_script)
    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: cleared.append(True))
    script_runner._clean_problem_modules()  # ...and it no longer resets Keras
    assert not cleared


def upload(at, name: str, data: bytes, mime: str = "image/png"):
    by_label(at.file_uploader, "A photo or scan").set_value((name, data, mime))
    at.run()
    return at


def test_every_kind_of_bad_upload_is_a_clear_message_on_the_draw_page(app, mnist):
    (_, _), (x_test, y_test) = mnist
    seven = x_test[0]
    assert y_test[0] == 7
    png = encoded(photo_of(seven), "PNG")
    jpeg = encoded(photo_of(seven).convert("RGB"), "JPEG", quality=90)
    unreadable = "The file could not be read as an image"
    blank = "The picture is blank: draw or upload a digit first."
    # kind -> (file name, bytes, where the message is, what it starts with)
    bad_uploads = {
        "non-image bytes": ("digit.png", b"7,0,0,255\n" * 50, "error", unreadable),
        "truncated PNG": ("digit.png", png[: len(png) // 2], "error", unreadable),
        "truncated JPEG": ("digit.jpg", jpeg[: len(jpeg) // 2], "error", unreadable),
        "zero bytes": ("digit.png", b"", "error", "The file is empty."),
        "PNG claiming 10000 x 10000": (
            "bomb.png", with_claimed_size(encoded(Image.new("L", (8, 8)), "PNG"), 10_000, 10_000), "error",
            "The image is too large (100,000,000 pixels); the limit is 25 megapixels.",
        ),
        "all white": ("white.png", encoded(Image.new("L", (200, 200), 255), "PNG"), "info", blank),
        "all black": ("black.jpg", encoded(Image.new("RGB", (200, 200)), "JPEG"), "info", blank),
    }
    # Pillow's own decompression-bomb limit is the app's, not Pillow's default: set on purpose, still in force.
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS

    at = open_page(app(model="cnn"), "draw")
    by_label(at.button_group, "Source").set_value("Upload a photo")
    at.run()
    problems = []
    for kind, (name, data, where, message) in bad_uploads.items():
        upload(at, name, data)
        shown = texts(at.main.error if where == "error" else at.main.info)
        if at.exception:
            problems.append(f"{kind}: traceback {[error.message for error in at.exception]}")
        elif not any(text.startswith(message) for text in shown):
            problems.append(f"{kind}: expected {where} {message!r}, page shows {shown}")
        elif [text for text in texts(at.markdown) if "Prediction:" in text]:
            problems.append(f"{kind}: a prediction was shown for a bad file")
    assert not problems, problems


def test_unusual_but_valid_uploads_are_read_and_predicted(app, mnist):
    """Animated GIF (its first frame counts), 16-bit grey PNG, CMYK JPEG, and strips of extreme aspect ratio."""
    (_, _), (x_test, y_test) = mnist
    seven, two, one = x_test[0], x_test[1], x_test[2]
    assert (y_test[0], y_test[1], y_test[2]) == (7, 2, 1)
    wide = np.full((3, 1000), 255, np.uint8)  # a 1000 x 3 strip with a dash on it
    wide[1, 100:900] = 0
    tall = np.ascontiguousarray(wide.T)  # 3 x 1000: a long "1"
    readable_uploads = {
        "2-frame GIF (first frame a 7)": (
            "animated.gif",
            encoded(photo_of(seven), "GIF", save_all=True, append_images=[photo_of(two)], duration=100, loop=0),
            7,
        ),
        "16-bit PNG": (
            "deep.png", encoded(Image.fromarray(np.asarray(photo_of(one), np.uint16) * 257), "PNG"), 1,
        ),
        "CMYK JPEG": ("print.jpg", encoded(photo_of(seven).convert("RGB").convert("CMYK"), "JPEG", quality=95), 7),
        "1000 x 3 strip": ("wide.png", encoded(Image.fromarray(wide), "PNG"), None),
        "3 x 1000 strip": ("tall.png", encoded(Image.fromarray(tall), "PNG"), 1),
        "20000 x 2 strip": ("wider.png", encoded(Image.fromarray(np.repeat(wide[1:3], 20, axis=1)), "PNG"), None),
    }
    assert Image.open(io.BytesIO(readable_uploads["16-bit PNG"][1])).mode.startswith("I;16")
    assert Image.open(io.BytesIO(readable_uploads["CMYK JPEG"][1])).mode == "CMYK"

    at = open_page(app(model="cnn"), "draw")
    by_label(at.button_group, "Source").set_value("Upload a photo")
    at.run()
    problems = []
    for kind, (name, data, digit) in readable_uploads.items():
        upload(at, name, data)
        predictions = [text for text in texts(at.markdown) if text.startswith("### Prediction:")]
        if at.exception:
            problems.append(f"{kind}: traceback {[error.message for error in at.exception]}")
        elif at.main.error or len(predictions) != 1:
            problems.append(f"{kind}: expected a prediction, page shows {predictions}, errors {texts(at.main.error)}")
        elif digit is not None and predictions[0] != f"### Prediction: {digit}":
            problems.append(f"{kind}: expected 'Prediction: {digit}', page shows {predictions[0]}")
        captions = [caption for image in at.image for caption in image.captions]
        if not at.exception and captions[:1] != [name]:
            problems.append(f"{kind}: the uploaded picture is not shown ({captions[:1]})")
    assert not problems, problems


def forge_canvas_value(monkeypatch, data_url):
    """Make the Draw page's canvas hand over `data_url` as its picture, as a tampered browser can."""
    from test_pages import forge_canvas

    forge_canvas(monkeypatch, {"png": data_url, "strokes": [{"width": 20, "points": [[1, 2]]}]})


def test_forged_canvas_values_are_clear_messages_on_the_draw_page_and_no_decoder_runs_on_them(
    app, mnist, tmp_path, monkeypatch
):
    import base64
    import os

    from PIL import EpsImagePlugin

    def data_url(data: bytes) -> str:
        return "data:image/png;base64," + base64.b64encode(data).decode("ascii")

    marker = tmp_path / "ghostscript-ran"  # a stand-in gs that leaves a trace if anything hands it the EPS
    (tmp_path / "gs").write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    (tmp_path / "gs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)
    (_, _), (x_test, y_test) = mnist
    drawn_seven = np.dstack([x_test[0]] * 3 + [np.full_like(x_test[0], 255)])  # white ink on the black canvas
    unreadable = "The drawing could not be read: the canvas sent something that is not a PNG picture."
    forged = {
        "junk text": ("this is not a data url", unreadable),
        "bad base64": ("data:image/png;base64,@@@=", unreadable),
        "a number": (12345, unreadable),
        "another size": (data_url(encoded(Image.new("RGBA", (28, 28)), "PNG")),
                         "The canvas sent a 28 x 28 picture, not a 280 x 280 drawing."),
        "junk bytes": (data_url(b"\x00junk" * 50), unreadable),
        "EPS": (data_url(encoded(Image.new("L", (8, 8)), "EPS")), unreadable),
        "49 MP PNG": (
            data_url(with_claimed_size(encoded(Image.new("L", (8, 8)), "PNG"), 7000, 7000)),
            "The drawing is too large (49,000,000 pixels); the canvas is at most 1120 x 1120 pixels.",
        ),
    }

    at = open_page(app(model="cnn"), "draw")
    problems = []
    for kind, (value, message) in forged.items():
        forge_canvas_value(monkeypatch, value)
        at.run()
        if at.exception:
            problems.append(f"{kind}: traceback {[error.message for error in at.exception]}")
        elif texts(at.main.error) != [message]:
            problems.append(f"{kind}: expected {message!r}, page shows {texts(at.main.error)}")
        elif [text for text in texts(at.markdown) if "Prediction:" in text]:
            problems.append(f"{kind}: a prediction was shown for a forged value")
    assert not problems, problems
    assert not marker.exists(), "Ghostscript ran on a forged canvas value"

    forge_canvas_value(monkeypatch, data_url(encoded(Image.fromarray(drawn_seven).resize((280, 280)), "PNG")))
    at.run()  # an honest canvas value still reads as the digit it shows
    assert_ran_cleanly(at)
    assert not at.main.error and f"### Prediction: {y_test[0]}" in texts(at.markdown)


def test_an_upload_in_a_format_the_app_does_not_accept_is_refused_on_the_draw_page(app, tmp_path, monkeypatch):
    """An EPS named digit.png reached Ghostscript before, and the page showed its command line with server paths."""
    import os

    from PIL import EpsImagePlugin

    marker = tmp_path / "ghostscript-ran"
    (tmp_path / "gs").write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    (tmp_path / "gs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)

    at = open_page(app(model="cnn"), "draw")
    by_label(at.button_group, "Source").set_value("Upload a photo")
    at.run()
    for name, data in [("digit.png", encoded(Image.new("L", (64, 64), 255), "EPS")),
                       ("digit.jpg", encoded(Image.new("L", (64, 64), 255), "TIFF"))]:
        upload(at, name, data)
        assert_ran_cleanly(at)
        assert texts(at.main.error) == [
            "The file could not be read as an image: only PNG, JPEG, GIF, BMP and WebP files are accepted."
        ], name
    assert not marker.exists()


def test_fit_within_keeps_every_strip_at_least_one_pixel_across():
    """The helper behind the Draw page's fix: st.image alone turns a 1000 x 3 strip into 280 x 0 and fails."""
    from mnist_core.plots import fit_within

    for shape, dtype in [((3, 1000), np.uint8), ((1000, 3, 3), np.uint8), ((2, 20000, 4), np.uint8),
                         ((1, 5000), np.float32), ((28, 28), np.float32), ((280, 280, 4), np.uint8)]:
        fitted = fit_within(np.ones(shape, dtype), 280)
        assert max(fitted.shape[:2]) == 280 and min(fitted.shape[:2]) >= 1, shape
        assert fitted.shape[2:] == shape[2:] and fitted.dtype == dtype


# --- Fuzzing: only the documented errors escape ----------------------------------------------------------------


def _seed_digit() -> Image.Image:
    picture = Image.new("L", (48, 48), 255)
    ImageDraw.Draw(picture).line([(12, 10), (36, 10), (20, 40)], fill=0, width=4)
    return picture


def _seed_files() -> list[bytes]:
    """Small valid files of every format and mode the upload path handles, for the fuzzer to damage."""
    digit = _seed_digit()
    frames = dict(save_all=True, append_images=[digit.rotate(90)], duration=100, loop=0)
    palette = digit.convert("P")
    return [
        encoded(digit, "PNG"),
        encoded(digit.convert("RGBA"), "PNG"),
        encoded(Image.fromarray(np.asarray(digit, np.uint16) * 257), "PNG"),
        encoded(palette, "PNG", transparency=palette.getpixel((0, 0))),  # transparent paper
        encoded(digit.convert("RGB"), "JPEG", quality=80),
        encoded(digit.convert("RGB").convert("CMYK"), "JPEG"),
        encoded(digit, "GIF", **frames),
        encoded(digit, "BMP"),
        encoded(digit.convert("RGB"), "WEBP"),
        encoded(digit, "TIFF"),  # not accepted: the fuzzer's near misses of it must be refused as cleanly
    ]


SEED_FILES = _seed_files()


@st.composite
def damaged_image_files(draw) -> bytes:
    """A valid image file with a few bytes changed (often in its header) and perhaps cut short."""
    data = bytearray(draw(st.sampled_from(SEED_FILES)))
    for _ in range(draw(st.integers(0, 6))):
        header_end = min(len(data), 96)
        position = draw(st.one_of(st.integers(0, header_end - 1), st.integers(0, len(data) - 1)))
        data[position] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def check_upload_path(data: bytes) -> None:
    """What the Draw page does with an upload: decode, then the MNIST recipe. Only ValueErrors may escape."""
    try:
        pixels = decode_upload(data)
    except UnreadableImageError as error:
        assert str(error).startswith(("The file", "The image")), str(error)
        return
    assert pixels.dtype == np.uint8
    assert pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4)), pixels.shape
    assert 0 < pixels.shape[0] * pixels.shape[1] <= MAX_PIXELS
    try:
        centered = preprocess_steps(pixels).centered
    except ValueError:
        return
    assert centered.shape == (IMAGE_SIZE, IMAGE_SIZE) and centered.dtype == np.float32
    assert np.isfinite(centered).all() and 0.0 <= centered.min() and centered.max() <= 1.0


@pytest.mark.filterwarnings("ignore::UserWarning:PIL")  # Pillow warns about damaged TIFF tags, then copes
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=4096), damaged_image_files()))
def test_fuzzed_uploads_give_an_image_or_an_unreadable_image_error(data):
    check_upload_path(data)


def test_the_undamaged_seed_files_all_decode():
    """The fuzzer's seeds are real images, so its damaged files are near misses, not noise."""
    *accepted, tiff = SEED_FILES
    for data in accepted:
        assert to_mnist(decode_upload(data)).shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert Image.open(io.BytesIO(tiff)).format == "TIFF"
    with pytest.raises(UnreadableImageError, match="only PNG, JPEG, GIF, BMP and WebP files are accepted"):
        decode_upload(tiff)


every_dtype = st.sampled_from(
    [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
     np.float16, np.float32, np.float64]
)
every_shape = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=48),
    st.tuples(st.integers(1, 48), st.integers(1, 48), st.sampled_from([1, 3, 4])),
)


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(dtype=every_dtype, shape=every_shape))  # floats include NaN, inf and -inf
def test_fuzzed_arrays_of_every_dtype_give_an_mnist_image_or_a_value_error(pixels):
    non_finite = pixels.dtype.kind == "f" and not np.isfinite(pixels).all()
    try:
        result = to_mnist(pixels)
    except ValueError as error:
        if non_finite:
            assert "NaN or infinite" in str(error)
        return
    assert not non_finite, "a picture with NaN or inf must be refused, not read"
    assert result.shape == (IMAGE_SIZE, IMAGE_SIZE) and result.dtype == np.float32
    assert np.isfinite(result).all() and 0.0 <= result.min() and result.max() <= 1.0


def test_format_duration_answers_any_number_and_never_raises():
    """A NaN train_seconds in a model's metadata crashed the Home page here before the store refused it."""
    import ui

    assert [ui.format_duration(value) for value in (0, 59.6, 3725, np.float32(12.4))] == ["0:00", "1:00", "1:02:05",
                                                                                         "0:12"]
    assert {ui.format_duration(value) for value in (float("nan"), float("inf"), -float("inf"), -1, None)} == {"n/a"}


# --- Model store: Lambda layers never run, shipped models never replaced ---------------------------------------


def test_a_model_with_a_lambda_layer_is_refused_on_every_page_and_its_code_never_runs(app, store, tmp_path):
    import keras

    from mnist_core.store import ModelInfo, litert_path, model_path, save_model

    marker = tmp_path / "lambda-ran"
    # Code that leaves a trace when it runs; Keras would run it while rebuilding the model on an unsafe load.
    leaves_a_trace = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Lambda(leaves_a_trace), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    save_model(model, ModelInfo(name="sneaky", architecture="mlp", config={}, test_accuracy=0.99), store)
    marker.unlink()  # building (and converting) the model above ran it
    # A .keras that comes from elsewhere has no .tflite (the app's own save made one above, while trusted code ran):
    # the server has it converted in a worker, and that worker's safe_mode load is what refuses it.
    litert_path("sneaky", store).unlink()

    at = open_page(app(model="cnn"), "draw")
    choose_model(at, "sneaky")  # its files are well-formed, so it is listed; loading is what refuses it
    errors = texts(at.main.error)
    assert len(errors) == 1 and errors[0].startswith("The model 'sneaky' could not be loaded")
    assert errors[0].endswith("Pick another one in the sidebar.")
    open_page(at, "models")
    assert any("'sneaky' could not be loaded" in text for text in texts(at.main.error))
    assert not marker.exists(), "the Lambda's code ran"

    # The trace is real: the same file loaded without safe_mode does run the code.
    keras.saving.load_model(model_path("sneaky", store), safe_mode=False)
    assert marker.exists()


def test_training_under_a_shipped_models_name_never_overwrites_it(app, store):
    shipped_files = {path.name: path.read_bytes() for path in sorted(store.glob("cnn.*"))}
    assert set(shipped_files) == {"cnn.json", "cnn.keras", "cnn.tflite"} and read_info("cnn", store).shipped

    at = open_page(app(model="cnn"), "train")
    configure_training(at, "mlp", epochs=1, train_size=100, name="cnn")
    by_label(at.button, "Start training").click()
    at.run()
    assert_ran_cleanly(at)
    wait_until(at, lambda at: has_message(at.success, "Training finished"), "the run named like a shipped model")
    assert texts(at.success)[0].startswith("Training finished: saved as `cnn-2`")
    assert {path.name: path.read_bytes() for path in sorted(store.glob("cnn.*"))} == shipped_files
    assert read_info("cnn-2", store).architecture == "mlp" and not read_info("cnn-2", store).shipped

    open_page(at, "models")  # and the Models page never offers the shipped one for deletion
    assert "cnn" not in [option.split(" ")[0] for option in by_label(at.selectbox, "Model to delete").options]


# --- Training: bounded settings, stop at any moment, failures shown ------------------------------------------


def test_out_of_range_settings_from_a_tampered_browser_are_held_to_the_bounds(app):
    """The UI bounds are kept by the server too: a value outside them is reset (Streamlit), never trained with."""
    at = open_page(app(), "train")
    for key, value in [("train_epochs", 10_000), ("train_train_size", 10**9), ("train_seed", -5)]:
        at.sidebar.number_input(key=key).set_value(value)
    at.sidebar.select_slider(key="train_learning_rate").set_value(5.0)
    at.run()
    assert_ran_cleanly(at)
    state = at.session_state
    assert 1 <= state["train_epochs"] <= 50 and 100 <= state["train_train_size"] <= 60_000
    assert 0 <= state["train_seed"] and state["train_learning_rate"] <= 0.1
    # What Start would train with passes TrainConfig's own checks, so Start stays available and no error shows.
    TrainConfig(architecture=state["train_architecture"], epochs=state["train_epochs"],
                train_size=state["train_train_size"], seed=state["train_seed"],
                learning_rate=state["train_learning_rate"])
    assert not at.error and not by_label(at.button, "Start training").disabled


ALICE = Visitor("a11ce000a11ce000", "visitor-a11c")
BOB = Visitor("b0b00000b0b00000", "visitor-b0b0")


def queue_in(tmp_path, mnist) -> Scheduler:
    """A training queue whose jobs run their real work in threads of this process, so tests can reach into it."""
    return Scheduler(InProcessRunner(mnist), tmp_path)


def saved_state(models_dir: Path, name: str) -> dict:
    """The saved model as a person would check it: metadata, a loadable model, an unbroken listing."""
    info = json.loads((models_dir / f"{name}.json").read_text(encoding="utf-8"))
    assert load_model(name, models_dir).count_params() == info["parameters"]
    assert [(entry.name, entry.broken) for entry in list_models(models_dir)] == [(name, False)]
    assert not [path for path in models_dir.iterdir() if path.name.startswith(".")]  # no temporary files left
    return info


def assert_queue_takes_a_new_job(queue: Scheduler) -> None:
    job = queue.submit(QUICK, "next", BOB)
    assert job.wait(WAIT) and job.snapshot().status == JobStatus.FINISHED


def test_stop_at_the_first_batch_saves_a_consistent_model(tmp_path, mnist, monkeypatch):
    queue = queue_in(tmp_path, mnist)
    real_train = jobs.train
    started = []

    def train_and_stop_after_the_first_batch(config, on_event=None, stop_event=None, mnist=None, **options):
        def on_event_then_stop(event):
            on_event(event)
            if isinstance(event, BatchEvent) and (event.epoch, event.step) == (1, 1):
                queue.stop(started[0].job_id, ALICE)  # the Stop button, while the first batch is being reported

        return real_train(config, on_event=on_event_then_stop, stop_event=stop_event, mnist=mnist, **options)

    monkeypatch.setattr(jobs, "train", train_and_stop_after_the_first_batch)
    started.append(queue.submit(TINY, "first-batch", ALICE))
    job = started[0]
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.STOPPED and snapshot.error is None
    assert snapshot.saved_name == "first-batch" and len(snapshot.batches) == 1
    info = saved_state(tmp_path, "first-batch")
    assert info["stopped"] is True and info["test_accuracy"] == snapshot.test_accuracy
    assert [(epoch["epoch"], epoch["complete"], epoch["val_accuracy"]) for epoch in info["history"]] == [(1, False, None)]

    monkeypatch.setattr(jobs, "train", real_train)
    assert_queue_takes_a_new_job(queue)


def test_stop_during_validation_keeps_no_metrics_of_the_cut_validation(tmp_path, mnist, monkeypatch):
    import tensorflow as tf

    queue = queue_in(tmp_path, mnist)
    started = []

    def eval_dataset_that_presses_stop(x, y, batch_size=1000):
        def batches():
            queue.stop(started[0].job_id, ALICE)  # validation has just asked for its first batch
            for start in range(0, len(y), batch_size):
                yield x[start : start + batch_size], y[start : start + batch_size]

        return tf.data.Dataset.from_generator(
            batches, output_signature=(tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE), tf.float32),
                                       tf.TensorSpec((None,), tf.int32)),
        )

    monkeypatch.setattr(training, "make_eval_dataset", eval_dataset_that_presses_stop)
    started.append(queue.submit(TINY, "mid-validation", ALICE))
    job = started[0]
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.STOPPED and snapshot.error is None
    # The stop came after the whole first epoch had trained, and ended the run before the second.
    assert snapshot.latest.epoch == 1 and snapshot.latest.step == TINY_STEPS
    assert len(snapshot.epochs) == 1 and snapshot.epochs[0].complete
    assert snapshot.epochs[0].val_loss is None and snapshot.epochs[0].val_accuracy is None
    info = saved_state(tmp_path, "mid-validation")
    assert info["stopped"] is True and len(info["history"]) == 1
    assert info["history"][0]["val_loss"] is None and info["history"][0]["val_accuracy"] is None
    assert 0.0 < info["test_accuracy"] <= 1.0  # the saved model was still evaluated on the whole test set

    monkeypatch.undo()
    assert_queue_takes_a_new_job(queue)


def test_stop_after_the_end_changes_nothing(tmp_path, mnist):
    import ui

    from mnist_core.jobs import JobRefused

    queue = queue_in(tmp_path, mnist)
    job = queue.submit(QUICK, "finished", ALICE)
    assert job.wait(WAIT)
    before = job.snapshot()
    assert before.status == JobStatus.FINISHED
    files = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in tmp_path.iterdir()}

    with pytest.raises(JobRefused, match="already ended"):
        queue.stop(job.job_id, ALICE)
    after = job.snapshot()
    assert after.status == JobStatus.FINISHED and after.error is None
    assert (after.saved_name, after.test_accuracy, after.epochs) == (before.saved_name, before.test_accuracy, before.epochs)
    assert ui.job_outcome(after) == ui.job_outcome(before) and ui.job_outcome(after)[0] == "success"
    assert {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in tmp_path.iterdir()} == files
    assert_queue_takes_a_new_job(queue)


def test_a_name_taken_while_training_ran_still_saves_the_model_under_the_next_free_name(tmp_path, mnist, monkeypatch):
    queue = queue_in(tmp_path, mnist)
    real_train = jobs.train

    def train_while_another_process_saves_under_that_name(*args, **kwargs):
        result = real_train(*args, **kwargs)
        (tmp_path / "contested.keras").write_bytes(b"saved by another process")  # say, the CLI or a second server
        return result

    monkeypatch.setattr(jobs, "train", train_while_another_process_saves_under_that_name)
    job = queue.submit(QUICK, "contested", ALICE)  # the name is free when the job starts
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.FINISHED, snapshot.error
    assert snapshot.saved_name == snapshot.model_name == "contested-2"
    assert (tmp_path / "contested.keras").read_bytes() == b"saved by another process"  # theirs left alone
    assert load_model("contested-2", tmp_path).count_params() == read_info("contested-2", tmp_path).parameters


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks to see a thread wait")
def test_a_name_another_process_is_saving_at_the_same_moment_saves_the_job_under_the_next_free_name(
    tmp_path, mnist, monkeypatch
):
    """The CLI (another process) saves 'contested' just as the job does: the job waits for the store's lock, finds
    the name taken, and saves as contested-2; before, both reported success and one model replaced the other."""
    import os

    from test_store import RacingSaver, signed_by, waiting_for_a_file_lock

    queue = queue_in(tmp_path, mnist)
    cli = RacingSaver(tmp_path, "cli")
    real_train = jobs.train

    def train_then_let_the_cli_take_the_name(*args, **kwargs):
        result = real_train(*args, **kwargs)
        cli.send("held contested")  # the CLI has checked the name and is writing its files: it holds the lock
        assert cli.read() == "checked"
        return result

    monkeypatch.setattr(jobs, "train", train_then_let_the_cli_take_the_name)
    try:
        job = queue.submit(QUICK, "contested", ALICE)  # the name is free when the job starts
        deadline = time.monotonic() + WAIT
        while not waiting_for_a_file_lock(os.getpid()):  # the job's save waits for the CLI's to finish
            assert not job.done, f"the job saved without waiting, as {job.snapshot().saved_name}"
            assert time.monotonic() < deadline, "the job's save never waited for the store's lock"
            time.sleep(0.01)
        cli.send("go on")
        assert cli.read() == "won"
        assert job.wait(WAIT)
    finally:
        cli.close()
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.FINISHED, snapshot.error
    assert snapshot.saved_name == "contested-2"
    assert signed_by(tmp_path, "contested") == ("cli", "cli")  # the CLI's model is whole and untouched
    assert load_model("contested-2", tmp_path).count_params() == read_info("contested-2", tmp_path).parameters


def test_a_worker_killed_mid_training_is_shown_on_the_train_page_and_a_new_start_works(app, store):
    """What the kernel's out-of-memory killer does to a training worker: the job fails with a plain message on
    the page, nothing half-saved, and the next Start gets a fresh worker."""
    import os
    import signal

    import ui

    at = open_page(app(model="cnn"), "train")
    configure_training(at, "mlp", epochs=50, train_size=60_000, name="oom-victim")  # cannot end by itself
    by_label(at.button, "Start training").click()
    at.run()
    assert_ran_cleanly(at)
    queue = ui._scheduler(str(store))
    [job] = queue.running()
    wait_until(at, lambda at: job.snapshot().latest is not None, "the first training batch")
    for pid in queue.runner.worker_pids():
        os.kill(pid, signal.SIGKILL)
    wait_until(at, lambda at: has_message(at.main.error, "Training failed"), "the failure to show")
    [error] = texts(at.main.error)
    assert "killed" in error and "memory" in error and "Traceback" not in error
    assert not list(store.glob("oom-victim*"))
    assert by_label(at.button, "Stop training").disabled and not by_label(at.button, "Start training").disabled

    configure_training(at, "mlp", epochs=1, train_size=100, name="after-the-crash")
    by_label(at.button, "Start training").click()
    at.run()
    assert_ran_cleanly(at)
    wait_until(at, lambda at: has_message(at.success, "Training finished"), "the run after the failure")
    assert texts(at.success)[0].startswith("Training finished: saved as `after-the-crash`")
    assert not at.main.error


# --- Data: a missing or damaged MNIST file is a message with the fix on every page -----------------------------


@pytest.mark.parametrize("problem", ["missing", "damaged"])
def test_a_missing_or_damaged_mnist_file_is_a_message_with_the_fix_on_every_page(app, tmp_path, problem):
    import ui
    from mnist_core.data import check_mnist, load_mnist

    broken = tmp_path / "mnist.npz"
    if problem == "damaged":
        content = bytearray(DATA_PATH.read_bytes())
        content[len(content) // 2] ^= 0x01  # one flipped bit, as a bad copy or disk would do
        broken.write_bytes(bytes(content))
    # The real loader on a broken file, so the page shows exactly what a visitor would see. Restored by hand, not
    # by monkeypatch: the store fixture's teardown needs the real data before monkeypatch would undo this.
    real_load_mnist, real_check_mnist = ui.load_mnist, ui.check_mnist
    ui.load_mnist = lambda: load_mnist(broken)
    ui.check_mnist = lambda: check_mnist(broken)
    ui._mnist_cached.clear()
    try:
        at = app(model="cnn")
        for page, title in PAGE_TITLES.items():
            open_page(at, page)
            assert texts(at.title) == [title], page
            errors = texts(at.main.error)
            if page in ("draw", "my_digits"):
                assert not errors  # drawing needs a model, not the dataset; a collection needs it to fine-tune only
                continue
            assert len(errors) == 1, (page, errors)
            assert problem in errors[0] and "git checkout -- data/mnist.npz" in errors[0], (page, errors[0])
            if page != "models":
                assert errors[0].startswith("**The MNIST data could not be loaded.**"), page
            assert not at.sidebar.error
    finally:
        ui.load_mnist, ui.check_mnist = real_load_mnist, real_check_mnist
        ui._mnist_cached.clear()


def test_a_live_figure_is_built_once_for_each_version_of_what_it_shows():
    """The Train page's charts are rebuilt when the job moves on, not on every poll of every page watching it (five
    Train pages rebuilding three Plotly figures every second were two thirds of a classroom server's busy time)."""
    import ui
    from mnist_core import i18n

    built = []

    def build():
        built.append(1)
        return object()

    first = ui.live_figure("test-kind", ("job-1", 3), build)
    assert ui.live_figure("test-kind", ("job-1", 3), build) is first and len(built) == 1  # the same poll again
    assert ui.live_figure("test-kind", ("job-1", 4), build) is not first and len(built) == 2  # the job moved on
    previous = i18n.use_language_source(lambda: "zh_Hans")
    try:
        ui.live_figure("test-kind", ("job-1", 4), build)  # its titles are in another language
    finally:
        i18n.use_language_source(previous)
    assert len(built) == 3
