"""Stored models as LiteRT (`.tflite`) files: the float32 file the web server runs, and the four download formats
(float32, float16, dynamic-range int8, full-integer int8) with their accuracy, size and latency measured.

Converting needs TensorFlow: those functions import it when called, and run only where it is loaded anyway (the
trainer, the CLI, a conversion worker; see conversion.py). Reading a cached report needs nothing heavy, so the
web server may do that. Conversion follows TensorFlow 2.21's path for Keras 3: `model.export(dir,
format="tf_saved_model")` (or an ExportArchive), then `tf.lite.TFLiteConverter.from_saved_model(dir)`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mnist_core.constants import IMAGE_SIZE, MODELS_DIR
from mnist_core.i18n import M_, Message

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FORMATS = ("keras", "tflite")
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
# Titles are i18n Messages: the Models page renders them in the visitor's language; report.json and the CLI keep
# the English (str()).
KERAS_TITLE = M_("Keras (float32)")
QUANTIZATION_TITLES = {
    "none": M_("float32"),
    "float16": M_("float16 weights"),
    "dynamic": M_("dynamic-range int8"),
    "int8": M_("full-integer int8"),
}
QUANTIZATION_SHORT_TITLES = {"none": M_("float32"), "float16": M_("float16"), "dynamic": M_("dynamic int8"),
                             "int8": M_("full int8")}
# Full-integer quantization calibrates each activation's range on these (a fixed random draw of training images).
REPRESENTATIVE_IMAGES = 300
LATENCY_RUNS = 200
LATENCY_WARM_UP = 10
EXPORTS_FOLDER = ".exports"  # inside the model store; hidden, so the store never lists it as a model
REPORT_FILE = "report.json"


class ExportError(Exception):
    """An export that cannot be made as asked; the message is written for a person."""


# --- conversion (needs TensorFlow) ---------------------------------------------------------------------------


def _image_spec():
    import tensorflow as tf

    return [tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.float32, name="image")]


def litert_model(model) -> bytes:
    """The float32 `.tflite` the web server runs for `model`: signature "predict" (image -> logits) and, for a model
    with convolutions, "feature_maps" (image -> the activation after each Conv2D, as "<position>:<layer name>").

    One file with two signatures rather than two files: the weights are stored once (strong-cnn: 638 KB against
    633 KB for the logits alone) and the store keeps one extra file per model.
    """
    import keras
    import tensorflow as tf

    from mnist_core.keras_inference import conv_layer_names, feature_model

    features = feature_model(model)
    names = conv_layer_names(model)
    with tempfile.TemporaryDirectory(prefix="mnist-lab-export-") as directory:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "predict", lambda image: {"logits": model(image, training=False)}, input_signature=_image_spec()
        )
        keys = ["predict"]
        if features is not None:
            archive.track(features)

            def activations(image):
                outputs = features(image, training=False)
                outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
                # Signature outputs come back sorted by name: the position keeps them in layer order.
                return {f"{position}:{name}": output for position, (name, output) in enumerate(zip(names, outputs))}

            archive.add_endpoint("feature_maps", activations, input_signature=_image_spec())
            keys.append("feature_maps")
        archive.write_out(directory, verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(directory, signature_keys=keys).convert()


def representative_images(count: int = REPRESENTATIVE_IMAGES, mnist=None) -> np.ndarray:
    """`count` training images (float32 in [0, 1], a fixed random draw) for full-integer calibration."""
    from mnist_core.data import load_mnist, subset

    (x_train, y_train), _ = mnist if mnist is not None else load_mnist()
    images, _ = subset(x_train, y_train, count, seed=0)
    return images.astype(np.float32) / 255.0


def tflite_file(model, quantize: str = "none", calibration_images: np.ndarray | None = None) -> bytes:
    """`model` as a `.tflite` to download: one signature (serving_default: image -> logits), quantized as asked.

    "float16" stores the weights as float16 (half the size, float32 arithmetic); "dynamic" stores them as int8 and
    quantizes activations on the fly; "int8" is full-integer: int8 weights, activations, input and output, with
    ranges calibrated on `calibration_images` (default: REPRESENTATIVE_IMAGES training images). Input and output
    of "int8" are int8 tensors with a scale and zero point; inference.Classifier converts to and from them.
    """
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ExportError(f"Unknown quantization {quantize!r}: use one of {', '.join(QUANTIZATIONS)}.")
    with tempfile.TemporaryDirectory(prefix="mnist-lab-export-") as directory:
        model.export(directory, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            images = representative_images() if calibration_images is None else calibration_images

            def calibration():
                for image in images:
                    yield [image[np.newaxis].astype(np.float32)]

            converter.representative_dataset = calibration
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        return converter.convert()


def _write_atomically(path: Path, content: bytes) -> None:
    """Write through a temporary file beside `path`, then rename it: a kill leaves the old file or the new one."""
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(content)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)


def default_output(name: str, format: str, quantize: str) -> Path:
    """NAME.keras or NAME-<quantize>.tflite, in the current folder."""
    return Path(f"{name}.keras" if format == "keras" else f"{name}-{quantize}.tflite")


def export_model(name: str, format: str, quantize: str = "none", output: Path | None = None,
                 models_dir: Path = MODELS_DIR, overwrite: bool = False) -> Path:
    """Write the stored model `name` as `format` ("keras": a copy of its file; "tflite": converted and quantized as
    `quantize`) to `output` (default: default_output in the current folder); returns the path written.

    ExportError for a bad format or combination, an existing output (unless `overwrite`) or a missing folder;
    the store's errors (InvalidModelName, ModelNotFound, BrokenModelError) for the name.
    """
    from mnist_core.store import ModelNotFound, load_model, model_path

    if format not in FORMATS:
        raise ExportError(f"Unknown format {format!r}: use one of {', '.join(FORMATS)}.")
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"Unknown quantization {quantize!r}: use one of {', '.join(QUANTIZATIONS)}.")
    if format == "keras" and quantize != "none":
        raise ExportError("A .keras file is always float32: --quantize applies to --format tflite only.")
    source = model_path(name, models_dir)  # checks the name
    if not source.exists():
        raise ModelNotFound(M_("There is no model named {name}.", name=repr(name)))
    output = Path(output) if output is not None else default_output(name, format, quantize)
    if output.is_dir():
        raise ExportError(f"{output} is a folder: give a file name to write to.")
    if not output.parent.is_dir():
        raise ExportError(f"The folder {output.parent} does not exist.")
    if output.exists() and not overwrite:
        raise ExportError(f"{output} already exists: pick another --output or pass --overwrite.")
    if format == "keras":
        content = source.read_bytes()
    else:
        content = tflite_file(load_model(name, models_dir), quantize)
    _write_atomically(output, content)
    return output


# --- measurements of the download formats, cached beside the store -------------------------------------------


@dataclass(frozen=True)
class FormatMeasurement:
    """One way to download a model, measured on the 10,000 test images through its own runtime."""

    format: str  # "keras", or the quantization of a .tflite: none, float16, dynamic, int8
    title: str
    file_name: str
    size_bytes: int
    accuracy: float
    agreement: float  # the share of test images given the same answer as the Keras model
    latency_ms: float  # median of LATENCY_RUNS single-image calls, one thread (Keras: its compiled graph)

    @property
    def short_title(self) -> Message | str:
        return ".keras" if self.format == "keras" else QUANTIZATION_SHORT_TITLES[self.format]

    @property
    def shown_title(self) -> Message | str:
        """The title to show (`render` it): the format's Message; the stored English for a format not known."""
        return KERAS_TITLE if self.format == "keras" else QUANTIZATION_TITLES.get(self.format, self.title)


