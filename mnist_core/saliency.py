"""Saliency: which pixels of a 28x28 image made a Keras model score each digit as it did.

Two methods, each for all ten digits at once (so "what would make it a 4?" needs no second computation):

- integrated gradients (Sundararajan et al. 2017), for every model, the MLP included: the gradient of a digit's
  logit, averaged along the straight path from a blank image to this one, times the pixels. Signed: > 0 where the
  ink argues for the digit, < 0 where it argues against; a pixel without ink gets nothing (its path is empty), and
  the maps of a digit add up to its logit here minus its logit for a blank image.
- Grad-CAM (Selvaraju et al. 2017), for models with convolutions: the last convolution's activations (after the
  batch norm and ReLU that follow it, as the Draw page's feature maps) weighted by the mean gradient of the digit's
  logit over each channel, kept where positive and enlarged to 28x28. Coarse (that layer's grid: 11x11 for the
  seed CNN) but it also marks empty places the network looked at.

TensorFlow is imported inside the functions: only the explainer's worker process (explainer.py) calls them, never
the web server. The ten digits go through the model as one batch (each copy's gradient is its digit's), which is
one backward pass instead of ten.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mnist_core.constants import IMAGE_SIZE, NUM_CLASSES

# Points along the path for integrated gradients. With 32, the maps' sums are within 0.4% (cnn) and 6% (strong-cnn)
# of the logit differences they must equal (the method's completeness check); 16 left strong-cnn 11% off for half
# the time (tests/test_saliency.py checks it; BENCHMARKS.md has the timings).
INTEGRATION_STEPS = 32
METHODS = ("integrated_gradients", "grad_cam")


@dataclass(frozen=True)
class Explanation:
    """Saliency maps of one image for each digit; (10, 28, 28) float32 arrays, indexed by digit.

    `grad_cam` is None for a model without convolutions; `grad_cam_layer` names the layer it used.
    `probabilities` are the model's own answer for the image (Keras, float32), kept for a cross-check.
    """

    probabilities: np.ndarray
    integrated_gradients: np.ndarray
    grad_cam: np.ndarray | None
    grad_cam_layer: str | None
    seconds: float = 0.0  # how long the worker took to compute it, for the page's note and the benchmark

    def map_for(self, method: str, digit: int) -> np.ndarray | None:
        """The (28, 28) map of `method` ("integrated_gradients" or "grad_cam") for `digit`, None if not computed."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if not 0 <= int(digit) < NUM_CLASSES:
            raise ValueError(f"digit must be 0-9, not {digit!r}")
        maps = getattr(self, method)
        return None if maps is None else maps[int(digit)]


def checked_image(image) -> np.ndarray:
    """One (28, 28) image as float32 in [0, 1] (uint8 0-255 is scaled); ValueError for anything else, NaNs too."""
    image = np.asarray(image)
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected one 28x28 image, got an array of shape {image.shape}")
    image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    if not np.all(np.isfinite(image)):
        raise ValueError("the image has NaN or infinite pixels")
    return np.clip(image, 0.0, 1.0)


def _per_digit_sum(logits):
    """The sum over copies of each copy's own digit's logit: batch row r belongs to digit r % 10."""
    import tensorflow as tf

    digits = tf.range(tf.shape(logits)[0]) % NUM_CLASSES
    return tf.reduce_sum(tf.gather(logits, digits, axis=1, batch_dims=1))


def last_conv_layer(model) -> str | None:
    """The name of the last Conv2D layer of a Sequential model (Grad-CAM's layer); None without one, or for a model
    of another kind (an uploaded functional model), whose layers cannot be walked one after the other."""
    from mnist_core.keras_inference import conv_layer_names

    if type(model).__name__ != "Sequential":
        return None
    names = conv_layer_names(model)
    return names[-1] if names else None


def _activated_index(layers: list, conv_name: str) -> int:
    """Where the conv layer's activated output comes out: after a batch norm and activation that follow it."""
    index = next(i for i, layer in enumerate(layers) if layer.name == conv_name)
    while index + 1 < len(layers) and type(layers[index + 1]).__name__ in ("BatchNormalization", "Activation"):
        index += 1
    return index


