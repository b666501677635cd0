"""mnist_core.evaluation: our figures agree with a hand count and with Keras' own evaluate."""

import numpy as np
import pytest

from mnist_core.evaluation import confusion_matrix, evaluate
from mnist_core.export import litert_model
from mnist_core.inference import Classifier
from mnist_core.keras_inference import KerasClassifier


class FixedClassifier:
    """Returns the probabilities it was given, whatever the images."""

    def __init__(self, probabilities):
        self.probabilities = np.asarray(probabilities, dtype=np.float32)

    def predict_proba(self, images):
        assert len(images) == len(self.probabilities)
        return self.probabilities


def one_hot_ish(predictions, confidences):
    rows = np.full((len(predictions), 10), 0.0, dtype=np.float32)
    for row, (digit, confidence) in enumerate(zip(predictions, confidences)):
        rows[row] = (1 - confidence) / 9
        rows[row, digit] = confidence
    return rows


def test_confusion_matrix_by_hand():
    labels = [0, 0, 1, 2, 2, 2, 9]
    predictions = [0, 1, 1, 2, 7, 2, 4]
    confusion = confusion_matrix(labels, predictions)
    expected = np.zeros((10, 10), dtype=np.int64)
    expected[0, 0] = 1
    expected[0, 1] = 1
    expected[1, 1] = 1
    expected[2, 2] = 2
    expected[2, 7] = 1
    expected[9, 4] = 1
    np.testing.assert_array_equal(confusion, expected)
    assert confusion.sum() == len(labels)


def test_evaluation_figures_and_mistakes_by_hand():
    labels = np.array([3, 3, 5, 8, 8, 1])
    predictions = [3, 5, 5, 8, 3, 7]
    confidences = [0.9, 0.6, 0.8, 0.99, 0.95, 0.7]
    result = evaluate(FixedClassifier(one_hot_ish(predictions, confidences)), np.zeros((6, 28, 28), np.uint8), labels)
    assert result.accuracy == pytest.approx(3 / 6)
    assert result.error_count == 3
    # Most confident mistake first: image 4 (8 taken for 3 at 0.95), then 5 (0.7), then 1 (0.6).
    assert result.misclassified.tolist() == [4, 5, 1]
    assert result.misclassified_as(3, 5).tolist() == [1]
    assert result.misclassified_as(8, 3).tolist() == [4]
    assert result.misclassified_as(8, 8).tolist() == [3]
    assert result.misclassified_as(0, 0).tolist() == []
    assert result.per_class_accuracy[3] == pytest.approx(0.5)
    assert result.per_class_accuracy[8] == pytest.approx(0.5)
    assert result.per_class_accuracy[5] == 1.0 and result.per_class_accuracy[1] == 0.0
    assert result.per_class_accuracy[0] == 0.0  # no images of 0: reported as 0, not NaN
    assert result.confusion[8, 3] == 1 and result.confusion.sum() == 6


def test_accuracy_agrees_with_keras_evaluate(trained_cnn, test_images):
    import keras

    images, labels = test_images
    trained_cnn.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    keras_accuracy = trained_cnn.evaluate(images, labels, batch_size=500, verbose=0, return_dict=True)["accuracy"]
    ours = evaluate(KerasClassifier(trained_cnn), images, labels)
    assert ours.accuracy == pytest.approx(keras_accuracy, abs=1e-6)
    assert 0.7 < ours.accuracy < 1.0
    # The server's LiteRT file of the same model gives the same answers, in batches.
    served = evaluate(Classifier(litert_model(trained_cnn)), images, labels)
    np.testing.assert_array_equal(served.predictions, ours.predictions)
    np.testing.assert_array_equal(served.confusion, ours.confusion)
    # uint8 images are scaled to [0, 1] the same way.
    as_uint8 = np.round(images * 255).astype(np.uint8)
    assert evaluate(KerasClassifier(trained_cnn), as_uint8, labels).accuracy == pytest.approx(ours.accuracy, abs=1e-3)
    assert ours.confusion.sum() == len(labels)
    np.testing.assert_array_equal(ours.confusion.sum(axis=1), np.bincount(labels, minlength=10))
    np.testing.assert_allclose(
        ours.per_class_accuracy, np.diag(ours.confusion) / ours.confusion.sum(axis=1), rtol=1e-12
    )
