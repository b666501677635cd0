"""The panel of 20 test digits the Train page watches while a model learns (like ConvNetJS' live test predictions).

The training job predicts them at the start and at the end of every epoch (training.train's `watch`) and reports a
PanelEvent each time; the job keeps them in its snapshot (jobs/job.py), so the page only draws what the job saw.

The digits were chosen once (2026-11-30) with the shipped models of that day, and are recorded here so that every
training watches the same ones:
- EASY, one per digit: of the test images both shipped models read right, the shipped cnn with more than 99.9%,
  the one closest to its digit's average image (a textbook digit);
- HARDER, one per digit: for 0, 2, 4, 6 and 8 a middling one (both models right, the cnn about 70% sure), for 1, 3,
  5, 7 and 9 a hard one (the strong-cnn right, the cnn wrong and least sure of the truth: a 7 that looks like a 1,
  a 9 that looks like an 8). A small network gets the first row right early and some of the second row never.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

EASY = (4542, 6407, 208, 6365, 7662, 9331, 2458, 6586, 3588, 4901)
HARDER = (9850, 6783, 8059, 938, 160, 5937, 2995, 1039, 4731, 813)
PANEL_INDICES = EASY + HARDER  # test-set indices: the top row of the panel, then the bottom row
PANEL_COLUMNS = 10


@dataclass(frozen=True)
class PanelEvent:
    """What the model in training says about the panel's digits: after `epoch` epochs (0: before the first batch).

    `predictions` and `confidences` (the predicted digit's probability) follow PANEL_INDICES' order.
    """

    epoch: int
    predictions: tuple[int, ...]
    confidences: tuple[float, ...]

    def right(self, labels) -> int:
        """How many of the digits it reads as their label."""
        return int(sum(int(prediction) == int(label) for prediction, label in zip(self.predictions, labels)))


def panel_event(epoch: int, probabilities: np.ndarray) -> PanelEvent:
    """The PanelEvent of (20, 10) probabilities (or logits' softmax) after `epoch` epochs."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predictions = probabilities.argmax(axis=1)
    return PanelEvent(
        epoch=int(epoch),
        predictions=tuple(int(digit) for digit in predictions),
        confidences=tuple(round(float(probabilities[row, digit]), 4) for row, digit in enumerate(predictions)),
    )


_cached: tuple[np.ndarray, np.ndarray] | None = None
_cache_lock = threading.Lock()


def panel_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (20, 28, 28) uint8, labels (20,) int): the panel's digits, from the bundled test split (read once
    per process, then 16 KB kept). Always the bundled file, even where a caller trains on a subset of MNIST."""
    global _cached
    with _cache_lock:
        if _cached is None:
            from mnist_core.data import load_test_split

            x_test, y_test = load_test_split()
            _cached = (x_test[list(PANEL_INDICES)].copy(), y_test[list(PANEL_INDICES)].astype(np.int64))
        return _cached
