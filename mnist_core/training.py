"""Training: the configuration, the progress events, and `train()` with a stop flag.

`train()` reports through a plain callback (`on_event`), never through any UI: the CLI prints the events,
a `TrainingJob` (see jobs.py) keeps them for the app to draw. It runs in whatever thread calls it and stops
at the next batch once `stop_event` is set.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from mnist_core.architectures import ARCHITECTURES, PRECISIONS, build_model, is_float32
from mnist_core.data import load_mnist, subset
from mnist_core.hardware import default_precision, usable_cores
from mnist_core.i18n import M_
from mnist_core.panel import PanelEvent, panel_event

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OPTIMIZERS = ("adam", "rmsprop", "sgd")
VALIDATIONS = ("test", "split")
SCHEDULES = ("constant", "cosine", "onecycle")
# "onecycle": the learning rate climbs from a tenth of its peak over the first WARMUP_SHARE of the steps, then falls
# to zero along a cosine (Smith's one-cycle policy with a cosine tail): early batches cannot blow up batch norm's
# statistics with the full rate, and the run ends annealed.
WARMUP_SHARE = 0.2
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
MAX_EPOCHS = 50
MIN_TRAIN_SIZE = 100
FULL_TRAIN_SIZE = 60_000


class ConfigError(ValueError):
    """A training setting is out of range; the message names it and its allowed values."""


def _is_whole(value) -> bool:
    # bool is an int subclass, but `epochs=True` (say, from a hand-edited JSON) is a mistake, not 1 epoch.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_choice(value, choices) -> bool:
    # isinstance first: `[...] in {...}` raises TypeError (unhashable) instead of answering False.
    return isinstance(value, str) and value in choices


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; the same config and seed give the same curves."""

    architecture: str = "cnn"
    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    train_size: int = FULL_TRAIN_SIZE  # how many training images to use, drawn at random with `seed`
    validation: str = "test"  # "test": validate on the 10k test set (as the seeds do); "split": hold out part of train
    validation_split: float = 0.1
    augment: bool = False  # random pen widths, rotations, slants, zooms, shifts and elastic distortions (AUGMENTATION)
    schedule: str = "constant"  # learning rate: "constant", "cosine" decay to zero, or "onecycle" (warm-up, then cosine)
    seed: int = 0
    # "bfloat16": Keras' mixed precision (bfloat16 compute, float32 weights; the trained model is returned and saved
    # in float32). The default is bfloat16 on CPUs that have it in hardware (~1.4x the images/s), else float32.
    precision: str = field(default_factory=default_precision)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not _is_choice(self.architecture, ARCHITECTURES):
            raise ConfigError(M_("architecture must be one of {choices}, not {value}.", choices=", ".join(ARCHITECTURES),
                                   value=repr(self.architecture)))
        if not _is_whole(self.epochs) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise ConfigError(M_("epochs must be a whole number from 1 to {limit}, not {value}.", limit=MAX_EPOCHS,
                                   value=repr(self.epochs)))
        if not _is_whole(self.batch_size) or not 1 <= self.batch_size <= 2048:
            raise ConfigError(M_("batch size must be a whole number from 1 to {limit}, not {value}.", limit=2048,
                                   value=repr(self.batch_size)))
        if not _is_choice(self.optimizer, OPTIMIZERS):
            raise ConfigError(M_("optimizer must be one of {choices}, not {value}.", choices=", ".join(OPTIMIZERS),
                                   value=repr(self.optimizer)))
        if not _is_real(self.learning_rate) or not (
            math.isfinite(self.learning_rate) and 1e-6 <= self.learning_rate <= 1.0
        ):
            raise ConfigError(M_("learning rate must be between 0.000001 and 1, not {value}.",
                                   value=repr(self.learning_rate)))
        if not _is_whole(self.train_size) or not MIN_TRAIN_SIZE <= self.train_size <= FULL_TRAIN_SIZE:
            raise ConfigError(M_("training subset must be from {low} to {high} images, not {value}.",
                                 low=MIN_TRAIN_SIZE, high=FULL_TRAIN_SIZE, value=repr(self.train_size)))
        if not _is_choice(self.validation, VALIDATIONS):
            raise ConfigError(M_("validation must be 'test' or 'split', not {value}.", value=repr(self.validation)))
        if not _is_real(self.validation_split) or not 0.01 <= self.validation_split <= 0.5:
            raise ConfigError(M_("validation split must be between 0.01 and 0.5, not {value}.",
                                   value=repr(self.validation_split)))
        if not isinstance(self.augment, bool):
            raise ConfigError(M_("augment must be true or false, not {value}.", value=repr(self.augment)))
        if not _is_choice(self.schedule, SCHEDULES):
            raise ConfigError(M_("schedule must be one of {choices}, not {value}.", choices=", ".join(SCHEDULES),
                                   value=repr(self.schedule)))
        if not _is_whole(self.seed) or not 0 <= self.seed < 2**31:
            raise ConfigError(M_("seed must be a whole number from 0 to 2^31 - 1, not {value}.", value=repr(self.seed)))
        if not _is_choice(self.precision, PRECISIONS):
            raise ConfigError(M_("precision must be 'float32' or 'bfloat16', not {value}.", value=repr(self.precision)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The config a saved dict (TrainConfig.to_dict(), a model's metadata) describes; ConfigError for anything
        that is not one, whatever its types."""
        if not isinstance(values, dict):
            raise ConfigError(M_("a training config is a mapping of settings, not {kind}.", kind=type(values).__name__))
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**{**known, "precision": precision_of(values)})


def precision_of(values: dict) -> str:
    """The precision a saved config (TrainConfig.to_dict()) trained in: configs saved before the setting existed
    have none, and were all trained in float32."""
    return values.get("precision", "float32")


# Ready-made settings for the Train page and the CLI.
PRESETS: dict[str, TrainConfig] = {
    # A whole training before the bell: the quick CNN, one epoch on a third of the images, ~97.8% (BENCHMARKS.md).
    "demo": TrainConfig(architecture="quick", epochs=1, batch_size=128, learning_rate=0.01, schedule="onecycle",
                        train_size=20_000),
    "seed": TrainConfig(architecture="cnn", epochs=10, batch_size=32, precision="float32"),  # seed 000, as written
    # 99.07-99.16% after its 2 epochs for seeds 0-2 (99.19% in float32), from a network that takes about half the
    # seed CNN's CPU time per image, with the one-cycle schedule (BENCHMARKS.md: the candidates tried, the timings).
    "fast": TrainConfig(architecture="quick", epochs=2, batch_size=128, learning_rate=0.01, schedule="onecycle"),
    # The shipped models were trained in float32 with these; bfloat16 barely speeds up the augmented strong CNN.
    # Both augment: the distortions and the flagged 1s repeated make them read drawn digits better (BENCHMARKS.md).
    "shipped-cnn": TrainConfig(
        architecture="cnn", epochs=15, batch_size=64, augment=True, schedule="cosine", precision="float32"
    ),
    "strong": TrainConfig(
        architecture="strong", epochs=15, batch_size=128, augment=True, schedule="cosine", precision="float32"
    ),
}


@dataclass(frozen=True)
class BatchEvent:
    """Progress after one training batch; loss and accuracy are the running means over the epoch so far."""

    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based within the epoch
    steps: int
    loss: float
    accuracy: float
    images_per_second: float
    elapsed_seconds: float
    eta_seconds: float


@dataclass(frozen=True)
class EpochEvent:
    """Metrics at the end of an epoch (validation ones are None when validation did not run)."""

    epoch: int  # 1-based
    epochs: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float  # wall clock of this epoch, validation included
    complete: bool = True  # False when the epoch was cut short by a stop


# PanelEvent (panel.py): what the model says about the watched test digits, before training and after each epoch.
ProgressEvent = BatchEvent | EpochEvent | PanelEvent


@dataclass
class TrainResult:
    model: object  # keras.Model in float32 (after bfloat16 training: an uncompiled copy holding the trained weights)
    config: TrainConfig
    history: list[EpochEvent] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False
    batches_trained: int = 0
    # The last epoch's validation was computed by a float32 model holding `model`'s weights (a float32 run's own,
    # or after mixed precision the float32 copy's): it is then the saved model's own figure.
    validated_in_float32: bool = False


def split_data(config: TrainConfig, mnist=None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_val, y_val)) for `config`: the training subset and the validation set, pixels
    still uint8 0-255 (the tf.data pipelines scale them batch by batch), labels int32."""
    (x_train, y_train), (x_test, y_test) = mnist if mnist is not None else load_mnist()
    x_train, y_train = subset(x_train, y_train, config.train_size, seed=config.seed)
    if config.validation == "split":
        held_out = max(1, int(round(len(y_train) * config.validation_split)))
        x_val, y_val = x_train[-held_out:], y_train[-held_out:]
        x_train, y_train = x_train[:-held_out], y_train[:-held_out]
    else:
        x_val, y_val = x_test, y_test
    return (x_train, y_train.astype(np.int32)), (x_val, y_val.astype(np.int32))


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    import keras

    learning_rate = config.learning_rate
    total_steps = config.epochs * steps_per_epoch
    if config.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    elif config.schedule == "onecycle":
        warmup_steps = max(1, round(total_steps * WARMUP_SHARE))
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate / 10, max(1, total_steps - warmup_steps), warmup_target=learning_rate,
            warmup_steps=warmup_steps,
        )
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    return keras.optimizers.SGD(learning_rate, momentum=0.9)


# Batches run per call into TensorFlow (Keras' `steps_per_execution`) once an epoch has at least
# LONG_EPOCH_STEPS of them. Each call costs Python time around the step; for the quick CNN a batch is only ~4 ms,
# and 8 batches a call took the fast preset's training from 9.2 to 8.2 s on 2 idle cores (BENCHMARKS.md). Progress
# is then reported (and a stop seen) every 8 batches, ~30 ms; a short run keeps one batch a call.
BATCHES_PER_CALL = 8
LONG_EPOCH_STEPS = 100


def batches_per_call(steps_per_epoch: int) -> int:
    return BATCHES_PER_CALL if steps_per_epoch >= LONG_EPOCH_STEPS else 1


def compile_model(model, config: TrainConfig, steps_per_epoch: int) -> None:
    import keras

    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        steps_per_execution=batches_per_call(steps_per_epoch),
    )


# A worker trains one job after another, most of them the default preset's. Keras traces a compiled model's training
# and validation steps into graphs at its first batch and first validation: ~0.7 s for the quick CNN, for every new
# model (measured 2026-11-30: fit over 32 batches and a validation, 1.11 s for a new model, 0.44 s for one whose steps
# were traced). So `train(..., reuse=True)` keeps the model it compiled, and the next such call with the same
# compiled settings (`_compiled_settings`) restarts that model instead of compiling a new one: every variable from a
# newly built model (the job's seed: the same starting weights as without reuse) and the optimizer's variables as
# they were before its first step. One model is kept, the last.
@dataclass
class _ReadyModel:
    settings: tuple
    model: object
    optimizer_start: list  # the optimizer's variables (step count, moments...) before its first step
    twin: object = None  # after mixed precision: the float32 copy (_Float32Twin), its graph traced


_ready: list[_ReadyModel] = []  # zero or one


def _compiled_settings(config: TrainConfig, steps_per_epoch: int) -> tuple:
    """What a compiled model's traced steps depend on: two configs that agree here can share one."""
    return (config.architecture, config.precision, config.optimizer, config.learning_rate, config.schedule,
            config.epochs, config.batch_size, steps_per_epoch)


def _compiled_model(config: TrainConfig, steps_per_epoch: int, reuse: bool) -> tuple[object, _ReadyModel | None]:
    """A newly built model compiled for `config` (random state seeded by `config.seed`), or with `reuse` the kept
    one restarted from such a model's variables when its settings match; and what to keep after training (None
    without `reuse`)."""
    import keras

    keras.utils.set_random_seed(config.seed)
    model = build_model(config.architecture, config.precision)
    if not reuse:
        compile_model(model, config, steps_per_epoch)
        return model, None
    settings = _compiled_settings(config, steps_per_epoch)
    ready = _ready.pop() if _ready else None
    if ready is not None and ready.settings == settings:
        for target, source in zip(ready.model.variables, model.variables, strict=True):
            target.assign(source)
        for target, start in zip(ready.model.optimizer.variables, ready.optimizer_start, strict=True):
            target.assign(start)
        return ready.model, ready
    compile_model(model, config, steps_per_epoch)
    model.optimizer.build(model.trainable_variables)  # now, to know its first state
    return model, _ReadyModel(settings, model, [keras.ops.copy(variable) for variable in model.optimizer.variables])


# How far augmentation distorts a training digit (each image gets its own random draw of every one). Chosen so the
# distorted digits still look like the same digits, and cover what people do on the Draw page that MNIST's writers
# rarely did (BENCHMARKS.md, "drawn digits"): lean them further, draw them squatter or narrower, wobble.
AUGMENTATION = {
    "rotation_degrees": 8.0,  # turned either way by up to this
    "shear": 0.25,  # slanted: horizontal shift per pixel of height, either way (0.25 ~ 14 degrees)
    "zoom": 0.1,  # scaled by up to +-10%...
    "aspect": 0.1,  # ...and made up to 10% wider or narrower than tall
    "shift_pixels": 2.0,  # moved up to 2 px each way
    "elastic_alpha": 20.0,  # Simard et al. 2003's elastic distortion: random displacements smoothed with a
    "elastic_sigma": 4.0,  # Gaussian of sigma 4 px, scaled by up to alpha (about 0.8 px rms at the full alpha)
    "pen": (-0.3, 0.5),  # pen made thinner (< 0) or thicker (> 0), blending towards a 3x3 erosion or dilation
    "flag_stretch": 2.2,  # the top-left quarter of 1s stretched leftwards up to this much: MNIST's few flagged 1s
    # get the longer, flatter flags many people draw (a 1 with any flag stays a 1; see `distort`)
}


# With augmentation, MNIST's 1s written with a flag (a stroke up to the top of the stem from the left, as much of
# Europe writes them) are shown this many more times an epoch: MNIST has only 188 of them among 6,742 1s (most
# with a foot), too few for a model to learn that a flag does not make a 7 (BENCHMARKS.md, "drawn digits").
# 30 more showings add 5,640 images (9%) to an epoch of all 60,000.
FLAGGED_ONE_REPEATS = 30
FLAG_INK = 2.0  # ink (in full pixels) left of the stem's line in the top rows that makes a 1 "flagged"


def flagged_ones(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Indices of the 1s in MNIST-style `images` (uint8 or [0, 1]) written with a flag.

    The stem's line is fitted through the ink's centre in rows 14-22 (the lower half of the 20-pixel box); a 1 has
    a flag when its rows 3-9 hold more than FLAG_INK of ink over 3 px left of that line, extended upwards.
    """
    ones = np.flatnonzero(labels == 1)
    if ones.size == 0:
        return ones
    ink = images[ones].astype(np.float32)
    if images.dtype == np.uint8:
        ink /= 255.0
    columns = np.arange(ink.shape[2], dtype=np.float32)
    lower_rows = np.arange(14, 23, dtype=np.float32)
    lower = ink[:, 14:23, :]
    row_mass = lower.sum(axis=2)
    row_centre = (lower * columns).sum(axis=2) / np.maximum(row_mass, 1e-6)
    weight = (row_mass > 0.5).astype(np.float32)  # rows the stem crosses
    # A least-squares line column = slope * row + intercept per image, over the rows the stem crosses.
    count = weight.sum(axis=1)
    mean_row = (weight * lower_rows).sum(axis=1) / np.maximum(count, 1)
    mean_col = (weight * row_centre).sum(axis=1) / np.maximum(count, 1)
    covariance = (weight * (lower_rows - mean_row[:, None]) * (row_centre - mean_col[:, None])).sum(axis=1)
    variance = (weight * (lower_rows - mean_row[:, None]) ** 2).sum(axis=1)
    slope = covariance / np.maximum(variance, 1e-6)
    top_rows = np.arange(3, 10, dtype=np.float32)
    stem = slope[:, None] * (top_rows - mean_row[:, None]) + mean_col[:, None]  # (n, 7): the stem's column per row
    left_of_stem = columns[None, None, :] < np.floor(stem - 3.0)[:, :, None]
    flag_ink = (ink[:, 3:10, :] * left_of_stem).sum(axis=(1, 2))
    return ones[(count >= 3) & (flag_ink > FLAG_INK)]


def with_flagged_ones_repeated(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`images` and `labels` with each flagged 1 (see `flagged_ones`) appended FLAGGED_ONE_REPEATS more times."""
    repeated = np.repeat(flagged_ones(images, labels), FLAGGED_ONE_REPEATS)
    if repeated.size == 0:
        return images, labels
    return np.concatenate([images, images[repeated]]), np.concatenate([labels, labels[repeated]])


def _gaussian_kernel(sigma: float):
    radius = int(math.ceil(2.5 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def distort(images, labels, settings: dict = AUGMENTATION):
    """Each image of a (batch, 28, 28) float32 [0, 1] batch with its own random pen width, affine transform
    (rotation, slant, zoom, aspect, shift) and elastic distortion, sampled bilinearly; ink outside the frame is lost.

    One resampling for all the geometric changes, so the strokes blur once, not once per change. `labels` make
    some changes depend on the digit, where MNIST's writers and people drawing here differ most (BENCHMARKS.md,
    "drawn digits"): 7s are only turned clockwise and slanted to the right (a 7 turned anticlockwise, or made
    upright, is a 1 written with a flag: a model taught that such shapes are 7s reads people's flagged 1s as 7s),
    and the top left of 1s is stretched leftwards (MNIST's few flagged 1s then show the long flags many people
    draw; a plain 1 has no ink there).
    """
    import tensorflow as tf

    batch = tf.shape(images)[0]
    size = images.shape[1]

    def uniform(low, high, shape=None):
        return tf.random.uniform(tf.stack([batch]) if shape is None else shape, low, high)

    # Pen width: blend towards a 3x3 grey dilation (thicker) or erosion (thinner), then the darkest ink back to 1.
    channels = images[..., tf.newaxis]
    thicker = tf.nn.max_pool2d(channels, 3, 1, "SAME")[..., 0]
    thinner = -tf.nn.max_pool2d(-channels, 3, 1, "SAME")[..., 0]
    pen = uniform(*settings["pen"])[:, tf.newaxis, tf.newaxis]
    images = tf.where(pen > 0, images + pen * (thicker - images), images + pen * (images - thinner))
    images = images / tf.maximum(tf.reduce_max(images, axis=[1, 2], keepdims=True), 1e-6)

    # Where each output pixel samples the input: a random affine map about the centre...
    angle = uniform(-1.0, 1.0) * math.radians(settings["rotation_degrees"])  # > 0: the digit turns anticlockwise
    shear = uniform(-settings["shear"], settings["shear"])  # > 0: the top leans right
    sevens = tf.equal(labels, 7)
    angle = tf.where(sevens, -tf.abs(angle), angle)
    shear = tf.where(sevens, tf.abs(shear), shear)
    zoom = tf.exp(uniform(-1.0, 1.0) * math.log1p(settings["zoom"]))
    aspect = tf.exp(uniform(-1.0, 1.0) * math.log1p(settings["aspect"]))
    scale_x, scale_y = 1.0 / (zoom * aspect), aspect / zoom
    cos, sin = tf.cos(angle), tf.sin(angle)
    # rotation @ shear @ scale, as a 2x2 matrix per image acting on (x, y)
    m11, m12 = cos * scale_x, (cos * shear - sin) * scale_y
    m21, m22 = sin * scale_x, (sin * shear + cos) * scale_y
    shift_x = uniform(-settings["shift_pixels"], settings["shift_pixels"])
    shift_y = uniform(-settings["shift_pixels"], settings["shift_pixels"])
    centre = (size - 1) / 2.0
    grid = tf.range(size, dtype=tf.float32) - centre
    ys, xs = tf.meshgrid(grid, grid, indexing="ij")  # (size, size) each

    def per_image(value):
        return value[:, tf.newaxis, tf.newaxis]

    source_x = per_image(m11) * xs + per_image(m12) * ys + centre + per_image(shift_x)
    source_y = per_image(m21) * xs + per_image(m22) * ys + centre + per_image(shift_y)

    # ...plus a smooth random displacement field (elastic distortion).
    kernel = _gaussian_kernel(settings["elastic_sigma"])
    noise = uniform(-1.0, 1.0, tf.stack([batch, size, size, 2]))
    noise = tf.nn.depthwise_conv2d(noise, tf.tile(kernel[:, None, None, None], [1, 1, 2, 1]), [1, 1, 1, 1], "SAME")
    noise = tf.nn.depthwise_conv2d(noise, tf.tile(kernel[None, :, None, None], [1, 1, 2, 1]), [1, 1, 1, 1], "SAME")
    alpha = uniform(0.0, settings["elastic_alpha"])[:, tf.newaxis, tf.newaxis, tf.newaxis]
    displacement = noise * alpha
    source_x += displacement[..., 0]
    source_y += displacement[..., 1]

    # 1s: the flag, left of the stem's top, stretched leftwards (full stretch above row 10, none below row 14).
    stretch = tf.where(tf.equal(labels, 1), uniform(1.0, settings["flag_stretch"]), 1.0)
    top_left = tf.clip_by_value((14.0 - (ys + centre)) / 4.0, 0.0, 1.0) * tf.cast(xs < 0, tf.float32)
    source_x += top_left * xs * (1.0 / per_image(stretch) - 1.0)
    return _bilinear(images, source_x, source_y)


def _bilinear(images, source_x, source_y):
    """images (batch, h, w) sampled at (source_y, source_x) (batch, h, w) each; zero outside the frame."""
    import tensorflow as tf

    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1]])  # a frame of zeros: samples outside read background
    x = tf.clip_by_value(source_x + 1.0, 0.0, width + 1.0)
    y = tf.clip_by_value(source_y + 1.0, 0.0, height + 1.0)
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = x - x0, y - y0
    x0 = tf.cast(x0, tf.int32)
    y0 = tf.cast(y0, tf.int32)
    x1 = tf.minimum(x0 + 1, width + 1)
    y1 = tf.minimum(y0 + 1, height + 1)
    flat = tf.reshape(padded, [-1])
    row = width + 2
    base = tf.range(tf.shape(images)[0])[:, tf.newaxis, tf.newaxis] * (height + 2) * row

    def at(yy, xx):
        return tf.gather(flat, base + yy * row + xx)

    top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx
    return top * (1.0 - fy) + bottom * fy


def _to_unit(images):
    """uint8 0-255 -> float32 [0, 1]; float images are taken as already scaled."""
    import tensorflow as tf

    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    return tf.cast(images, tf.float32)


PREFETCH_BATCHES = 2


def _without_autotune(dataset):
    """`dataset` with tf.data's autotuner off (fixed prefetch and parallelism instead).

    Keras makes a new iterator every epoch, and with the autotuner on, dropping the old one sometimes waited for
    one of its background threads with both cores idle: 3-4.5 s at an epoch start, a third of an epoch of the
    seed CNN (py-spy: the main thread in ~Iterator, waiting). With the autotuner off those pauses are gone and
    the pipeline is as fast (BENCHMARKS.md).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def make_train_dataset(x: np.ndarray, y: np.ndarray, config: TrainConfig):
    """A shuffled, batched, prefetched tf.data pipeline of float32 [0, 1] images (augmented if asked).

    `x` may be MNIST's uint8 pixels or float32 already in [0, 1]. With uint8 the pipeline holds a quarter of
    the memory (the copy TensorFlow makes of `x` and the shuffle buffer: 2 x 47 MB instead of 2 x 188 MB for all
    60,000 images) and scales each batch, which costs microseconds (bench/bench_memory.py).
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    dataset = dataset.shuffle(len(y), seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size)
    if config.augment:
        tf.random.set_seed(config.seed)  # reproducible up to the order the parallel calls run in

        def augment(images, labels):
            return distort(_to_unit(images), labels), labels

        dataset = dataset.map(augment, num_parallel_calls=usable_cores())
    else:
        dataset = dataset.map(lambda images, labels: (_to_unit(images), labels))
    return _without_autotune(dataset.prefetch(PREFETCH_BATCHES))


EVAL_BATCH = 250


def make_eval_dataset(x: np.ndarray, y: np.ndarray, batch_size: int = EVAL_BATCH):
    """Batched float32 [0, 1] images for validation; `x` uint8 0-255 or float32 [0, 1].

    Batches of 250, not more: as fast on the CPU, and a 1000-image batch through the strong CNN takes
    ~200 MB more memory at its peak.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    dataset = dataset.map(lambda images, labels: (_to_unit(images), labels)).prefetch(PREFETCH_BATCHES)
    return _without_autotune(dataset)


def _progress_callback_class():
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        """Turns Keras' hooks into BatchEvent/EpochEvent and the stop flag into `model.stop_training`."""

        def __init__(self, config: TrainConfig, steps: int, on_event, stop_event: threading.Event, watch=None,
                     last_validation=None):
            super().__init__()
            self.watch = watch
            self.last_validation = last_validation  # () -> (val_loss, val_accuracy) for the last epoch, or None
            self.config = config
            self.steps = steps
            self.on_event = on_event
            self.stop_event = stop_event
            self.history: list[EpochEvent] = []
            self.batches_trained = 0
            self._recent: deque[tuple[float, int]] = deque(maxlen=20)  # (time, batches done) for images/s
            self._last_step = 0

        def _check_stop(self) -> None:
            if self.stop_event.is_set():
                self.model.stop_training = True

        def _report_watched(self, epoch: int) -> None:
            """The model's answers for the watched images (a few milliseconds for the 20 of the panel)."""
            if self.watch is None or self.on_event is None:
                return
            logits = keras.ops.cast(self.model(self.watch, training=False), "float32")
            self.on_event(panel_event(epoch, keras.ops.convert_to_numpy(keras.ops.softmax(logits))))

        def on_train_begin(self, logs=None):
            self._start = time.perf_counter()
            self._report_watched(0)
            self._check_stop()

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()
            self._recent.clear()
            self._recent.append((self._epoch_start, 0))
            self._last_step = 0
            self._check_stop()

        def on_train_batch_end(self, batch, logs=None):
            # `batch` is the last batch of the call (several with steps_per_execution); Keras counts a whole call
            # at the epoch's end even when fewer batches were left.
            now = time.perf_counter()
            step = min(batch + 1, self.steps)
            self.batches_trained += step - self._last_step
            self._last_step = step
            then, step_then = self._recent[0]
            self._recent.append((now, step))
            images = (step - step_then) * self.config.batch_size
            images_per_second = images / (now - then) if now > then else 0.0
            elapsed = now - self._start
            total = self.config.epochs * self.steps
            seconds_per_batch = elapsed / self.batches_trained
            epoch_index = len(self.history)
            done = epoch_index * self.steps + step
            event = BatchEvent(
                epoch=epoch_index + 1,
                epochs=self.config.epochs,
                step=step,
                steps=self.steps,
                loss=float(logs["loss"]),
                accuracy=float(logs["accuracy"]),
                images_per_second=images_per_second,
                elapsed_seconds=elapsed,
                eta_seconds=max(0.0, (total - done) * seconds_per_batch),
            )
            if self.on_event is not None:
                self.on_event(event)
            self._check_stop()

        def on_test_batch_end(self, batch, logs=None):
            # A stop during validation should not wait for the whole validation pass.
            if self.stop_event.is_set():
                self.model.stop_evaluating = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            stopped_early = self._last_step < self.steps
            validated = "val_loss" in logs and not (self.stop_event.is_set())
            if (not validated and self.last_validation is not None and epoch + 1 == self.config.epochs
                    and not stopped_early and not self.stop_event.is_set()):
                logs = {**logs, **dict(zip(("val_loss", "val_accuracy"), self.last_validation()))}
                validated = True
            event = EpochEvent(
                epoch=epoch + 1,
                epochs=self.config.epochs,
                loss=float(logs.get("loss", float("nan"))),
                accuracy=float(logs.get("accuracy", float("nan"))),
                val_loss=float(logs["val_loss"]) if validated else None,
                val_accuracy=float(logs["val_accuracy"]) if validated else None,
                seconds=time.perf_counter() - self._epoch_start,
                complete=not stopped_early,
            )
            if self._last_step > 0:
                self.history.append(event)
                if self.on_event is not None:
                    self.on_event(event)
                self._report_watched(epoch + 1)
            self._check_stop()

    return ProgressCallback


class _Float32Twin:
    """A float32 model of a mixed-precision model's architecture: what it is saved as, and what validates its last
    epoch (with its final weights), so the saved accuracy is measured once, in the precision the model is saved in.
    The same figure as evaluating the saved model afterwards, without a bfloat16 pass over the same images first."""

    def __init__(self, architecture: str):
        from mnist_core.keras_inference import KerasClassifier

        self.model = build_model(architecture, "float32")
        self.classifier = KerasClassifier(self.model)  # its graph is traced at the first call, then kept

    def holding(self, model):
        """This twin's model with `model`'s weights."""
        self.model.set_weights(model.get_weights())
        return self.model

    def validate(self, model, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """(loss, accuracy) of `model`'s weights in float32 on `images` (uint8 or [0, 1]) and their labels."""
        self.holding(model)
        probabilities = self.classifier.predict_proba(images)
        right = probabilities[np.arange(len(labels)), labels]
        loss = float(-np.log(np.maximum(right, 1e-12), dtype=np.float64).mean())
        return loss, float((probabilities.argmax(axis=1) == labels).mean())


def train(
    config: TrainConfig,
    on_event: Callable[[ProgressEvent], None] | None = None,
    stop_event: threading.Event | None = None,
    mnist=None,
    model=None,
    watch: np.ndarray | None = None,
    reuse: bool = False,
    images: int | None = None,
) -> TrainResult:
    """Train a fresh model (or `model`) as `config` says, reporting BatchEvent/EpochEvent through `on_event`.

    With `watch` ((n, 28, 28) float32 images in [0, 1], the Train page's panel of test digits), the model's answers
    for them are reported as a PanelEvent before the first batch (epoch 0) and after each epoch.

    Setting `stop_event` ends training at the next batch (or the next validation batch); the result then
    has `stopped=True` and the history of the epochs that ran. `mnist` defaults to the bundled data.
    A fresh model computes in `config.precision`; a given `model` in its own layers' precision. The result's model
    is float32 either way.

    With `reuse` (a worker's jobs, one at a time), the model compiled here is kept for the next `reuse` call with the
    same compiled settings, which restarts it (see `_ReadyModel`): use this call's result before the next one.
    `images` (a warm-up) trains on only that many of the training images and validates on one batch, while the
    model is compiled for the whole of `config`, so that what is kept serves the real job.
    """
    import keras

    stop_event = stop_event or threading.Event()
    # uint8 into the pipelines, scaled per batch there: a float32 copy of 60,000 images would hold 188 MB more.
    (x_train, y_train), (x_val, y_val) = split_data(config, mnist)
    if config.augment:
        x_train, y_train = with_flagged_ones_repeated(x_train, y_train)
    steps = math.ceil(len(y_train) / config.batch_size)
    if model is None:
        model, ready = _compiled_model(config, steps, reuse)
    else:
        keras.utils.set_random_seed(config.seed)
        compile_model(model, config, steps)
        ready = None
    epochs = config.epochs
    if images is not None:
        x_train, y_train = x_train[:images], y_train[:images]
        x_val, y_val = x_val[:EVAL_BATCH], y_val[:EVAL_BATCH]
        steps, epochs = math.ceil(len(y_train) / config.batch_size), 1
    twin = None
    if not is_float32(model):
        # Mixed precision: Keras validates every epoch but the last; the last is validated by the float32 copy the
        # model is saved as, with its final weights (a bfloat16 validation reads an image or two differently).
        twin = ready.twin if ready is not None and ready.twin is not None else _Float32Twin(config.architecture)
        if ready is not None:
            ready.twin = twin
    callback = _progress_callback_class()(
        replace(config, epochs=epochs), steps, on_event, stop_event,
        watch=None if watch is None else np.asarray(watch, dtype=np.float32),
        last_validation=None if twin is None else lambda: twin.validate(model, x_val, y_val),
    )

    def as_saved():  # the model in float32 (~20 ms to copy the weights of the seed CNN)
        return model if twin is None else twin.holding(model)

    started = time.perf_counter()
    if stop_event.is_set():
        # Keras runs at least one batch before it looks at stop_training: a stop that came first trains nothing.
        if ready is not None:
            _ready[:] = [ready]
        return TrainResult(model=as_saved(), config=config, stopped=True)
    model.fit(
        make_train_dataset(x_train, y_train, config),
        epochs=epochs,
        validation_data=make_eval_dataset(x_val, y_val),
        # (a warm-up validates its one epoch in Keras too, so that both validations' graphs are traced)
        validation_freq=1 if twin is None or images is not None else list(range(1, epochs)),
        callbacks=[callback],
        shuffle=False,  # the dataset shuffles itself, with the config's seed
        verbose=0,
    )
    seconds = time.perf_counter() - started
    if images is not None and twin is not None and not stop_event.is_set():
        twin.validate(model, x_val, y_val)
    if ready is not None:
        _ready[:] = [ready]
    last = callback.history[-1] if callback.history else None
    return TrainResult(
        model=as_saved(),
        config=config,
        history=callback.history,
        seconds=seconds,
        stopped=stop_event.is_set() or len(callback.history) < epochs,
        batches_trained=callback.batches_trained,
        validated_in_float32=(last is not None and last.epoch == epochs and last.complete
                              and last.val_accuracy is not None),
    )


def with_overrides(config: TrainConfig, **overrides) -> TrainConfig:
    """A copy of `config` with some fields changed (validated again)."""
    return replace(config, **{name: value for name, value in overrides.items() if value is not None})