class ModelSaliency:
    """Both methods for one Keras model, each traced once into a TensorFlow graph on first use.

    The explainer's worker keeps one per loaded model: after the first image (the tracing: about a second), an image
    costs a graph call instead of a layer-by-layer eager pass (several times slower; BENCHMARKS.md).
    """

    def __init__(self, model, steps: int = INTEGRATION_STEPS, layer_name: str | None = None):
        import tensorflow as tf

        self.model = model
        self.steps = steps
        self.layer_name = layer_name or last_conv_layer(model)
        spec = [tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE], tf.float32), tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE], tf.float32)]
        self._integrated = tf.function(self._integrated_gradients, input_signature=spec)
        self._cam = tf.function(self._grad_cam, input_signature=spec[:1]) if self.layer_name else None
        self._logits = tf.function(lambda image: model(image[tf.newaxis], training=False)[0], input_signature=spec[:1])

    def _integrated_gradients(self, image, baseline):
        import tensorflow as tf

        alphas = (tf.range(self.steps, dtype=tf.float32) + 0.5) / self.steps
        path = baseline[tf.newaxis] + alphas[:, tf.newaxis, tf.newaxis] * (image - baseline)[tf.newaxis]
        # Each point of the path ten times, once per digit: one backward pass gives every digit's gradient.
        batch = tf.repeat(path, NUM_CLASSES, axis=0)  # (steps * 10, 28, 28), row r is digit r % 10
        with tf.GradientTape() as tape:
            tape.watch(batch)
            score = _per_digit_sum(tf.cast(self.model(batch, training=False), tf.float32))
        gradients = tf.reshape(tape.gradient(score, batch), [self.steps, NUM_CLASSES, IMAGE_SIZE, IMAGE_SIZE])
        return tf.reduce_mean(gradients, axis=0) * (image - baseline)[tf.newaxis]

    def _grad_cam(self, image):
        import tensorflow as tf

        layers = list(self.model.layers)
        split = _activated_index(layers, self.layer_name)
        values = tf.repeat(image[tf.newaxis], NUM_CLASSES, axis=0)  # row r is digit r
        # The layers one by one, so the tape can watch the conv layer's output: the gradient through a keras.Model
        # built to return it came back None (Keras 3.15).
        with tf.GradientTape() as tape:
            for index, layer in enumerate(layers):
                values = layer(values, training=False)
                if index == split:
                    activations = values
                    tape.watch(activations)
            score = _per_digit_sum(tf.cast(values, tf.float32))
        gradients = tape.gradient(score, activations)  # (10, h, w, channels)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # each channel's importance for each digit
        maps = tf.nn.relu(tf.reduce_sum(weights * tf.cast(activations, tf.float32), axis=-1))[..., tf.newaxis]
        return tf.image.resize(maps, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear")[..., 0]

    def integrated_gradients(self, image, baseline=None) -> np.ndarray:
        """(10, 28, 28) float32: the integrated gradients of each digit's logit for one (28, 28) image in [0, 1].

        The path runs from `baseline` (a blank image by default: no ink) to `image` in `steps` midpoint steps.
        """
        image = checked_image(image)
        baseline = np.zeros_like(image) if baseline is None else checked_image(baseline)
        return self._integrated(image, baseline).numpy().astype(np.float32)

    def grad_cam(self, image) -> np.ndarray | None:
        """(10, 28, 28) float32 in [0, 1]: each digit's Grad-CAM map for one (28, 28) image, each scaled to its own
        maximum (all zeros where nothing speaks for the digit); None for a model without a layer for it."""
        if self._cam is None:
            return None
        enlarged = self._cam(checked_image(image)).numpy()
        peaks = enlarged.max(axis=(1, 2), keepdims=True)
        return np.divide(enlarged, peaks, out=np.zeros_like(enlarged), where=peaks > 0).astype(np.float32)

    def explain(self, image) -> Explanation:
        """Both maps of one (28, 28) image for all ten digits, with the model's probabilities."""
        started = time.perf_counter()
        image = checked_image(image)
        logits = self._logits(image).numpy().astype(np.float64)
        probabilities = np.exp(logits - logits.max())
        return Explanation(
            probabilities=(probabilities / probabilities.sum()).astype(np.float32),
            integrated_gradients=self.integrated_gradients(image),
            grad_cam=self.grad_cam(image),
            grad_cam_layer=self.layer_name,
            seconds=time.perf_counter() - started,
        )


def integrated_gradients(model, image, steps: int = INTEGRATION_STEPS, baseline=None) -> np.ndarray:
    """ModelSaliency(model).integrated_gradients(image): for a single image (traces the graph every call)."""
    return ModelSaliency(model, steps).integrated_gradients(image, baseline)


def grad_cam(model, image, layer_name: str | None = None) -> np.ndarray | None:
    """ModelSaliency(model).grad_cam(image), optionally of another conv layer than the last one."""
    return ModelSaliency(model, layer_name=layer_name).grad_cam(image)


def explain(model, image, steps: int = INTEGRATION_STEPS) -> Explanation:
    """ModelSaliency(model).explain(image): both maps for one image."""
    return ModelSaliency(model, steps).explain(image)
