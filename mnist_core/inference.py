"""Classifier: what a trained model thinks of 28x28 images, and what its convolution layers see, through LiteRT.

The web server runs every model as the float32 `.tflite` file saved beside its `.keras` (see store.save_model and
export.litert_model), with `ai_edge_litert`: no TensorFlow in the process. A process that holds a Keras model in
memory and TensorFlow anyway (the trainer, the export measurements) uses keras_inference.KerasClassifier, which
has the same methods.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core.constants import IMAGE_SIZE, MODELS_DIR, NUM_CLASSES
from mnist_core.hardware import usable_cores

# Images per interpreter call when many are asked for: every intermediate tensor is allocated for the whole batch.
# Resizing to all 10,000 test images at once took 2.1 GB for strong-cnn; 250 at a time raised the process' peak by
# 54 MiB, 100 by 23 MiB and 50 by 12 MiB (a 10k evaluation of strong-cnn, 2026-11-30), with no speed difference
# that the busy machine let us see (bench/bench_litert.py).
BATCH_SIZE = 100

# The signatures export.litert_model writes: logits, and the activations of every convolution layer.
PREDICT_SIGNATURE = "predict"
FEATURE_MAPS_SIGNATURE = "feature_maps"


@dataclass(frozen=True)
class FeatureMaps:
    """The output of one convolution layer for one image: (height, width, channels) float32."""

    layer_name: str
    maps: np.ndarray


def batch_shaped(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) from one image, a batch or a batch with a channel axis, dtype unchanged (a view, no copy);
    ValueError for any other shape."""
    images = np.asarray(images)
    if images.shape == (IMAGE_SIZE, IMAGE_SIZE):
        images = images[np.newaxis]
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"Expected 28x28 images shaped (n, 28, 28), got {images.shape}.")
    return images


def as_floats(images: np.ndarray) -> np.ndarray:
    """float32 pixels in [0, 1]: uint8 can only mean MNIST's own 0-255 pixels, scaled as training did."""
    return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)


def as_batch(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) float32 from one image, a batch, a channel axis or MNIST's uint8 pixels; ValueError otherwise."""
    return as_floats(batch_shaped(images))


def _return_freed_memory() -> None:
    """Hand the heap memory freed after a batch run back to the operating system, where the C library allows it.

    glibc keeps what a batch interpreter's tensors and the batches' arrays used once they are freed: one 10,000-image
    evaluation left the server 60-95 MB larger for good (bench/bench_memory.py --scenario browse); malloc_trim
    returns it, in a few milliseconds. Elsewhere (macOS, musl) nothing happens.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


def _find_malloc_trim():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _find_malloc_trim()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


class ClassifierMethods:
    """What every classifier derives from its `predict_proba`: the answer and the top k."""

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The most likely digit for each image: (n,) int."""
        return self.predict_proba(images).argmax(axis=1)

    def top_k(self, image: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
        """The k most likely digits for one image with their probabilities, most likely first."""
        probabilities = self.predict_proba(image)[0]
        order = np.argsort(probabilities)[::-1][:k]
        return [(int(digit), float(probabilities[digit])) for digit in order]


class _Signature:
    """One signature of a LiteRT interpreter: its single input, quantized if the model wants integers."""

    def __init__(self, interpreter, key: str):
        self.runner = interpreter.get_signature_runner(key)
        (self.input_name, details), = self.runner.get_input_details().items()
        self.input_dtype = details["dtype"]
        self.input_scale, self.input_zero_point = details["quantization"]
        self.outputs = self.runner.get_output_details()

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs by name, as float32, for (n, 28, 28) float32 images; integer models' tensors are (de)quantized."""
        if self.input_dtype != np.float32:
            # A full-integer model (export's "int8"): pixels as the integers its calibration chose for them.
            limits = np.iinfo(self.input_dtype)
            quantized = np.round(images / self.input_scale + self.input_zero_point)
            images = np.clip(quantized, limits.min, limits.max).astype(self.input_dtype)
        results = self.runner(**{self.input_name: images})
        for name, values in results.items():
            if values.dtype != np.float32:
                scale, zero_point = self.outputs[name]["quantization"]
                results[name] = ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)
        return results


def _interpreter(content: bytes, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=content, num_threads=threads)


