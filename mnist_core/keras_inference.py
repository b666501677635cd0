"""KerasClassifier: the Classifier methods over a Keras model in memory, for processes that hold TensorFlow anyway.

The trainer evaluates the model it just trained this way before saving it, and the export measurements compare
every LiteRT format with it. The web server never uses it: it runs the saved `.tflite` (inference.Classifier).
"""

from __future__ import annotations

import os

import numpy as np

from mnist_core.constants import IMAGE_SIZE
from mnist_core.inference import ClassifierMethods, FeatureMaps, as_batch, as_floats, batch_shaped, softmax

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Up to this many images go through the model in one call; above it, batches of BATCH_SIZE keep memory bounded
# (a 10k evaluation of strong-cnn: +280 MiB RSS at batch 1,000, +100 MiB at 250, same speed; BENCHMARKS.md).
DIRECT_CALL_LIMIT = 256
BATCH_SIZE = 250


def graph_of(function):
    """`function(images)` as one TensorFlow graph, traced once for any batch of (n, 28, 28) float32.

    An eager call runs layer by layer from Python: about 14 ms for one image through the strong CNN on 2 cores,
    against about 2 ms for the graph (bench/bench_predict.py, before LiteRT).
    """
    import tensorflow as tf

    return tf.function(function, input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.float32)])


def conv_layer_names(model) -> list[str]:
    return [layer.name for layer in model.layers if type(layer).__name__ == "Conv2D"]


def _activated_output(model, conv_name: str):
    """The conv layer's output after the batch norm and activation that directly follow it, if any."""
    layers = model.layers
    index = next(i for i, layer in enumerate(layers) if layer.name == conv_name)
    while index + 1 < len(layers) and type(layers[index + 1]).__name__ in ("BatchNormalization", "Activation"):
        index += 1
    return layers[index].output


def feature_model(model):
    """A keras.Model from `model`'s input to the activated output of each of its Conv2D layers (in layer order), or
    None for a model without convolutions: what the Draw page shows as feature maps."""
    import keras

    names = conv_layer_names(model)
    if not names:
        return None
    outputs = [_activated_output(model, name) for name in names]
    # The single input tensor, not the one-item list: called with a tensor, a list-input model warns.
    return keras.Model(inputs=model.inputs[0], outputs=outputs)


class KerasClassifier(ClassifierMethods):
    """Wraps a Keras model that maps (n, 28, 28) float32 in [0, 1] to (n, 10) logits."""

    def __init__(self, model, name: str = ""):
        self.model = model
        self.name = name or model.name
        self._compiled = None
        self._feature_model = None

    def predict_proba(self, images: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Probabilities (n, 10) float32 for images (n, 28, 28) or one image (28, 28), pixels in [0, 1] (or uint8 0-255)."""
        images = batch_shaped(images)
        if self._compiled is None:
            self._compiled = graph_of(lambda batch: self.model(batch, training=False))
        if len(images) <= DIRECT_CALL_LIMIT:
            # One call of the compiled graph; model.predict sets up a whole loop for each call.
            logits = np.asarray(self._compiled(as_floats(images)))
        else:
            logits = np.concatenate(
                [np.asarray(self._compiled(as_floats(images[start : start + batch_size])))
                 for start in range(0, len(images), batch_size)]
            )
        return softmax(logits.astype(np.float64)).astype(np.float32)

    @property
    def conv_layer_names(self) -> list[str]:
        return conv_layer_names(self.model)

    def feature_maps(self, image: np.ndarray) -> list[FeatureMaps]:
        """The activations of every Conv2D layer (after its batch norm and activation) for one (28, 28) image."""
        names = self.conv_layer_names
        if not names:
            return []
        if self._feature_model is None:
            features = feature_model(self.model)
            self._feature_model = graph_of(lambda batch: features(batch, training=False))
        outputs = self._feature_model(as_batch(image)[:1])
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return [FeatureMaps(name, np.asarray(output)[0]) for name, output in zip(names, outputs)]
