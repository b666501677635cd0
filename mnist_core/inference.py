"""Classifier: what a trained model thinks of 28x28 images, and what its convolution layers see."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core.constants import IMAGE_SIZE, MODELS_DIR

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Up to this many images go through the model in one call; above it, batches keep memory bounded.
DIRECT_CALL_LIMIT = 256


@dataclass(frozen=True)
class FeatureMaps:
    """The output of one convolution layer for one image: (height, width, channels) float32."""

    layer_name: str
    maps: np.ndarray


def _as_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    # uint8 can only mean MNIST's own 0-255 pixels: scale them as training did, instead of feeding 0-255 floats.
    images = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    if images.shape == (IMAGE_SIZE, IMAGE_SIZE):
        images = images[np.newaxis]
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"Expected 28x28 images shaped (n, 28, 28), got {images.shape}.")
    return images


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def _graph_of(model):
    """`model(images, training=False)` as one TensorFlow graph, traced once for any batch of (n, 28, 28) float32.

    An eager call runs layer by layer from Python: about 14 ms for one image through the strong CNN on 2 cores,
    against about 2 ms for the graph (bench/bench_predict.py).
    """
    import tensorflow as tf

    return tf.function(
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.float32)],
    )


class Classifier:
    """Wraps a loaded Keras model that maps (n, 28, 28) float32 in [0, 1] to (n, 10) logits."""

    def __init__(self, model, name: str = ""):
        self.model = model
        self.name = name or model.name
        self._compiled = None
        self._feature_model = None

    @classmethod
    def load(cls, name: str, models_dir: Path = MODELS_DIR) -> Classifier:
        from mnist_core.store import load_model

        return cls(load_model(name, models_dir), name)

    def predict_proba(self, images: np.ndarray, batch_size: int = 250) -> np.ndarray:
        """Probabilities (n, 10) float32 for images (n, 28, 28) or one image (28, 28), pixels in [0, 1] (or uint8 0-255)."""
        images = _as_batch(images)
        call = self._compiled_call()
        if len(images) <= DIRECT_CALL_LIMIT:
            # One call of the compiled graph; model.predict sets up a whole loop for each call.
            logits = np.asarray(call(images))
        else:
            logits = np.concatenate(
                [np.asarray(call(images[start : start + batch_size])) for start in range(0, len(images), batch_size)]
            )
        return softmax(logits.astype(np.float64)).astype(np.float32)

    def _compiled_call(self):
        if self._compiled is None:
            self._compiled = _graph_of(self.model)
        return self._compiled

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The most likely digit for each image: (n,) int."""
        return self.predict_proba(images).argmax(axis=1)

    def top_k(self, image: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
        """The k most likely digits for one image with their probabilities, most likely first."""
        probabilities = self.predict_proba(image)[0]
        order = np.argsort(probabilities)[::-1][:k]
        return [(int(digit), float(probabilities[digit])) for digit in order]

    @property
    def conv_layer_names(self) -> list[str]:
        return [layer.name for layer in self.model.layers if type(layer).__name__ == "Conv2D"]

    def _activated_output(self, conv_name: str):
        """The conv layer's output after the batch norm and activation that directly follow it, if any."""
        layers = self.model.layers
        index = next(i for i, layer in enumerate(layers) if layer.name == conv_name)
        while index + 1 < len(layers) and type(layers[index + 1]).__name__ in ("BatchNormalization", "Activation"):
            index += 1
        return layers[index].output

    def feature_maps(self, image: np.ndarray) -> list[FeatureMaps]:
        """The activations of every Conv2D layer (after its activation) for one (28, 28) image; [] for an MLP."""
        names = self.conv_layer_names
        if not names:
            return []
        if self._feature_model is None:
            import keras

            outputs = [self._activated_output(name) for name in names]
            # The single input tensor, not the one-item list: called with a tensor, a list-input model warns.
            self._feature_model = _graph_of(keras.Model(inputs=self.model.inputs[0], outputs=outputs))
        outputs = self._feature_model(_as_batch(image)[:1])
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return [FeatureMaps(name, np.asarray(output)[0]) for name, output in zip(names, outputs)]