def _predict_key(signatures: dict) -> str:
    """The signature that gives logits: ours is "predict"; a file with one signature (a download) has only that."""
    if PREDICT_SIGNATURE in signatures:
        return PREDICT_SIGNATURE
    if len(signatures) == 1:
        return next(iter(signatures))
    raise ValueError(f"the model has no {PREDICT_SIGNATURE!r} signature (it has {', '.join(sorted(signatures))})")


def _feature_map_order(output_name: str) -> tuple[int, str]:
    """export.litert_model names each feature-map output "<position>:<layer name>", since outputs come back sorted."""
    position, _, layer_name = output_name.partition(":")
    return int(position), layer_name


class InvalidLiteRTModel(ValueError):
    """The bytes are not a `.tflite` model with a signature that maps images to logits."""


class Classifier(ClassifierMethods):
    """A LiteRT model (`.tflite` bytes) that maps (n, 28, 28) float32 in [0, 1] to (n, 10) logits.

    Safe to share between threads (Streamlit sessions): one image at a time goes through one interpreter under a
    lock (the Draw page: well under a millisecond); a batch gets an interpreter of its own, so an evaluation of
    10,000 images never holds up someone's drawing.
    """

    def __init__(self, content: bytes, name: str = ""):
        self.content = bytes(content)
        self.name = name
        self._lock = threading.Lock()
        try:
            # One image is too little work to share between threads: one thread answers fastest.
            self._interpreter = _interpreter(self.content, threads=1)
            signatures = self._interpreter.get_signature_list()
            self._predict_key = _predict_key(signatures)
            self._predict = _Signature(self._interpreter, self._predict_key)
        except (ValueError, RuntimeError) as error:  # LiteRT's words for a file it cannot read or run
            raise InvalidLiteRTModel(f"{name or 'The model'}: not a LiteRT model this app can run ({error}).") from error
        self._features = None
        self.conv_layer_names: list[str] = []
        if FEATURE_MAPS_SIGNATURE in signatures:
            self._features = _Signature(self._interpreter, FEATURE_MAPS_SIGNATURE)
            ordered = sorted(self._features.outputs, key=_feature_map_order)
            self._feature_outputs = ordered
            self.conv_layer_names = [_feature_map_order(output)[1] for output in ordered]

    @classmethod
    def load(cls, name: str, models_dir: Path = MODELS_DIR) -> Classifier:
        """The stored model `name` as its `.tflite`; one without (saved before LiteRT, or copied in) is converted
        first, once, in a separate process (conversion.ensure_litert_model). StoreError if it can't."""
        from mnist_core.conversion import ensure_litert_model
        from mnist_core.store import BrokenModelError

        path = ensure_litert_model(name, Path(models_dir))
        try:
            return cls(path.read_bytes(), name)
        except InvalidLiteRTModel as error:
            raise BrokenModelError(f"The LiteRT file of {name!r} is damaged: {error}") from error

    def predict_proba(self, images: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Probabilities (n, 10) float32 for images (n, 28, 28) or one image (28, 28), pixels in [0, 1] (or uint8 0-255)."""
        images = batch_shaped(images)
        if len(images) == 1:
            with self._lock:
                logits = self._logits(self._predict, as_floats(images))
        elif len(images) == 0:
            logits = np.zeros((0, NUM_CLASSES), np.float32)
        else:
            # Its own interpreter, on every core this process may use: a batch is enough work to share. Pixels are
            # converted batch by batch: 10,000 test images as float32 would be 31 MB more at once.
            batch_signature = _Signature(_interpreter(self.content, threads=usable_cores()), self._predict_key)
            logits = np.concatenate(
                [self._logits(batch_signature, as_floats(images[start : start + batch_size]))
                 for start in range(0, len(images), batch_size)]
            )
            del batch_signature
            _return_freed_memory()
        return softmax(logits.astype(np.float64)).astype(np.float32)

    @staticmethod
    def _logits(signature: _Signature, images: np.ndarray) -> np.ndarray:
        (logits,) = signature(images).values()
        return logits

    def feature_maps(self, image: np.ndarray) -> list[FeatureMaps]:
        """The activations of every Conv2D layer (after the batch norm and ReLU that follow it) for one (28, 28)
        image, in layer order; [] for a model without convolutions (or a file made without them)."""
        if self._features is None:
            return []
        with self._lock:
            outputs = self._features(as_batch(image)[:1])
        return [FeatureMaps(_feature_map_order(output)[1], outputs[output][0]) for output in self._feature_outputs]

