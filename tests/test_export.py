"""mnist_core.export: every .tflite format runs in LiteRT and answers like the Keras model; measurements are cached."""

import numpy as np
import pytest

from mnist_core.export import (
    QUANTIZATIONS,
    ExportError,
    cached_report,
    export_model,
    export_path,
    measure_exports,
    representative_images,
    tflite_file,
)
from mnist_core.inference import Classifier
from mnist_core.keras_inference import KerasClassifier
from mnist_core.store import InvalidModelName, ModelInfo, ModelNotFound, save_model


@pytest.fixture(scope="module")
def exported(trained_cnn, small_mnist):
    """The small trained CNN in every format, calibrated (int8) on 300 of the training images."""
    calibration = representative_images(300, mnist=small_mnist)
    return {quantize: tflite_file(trained_cnn, quantize, calibration) for quantize in QUANTIZATIONS}


@pytest.fixture(scope="module")
def keras_answers(trained_cnn, test_images):
    images, _ = test_images
    return KerasClassifier(trained_cnn).predict_proba(images[:1000])


def test_float32_gives_keras_probabilities(exported, keras_answers, test_images):
    images, _ = test_images
    np.testing.assert_allclose(Classifier(exported["none"]).predict_proba(images[:1000]), keras_answers, atol=1e-5)


@pytest.mark.parametrize("quantize", ["float16", "dynamic", "int8"])
def test_quantized_formats_give_keras_answers_on_at_least_99_percent(quantize, exported, keras_answers, test_images):
    images, labels = test_images
    answers = Classifier(exported[quantize]).predict_proba(images[:1000])
    agreement = (answers.argmax(axis=1) == keras_answers.argmax(axis=1)).mean()
    assert agreement >= 0.99, f"{quantize}: the same answer as Keras on only {agreement:.1%} of 1,000 test images"
    np.testing.assert_allclose(answers.sum(axis=1), 1.0, atol=1e-5)


def test_quantized_files_are_smaller_and_int8_takes_integers(exported):
    from ai_edge_litert.interpreter import Interpreter

    sizes = {quantize: len(content) for quantize, content in exported.items()}
    assert sizes["float16"] < 0.6 * sizes["none"]
    assert sizes["dynamic"] < 0.35 * sizes["none"] and sizes["int8"] < 0.35 * sizes["none"]
    for quantize, content in exported.items():
        interpreter = Interpreter(model_content=content)
        assert list(interpreter.get_signature_list()) == ["serving_default"]  # one signature: what tools expect
        (details,) = interpreter.get_signature_runner().get_input_details().values()
        (output,) = interpreter.get_signature_runner().get_output_details().values()
        expected = np.int8 if quantize == "int8" else np.float32
        assert details["dtype"] == expected and output["dtype"] == expected, quantize
        assert list(details["shape_signature"]) == [-1, 28, 28]  # any batch size


def test_an_unknown_quantization_is_refused(trained_cnn):
    with pytest.raises(ExportError) as raised:
        tflite_file(trained_cnn, "int4")
    assert "int4" in str(raised.value) and "float16" in str(raised.value)


@pytest.fixture(scope="module")
def store(tmp_path_factory, trained_cnn):
    """A store holding the small CNN as "tiny"; tests that change the store make their own."""
    models_dir = tmp_path_factory.mktemp("models")
    save_model(trained_cnn, ModelInfo("tiny", "cnn", {}, 0.9, versions={"keras": "test"}), models_dir)
    return models_dir


def test_export_model_writes_each_format_where_asked(store, tmp_path, monkeypatch, test_images):
    images, _ = test_images
    monkeypatch.chdir(tmp_path)
    copied = export_model("tiny", "keras", models_dir=store)
    assert copied.name == "tiny.keras" and copied.read_bytes() == (store / "tiny.keras").read_bytes()
    written = export_model("tiny", "tflite", "dynamic", models_dir=store)
    assert written == tmp_path.joinpath("tiny-dynamic.tflite").relative_to(tmp_path)
    assert Classifier(written.read_bytes()).predict_proba(images[:5]).shape == (5, 10)
    chosen = export_model("tiny", "tflite", output=tmp_path / "out.tflite", models_dir=store)
    assert chosen == tmp_path / "out.tflite" and chosen.stat().st_size > 0
    assert not list(tmp_path.glob(".*tmp*"))  # written through a temporary file, renamed in place


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (("tiny", "onnx"), ExportError, "Unknown format 'onnx'"),
        (("tiny", "tflite", "int3"), ExportError, "Unknown quantization 'int3'"),
        (("tiny", "keras", "int8"), ExportError, "--quantize applies to --format tflite only"),
        (("../tiny", "tflite"), InvalidModelName, "not a valid model name"),
        (("ghost", "tflite"), ModelNotFound, "no model named 'ghost'"),
    ],
)
def test_export_model_refuses_bad_requests_clearly(arguments, error, message, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as raised:
        export_model(*arguments, models_dir=store)
    assert message in str(raised.value)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_export_model_never_overwrites_by_surprise(store, tmp_path):
    existing = tmp_path / "mine.tflite"
    existing.write_bytes(b"keep me")
    with pytest.raises(ExportError, match="already exists"):
        export_model("tiny", "tflite", output=existing, models_dir=store)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(ExportError, match="does not exist"):
        export_model("tiny", "tflite", output=tmp_path / "no-such-folder" / "x.tflite", models_dir=store)
    with pytest.raises(ExportError, match="is a folder"):
        export_model("tiny", "tflite", output=tmp_path, models_dir=store)
    export_model("tiny", "tflite", output=existing, models_dir=store, overwrite=True)
    assert existing.read_bytes() != b"keep me"


def test_measurements_are_cached_until_the_model_changes(tmp_path, small_mnist, trained_cnn):
    store = tmp_path
    save_model(trained_cnn, ModelInfo("tiny", "cnn", {}, 0.9, versions={"keras": "test"}), store)
    report = measure_exports("tiny", store, mnist=small_mnist)
    assert [row.format for row in report.rows] == ["keras", *QUANTIZATIONS]
    keras_row = report.row("keras")
    (_, _), (x_test, y_test) = small_mnist
    assert keras_row.accuracy == pytest.approx((KerasClassifier(trained_cnn).predict(x_test) == y_test).mean())
    assert report.row("none").accuracy == keras_row.accuracy and report.row("none").agreement == 1.0
    for row in report.rows:
        assert 0.7 < row.accuracy <= 1 and row.agreement >= 0.98 and 0 < row.latency_ms < 1000
        if row.format != "keras":
            path = export_path("tiny", row.format, store)
            assert path.name == f"tiny-{row.format}.tflite" and path.stat().st_size == row.size_bytes
    assert cached_report("tiny", store) == report

    # A retrained model under the same name is a different file: its old measurements no longer count.
    save_model(trained_cnn, ModelInfo("tiny", "cnn", {"again": True}, 0.9, versions={"keras": "test"}), store,
               overwrite=True)
    with open(store / "tiny.keras", "ab") as keras_file:
        keras_file.write(b"\0")  # Keras' zip writes the same bytes for the same model: make this one differ
    assert cached_report("tiny", store) is None
    assert cached_report("ghost", store) is None
    # Deleting the model deletes its exports.
    from mnist_core.store import delete_model

    assert export_path("tiny", "int8", store).exists()
    delete_model("tiny", store)
    assert not export_path("tiny", "int8", store).parent.exists()
