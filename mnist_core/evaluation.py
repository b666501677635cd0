"""How well a classifier does on labelled images: accuracy, confusion matrix, per-class figures, mistakes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_core.constants import NUM_CLASSES


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    confusion: np.ndarray  # (10, 10) int64: rows are true labels, columns predictions
    per_class_accuracy: np.ndarray  # (10,) float64, recall of each digit
    predictions: np.ndarray  # (n,) int64
    probabilities: np.ndarray  # (n, 10) float32
    labels: np.ndarray  # (n,) int64

    @property
    def misclassified(self) -> np.ndarray:
        """Indices of the images the classifier got wrong, most confident mistakes first."""
        wrong = np.flatnonzero(self.predictions != self.labels)
        confidence = self.probabilities[wrong, self.predictions[wrong]]
        return wrong[np.argsort(-confidence, kind="stable")]

    def misclassified_as(self, true_label: int, predicted: int) -> np.ndarray:
        """Indices of images of `true_label` predicted as `predicted` (a confusion-matrix cell)."""
        return np.flatnonzero((self.labels == true_label) & (self.predictions == predicted))

    @property
    def error_count(self) -> int:
        return int((self.predictions != self.labels).sum())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """(10, 10) counts, rows = true label, columns = predicted label."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= NUM_CLASSES):
            raise ValueError(f"{name} must be digits 0 to {NUM_CLASSES - 1}, got values from {values.min()} to {values.max()}.")
    flat = np.bincount(labels * NUM_CLASSES + predictions, minlength=NUM_CLASSES * NUM_CLASSES)
    return flat.reshape(NUM_CLASSES, NUM_CLASSES)


def evaluate(classifier, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Evaluate `classifier` (see inference.Classifier) on uint8 or [0, 1] float images and their labels.

    uint8 images go to the classifier as they are: it scales them batch by batch, instead of holding all 10,000
    test images as float32 at once (31 MB).
    """
    probabilities = classifier.predict_proba(np.asarray(images))
    predictions = probabilities.argmax(axis=1).astype(np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    confusion = confusion_matrix(labels, predictions)
    totals = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), totals, out=np.zeros(NUM_CLASSES), where=totals > 0)
    return Evaluation(
        accuracy=float((predictions == labels).mean()) if len(labels) else float("nan"),
        confusion=confusion,
        per_class_accuracy=per_class,
        predictions=predictions,
        probabilities=probabilities,
        labels=labels,
    )
