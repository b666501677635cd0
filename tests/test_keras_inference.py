"""mnist_core.keras_inference: the trainer's classifier over a Keras model in memory gives Keras' own answers."""

import numpy as np
import pytest

from mnist_core.architectures import build_model
from mnist_core.inference import softmax
from mnist_core.keras_inference import DIRECT_CALL_LIMIT, KerasClassifier, feature_model


@pytest.fixture(scope="module")
def classifier(trained_cnn):
    return KerasClassifier(trained_cnn)


def test_matches_softmax_of_keras_predict(classifier, trained_cnn, test_images):
    images, labels = test_images
    keras_logits = trained_cnn.predict(images[:100], verbose=0)
    np.testing.assert_allclose(classifier.predict_proba(images[:100]), softmax(keras_logits), atol=1e-5)
    assert (classifier.predict(images[:200]) == labels[:200]).mean() > 0.7


def test_batches_past_the_direct_call_limit_agree_with_small_ones(classifier, test_images):
    images, _ = test_images
    count = DIRECT_CALL_LIMIT * 3 + 17
    large = classifier.predict_proba(images[:count], batch_size=300)
    small = np.concatenate([classifier.predict_proba(images[start : min(start + 100, count)])
                            for start in range(0, count, 100)])
    np.testing.assert_allclose(large, small, atol=1e-5)


def test_feature_maps_are_the_activated_conv_outputs(classifier, test_images):
    images, _ = test_images
    maps = classifier.feature_maps(images[0])
    assert [m.layer_name for m in maps] == classifier.conv_layer_names == ["conv2d", "conv2d_1"]
    assert [m.maps.shape for m in maps] == [(26, 26, 32), (11, 11, 64)]
    assert all(m.maps.min() >= 0 for m in maps)  # after the ReLU


def test_the_feature_model_of_the_strong_cnn_ends_after_batch_norm_and_relu():
    model = build_model("strong")
    features = feature_model(model)
    # Each output is the Activation layer two steps after its Conv2D (conv -> batch norm -> relu).
    produced_by = [tensor._keras_history.operation.name for tensor in features.outputs]
    assert produced_by == ["activation", "activation_1", "activation_2", "activation_3", "activation_4"]
    assert feature_model(build_model("mlp")) is None
    assert KerasClassifier(build_model("mlp")).feature_maps(np.zeros((28, 28), np.float32)) == []
