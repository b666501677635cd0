"""mnist_core.inference: probabilities that agree with Keras, on one image or many, and conv feature maps."""

import numpy as np
import pytest

from mnist_core.architectures import build_model
from mnist_core.inference import DIRECT_CALL_LIMIT, Classifier, softmax


@pytest.fixture(scope="module")
def classifier(trained_cnn):
    return Classifier(trained_cnn, "tiny-cnn")


def test_one_image_and_a_batch_give_probability_rows(classifier, test_images):
    images, labels = test_images
    single = classifier.predict_proba(images[0])
    assert single.shape == (1, 10) and single.dtype == np.float32
    batch = classifier.predict_proba(images[:20])
    assert batch.shape == (20, 10)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, atol=1e-5)
    assert (batch >= 0).all()
    np.testing.assert_allclose(single[0], batch[0], atol=1e-6)
    # A trained network is right about most of them.
    assert (classifier.predict(images[:200]) == labels[:200]).mean() > 0.7


def test_matches_softmax_of_keras_predict(classifier, trained_cnn, test_images):
    images, _ = test_images
    keras_logits = trained_cnn.predict(images[:100], verbose=0)
    np.testing.assert_allclose(classifier.predict_proba(images[:100]), softmax(keras_logits), atol=1e-5)


def test_large_batches_agree_with_small_ones(classifier, test_images):
    images, _ = test_images
    count = DIRECT_CALL_LIMIT * 3 + 17  # past the direct-call limit, and not a multiple of the chunk size
    assert count <= len(images)
    large = classifier.predict_proba(images[:count], batch_size=300)
    small = np.concatenate(
        [classifier.predict_proba(images[start : min(start + 100, count)]) for start in range(0, count, 100)]
    )
    assert large.shape == small.shape == (count, 10)
    np.testing.assert_allclose(large, small, atol=1e-5)


def test_accepts_a_channel_axis_and_raw_uint8_pixels(classifier, mnist, test_images):
    images, _ = test_images
    np.testing.assert_allclose(
        classifier.predict_proba(images[:5, :, :, np.newaxis]), classifier.predict_proba(images[:5]), atol=1e-6
    )
    # MNIST's own uint8 pixels (0-255) are scaled like the training data, not taken as huge floats.
    (_, _), (x_test, _) = mnist
    np.testing.assert_allclose(classifier.predict_proba(x_test[:5]), classifier.predict_proba(images[:5]), atol=1e-5)


def test_top_k_is_ordered_most_likely_first(classifier, test_images):
    images, _ = test_images
    top = classifier.top_k(images[0], k=3)
    probabilities = classifier.predict_proba(images[0])[0]
    assert len(top) == 3 and len({digit for digit, _ in top}) == 3
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert top[0][0] == int(probabilities.argmax())
    for digit, probability in top:
        assert probability == pytest.approx(float(probabilities[digit]))
    assert len(classifier.top_k(images[0], k=10)) == 10


def test_feature_maps_of_the_cnn(classifier, test_images):
    images, _ = test_images
    maps = classifier.feature_maps(images[0])
    assert [m.layer_name for m in maps] == classifier.conv_layer_names
    assert [m.maps.shape for m in maps] == [(26, 26, 32), (11, 11, 64)]
    assert all(m.maps.min() >= 0 for m in maps)  # taken after the ReLU
    assert maps[0].maps.max() > 0
    # A different digit lights up different maps; the cached feature model is reused correctly.
    other = classifier.feature_maps(images[1])
    assert not np.allclose(other[0].maps, maps[0].maps)


def test_feature_maps_of_an_mlp_are_empty():
    assert Classifier(build_model("mlp")).feature_maps(np.zeros((28, 28), np.float32)) == []


@pytest.mark.parametrize("shape", [(27, 27), (28,), (784,), (2, 784), (2, 28, 27), (2, 28, 28, 3), (1, 1, 28, 28)])
def test_wrong_shapes_raise_value_error(classifier, shape):
    with pytest.raises(ValueError) as raised:
        classifier.predict_proba(np.zeros(shape, np.float32))
    assert "28" in str(raised.value)


def test_load_by_name_from_a_store(tmp_path, trained_cnn, test_images):
    from mnist_core.store import ModelInfo, save_model

    images, _ = test_images
    save_model(trained_cnn, ModelInfo("tiny", "cnn", {}, 0.9, versions={"keras": "test"}), tmp_path)
    loaded = Classifier.load("tiny", tmp_path)
    assert loaded.name == "tiny"
    np.testing.assert_allclose(
        loaded.predict_proba(images[:10]), Classifier(trained_cnn).predict_proba(images[:10]), atol=1e-6
    )
    assert [m.maps.shape for m in loaded.feature_maps(images[0])] == [(26, 26, 32), (11, 11, 64)]