@dataclass(frozen=True)
class ExportReport:
    model_name: str
    keras_sha256: str  # the .keras file measured: a retrained model under the same name gets a new report
    measured_at: str  # ISO 8601, UTC
    load_average: str  # the machine's 1/5/15-minute load when measured: latencies depend on it
    rows: list[FormatMeasurement] = field(default_factory=list)  # keras first, then QUANTIZATIONS' order

    def row(self, format: str) -> FormatMeasurement:
        """The measurement of `format` ("keras" or a quantization)."""
        return next(row for row in self.rows if row.format == format)

    @property
    def keras_accuracy(self) -> float:
        return self.row("keras").accuracy

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ExportReport:
        values = json.loads(text)
        rows = [FormatMeasurement(**row) for row in values.pop("rows")]
        return cls(**values, rows=rows)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def exports_dir(name: str, models_dir: Path = MODELS_DIR) -> Path:
    from mnist_core.store import validate_name

    return Path(models_dir) / EXPORTS_FOLDER / validate_name(name)


def cached_report(name: str, models_dir: Path = MODELS_DIR) -> ExportReport | None:
    """The measured exports of `name`'s current .keras file, or None if they were never made (or are stale).

    No TensorFlow: safe to call from the web server on every page run (hashes the .keras, ~1 ms per MB).
    """
    from mnist_core.store import model_path

    keras_path = model_path(name, models_dir)
    report_path = exports_dir(name, models_dir) / REPORT_FILE
    if not keras_path.exists() or not report_path.exists():
        return None
    try:
        report = ExportReport.from_json(report_path.read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError):
        return None  # damaged or from an older layout: measured again on request
    if report.keras_sha256 != file_sha256(keras_path):
        return None
    if not all((exports_dir(name, models_dir) / row.file_name).exists() for row in report.rows if row.format != "keras"):
        return None
    return report


