"""How much memory a training job needs, estimated from its settings before it starts.

A worker's peak RSS = what a ready worker holds (TensorFlow, Keras, MNIST) + the job's training images twice (the
tf.data tensor and its shuffle buffer, uint8) + the activations of a batch (each layer's output, read from the
recorded architecture summary, kept for the backward pass with its gradients and TensorFlow's scratch space: a
factor calibrated by bench/bench_worker_memory.py, BENCHMARKS.md). The queue refuses a job whose estimate does not
fit beside what the container already uses, with the figures in the message.
"""

from __future__ import annotations

import math
import re

from mnist_core.architectures import recorded_summary
from mnist_core.constants import IMAGE_SIZE
from mnist_core.training import TrainConfig

MIB = 2**20
# Calibrated on this project's workers (bench/bench_worker_memory.py, 2026-11-30, float32, 6,000 images): a ready
# worker holds 614 MiB; a job adds ~160-210 MiB whatever its batch (Keras' training and evaluation machinery), and
# per image of a batch 8.1 bytes per activation value for the seed CNN, 3.5 for the strong CNN (augmented). The
# figures below over-estimate every measured peak by 0-40% rather than under-estimate any.
READY_WORKER_BYTES = 614 * MIB
JOB_BYTES = 200 * MIB
BYTES_PER_ACTIVATION = 7
AUGMENTATION_BYTES_PER_IMAGE = 4 * IMAGE_SIZE * IMAGE_SIZE * 8  # float copies the random transforms make


def activation_values(architecture: str) -> int:
    """Values one image produces across all layers of `architecture` (from its recorded summary, no TensorFlow)."""
    total = IMAGE_SIZE * IMAGE_SIZE
    for row in recorded_summary(architecture).layers:
        sizes = [int(size) for size in re.findall(r"\d+", row.output_shape)]
        total += math.prod(sizes) if sizes else 0
    return total


def estimate_peak_bytes(config: TrainConfig, worker_ready: bool = False) -> int:
    """The peak memory a worker needs for `config`; without the ready worker's own part when one is already
    running (its memory is in use already)."""
    images = config.train_size * IMAGE_SIZE * IMAGE_SIZE * 2
    batch = config.batch_size * activation_values(config.architecture) * BYTES_PER_ACTIVATION
    augmentation = config.batch_size * AUGMENTATION_BYTES_PER_IMAGE if config.augment else 0
    return int(JOB_BYTES + images + batch + augmentation + (0 if worker_ready else READY_WORKER_BYTES))


def fits(config: TrainConfig, available_bytes: int | None, worker_ready: bool) -> tuple[bool, int]:
    """(whether the job fits in `available_bytes` (None: unknown, so yes), the bytes it needs)."""
    needed = estimate_peak_bytes(config, worker_ready)
    return (available_bytes is None or needed <= available_bytes), needed