def remove_exports(name: str, models_dir: Path = MODELS_DIR) -> None:
    """Delete the cached download forms and report of `name` (the store does when it deletes the model)."""
    shutil.rmtree(exports_dir(name, models_dir), ignore_errors=True)


def export_path(name: str, quantize: str, models_dir: Path = MODELS_DIR) -> Path:
    """Where the cached `.tflite` of `name` quantized as `quantize` lives (see measure_exports)."""
    return exports_dir(name, models_dir) / default_output(name, "tflite", quantize).name


def single_image_latency_ms(classifier, image: np.ndarray, runs: int = LATENCY_RUNS) -> float:
    """Median milliseconds of `classifier.predict_proba` on one (28, 28) image, after a few warm-up calls."""
    for _ in range(LATENCY_WARM_UP):
        classifier.predict_proba(image)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        classifier.predict_proba(image)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def measure_exports(name: str, models_dir: Path = MODELS_DIR, mnist=None) -> ExportReport:
    """Convert the stored model `name` to every download format, measure each on the 10,000 test images (through
    LiteRT for .tflite, in batches) against the Keras model, and cache files and report under the store's
    .exports folder; returns the report. Takes TensorFlow, tens of seconds: run it in a worker (conversion.py).
    """
    from mnist_core.data import load_mnist
    from mnist_core.evaluation import evaluate
    from mnist_core.inference import Classifier
    from mnist_core.keras_inference import KerasClassifier
    from mnist_core.store import load_model, model_path

    models_dir = Path(models_dir)
    keras_path = model_path(name, models_dir)
    keras_sha256 = file_sha256(keras_path)  # before loading: the report describes the file that was read
    model = load_model(name, models_dir)
    mnist = mnist if mnist is not None else load_mnist()
    (_, _), (x_test, y_test) = mnist
    images = x_test.astype(np.float32) / 255.0

    keras_classifier = KerasClassifier(model, name)
    keras_result = evaluate(keras_classifier, images, y_test)
    rows = [FormatMeasurement(
        format="keras", title=str(KERAS_TITLE), file_name=keras_path.name, size_bytes=keras_path.stat().st_size,
        accuracy=keras_result.accuracy, agreement=1.0,
        latency_ms=single_image_latency_ms(keras_classifier, images[0]),
    )]
    calibration = representative_images(mnist=mnist)
    files: dict[str, bytes] = {}
    for quantize in QUANTIZATIONS:
        content = tflite_file(model, quantize, calibration)
        files[default_output(name, "tflite", quantize).name] = content
        classifier = Classifier(content, name)
        result = evaluate(classifier, images, y_test)
        rows.append(FormatMeasurement(
            format=quantize, title=str(QUANTIZATION_TITLES[quantize]), file_name=default_output(name, "tflite", quantize).name,
            size_bytes=len(content), accuracy=result.accuracy,
            agreement=float((result.predictions == keras_result.predictions).mean()),
            latency_ms=single_image_latency_ms(classifier, images[0]),
        ))
    report = ExportReport(
        model_name=name, keras_sha256=keras_sha256,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), load_average=load_average(), rows=rows,
    )
    _replace_folder(exports_dir(name, models_dir), {**files, REPORT_FILE: report.to_json().encode()})
    return report


def _replace_folder(target: Path, files: dict[str, bytes]) -> None:
    """Make `target` hold exactly `files`, all at once: built as a hidden folder beside it, then renamed in place.

    A reader sees the old folder, no folder for a moment, or the new one; never a half-written one.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    old = None
    try:
        for file_name, content in files.items():
            (building / file_name).write_bytes(content)
        building.chmod(0o755)
        if target.exists():
            old = target.parent / f".{target.name}.{os.getpid()}.old.tmp"
            os.replace(target, old)
        try:
            os.replace(building, target)
        except OSError:
            if not target.is_dir():
                raise
            # Another worker measured the same file and renamed its folder in first: same content, keep theirs.
    finally:
        shutil.rmtree(building, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
