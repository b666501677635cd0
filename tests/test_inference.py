"""mnist_core.inference: the LiteRT Classifier gives Keras' answers, on one image or many, and the same feature maps."""

import threading

import numpy as np
import pytest

from mnist_core.architectures import build_model
from mnist_core.export import litert_model
from mnist_core.inference import BATCH_SIZE, Classifier, InvalidLiteRTModel
from mnist_core.keras_inference import KerasClassifier


@pytest.fixture(scope="module")
def classifier(trained_cnn):
    return Classifier(litert_model(trained_cnn), "tiny-cnn")


@pytest.fixture(scope="module")
def keras_classifier(trained_cnn):
    return KerasClassifier(trained_cnn, "tiny-cnn")


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


def test_agrees_with_the_keras_model(classifier, keras_classifier, trained_cnn, test_images):
    images, _ = test_images
    litert = classifier.predict_proba(images[:500])
    np.testing.assert_allclose(litert, keras_classifier.predict_proba(images[:500]), atol=1e-5)
    assert (litert.argmax(axis=1) == keras_classifier.predict(images[:500])).all()
    # ... which is Keras' own predict, softmaxed.
    keras_logits = trained_cnn.predict(images[:100], verbose=0)
    np.testing.assert_allclose(keras_classifier.predict_proba(images[:100]), np.exp(keras_logits) /
                               np.exp(keras_logits).sum(axis=1, keepdims=True), atol=1e-5)


def test_large_batches_agree_with_small_ones(classifier, test_images):
    images, _ = test_images
    count = BATCH_SIZE * 3 + 17  # several batches, and not a multiple of the batch size
    assert count <= len(images)
    large = classifier.predict_proba(images[:count], batch_size=300)
    small = np.concatenate(
        [classifier.predict_proba(images[start : min(start + 100, count)]) for start in range(0, count, 100)]
    )
    assert large.shape == small.shape == (count, 10)
    np.testing.assert_allclose(large, small, atol=1e-5)
    assert classifier.predict_proba(images[:0]).shape == (0, 10)


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


def test_feature_maps_are_keras_activations_after_the_relu(classifier, keras_classifier, test_images):
    images, _ = test_images
    maps = classifier.feature_maps(images[0])
    assert classifier.conv_layer_names == keras_classifier.conv_layer_names == ["conv2d", "conv2d_1"]
    assert [m.layer_name for m in maps] == classifier.conv_layer_names
    assert [m.maps.shape for m in maps] == [(26, 26, 32), (11, 11, 64)]
    for ours, keras in zip(maps, keras_classifier.feature_maps(images[0])):
        np.testing.assert_allclose(ours.maps, keras.maps, atol=1e-4)
    assert all(m.maps.min() >= 0 for m in maps)  # taken after the ReLU
    assert maps[0].maps.max() > 0
    other = classifier.feature_maps(images[1])
    assert not np.allclose(other[0].maps, maps[0].maps)


def test_feature_maps_follow_batch_norm_and_relu_in_layer_order(test_images):
    """The strong architecture puts batch norm and a ReLU between a conv and its feature maps; five convs."""
    images, _ = test_images
    model = build_model("strong")
    ours, keras = Classifier(litert_model(model)), KerasClassifier(model)
    assert ours.conv_layer_names == keras.conv_layer_names == ["conv2d", *(f"conv2d_{i}" for i in range(1, 5))]
    for mine, theirs in zip(ours.feature_maps(images[3]), keras.feature_maps(images[3])):
        assert mine.layer_name == theirs.layer_name and mine.maps.shape == theirs.maps.shape
        np.testing.assert_allclose(mine.maps, theirs.maps, atol=1e-4)
        assert mine.maps.min() >= 0


def test_an_mlp_has_no_feature_maps():
    mlp = Classifier(litert_model(build_model("mlp")))
    assert mlp.conv_layer_names == []
    assert mlp.feature_maps(np.zeros((28, 28), np.float32)) == []


@pytest.mark.parametrize("shape", [(27, 27), (28,), (784,), (2, 784), (2, 28, 27), (2, 28, 28, 3), (1, 1, 28, 28)])
def test_wrong_shapes_raise_value_error(classifier, shape):
    with pytest.raises(ValueError) as raised:
        classifier.predict_proba(np.zeros(shape, np.float32))
    assert "28" in str(raised.value)


def test_bytes_that_are_not_a_model_are_refused_clearly():
    with pytest.raises(InvalidLiteRTModel) as raised:
        Classifier(b"not a model at all" * 10, "junk")
    assert "junk" in str(raised.value) and "LiteRT" in str(raised.value)


def test_sessions_predicting_at_once_get_their_own_answers(classifier, test_images):
    """Streamlit serves sessions from threads that share one cached Classifier."""
    images, _ = test_images
    expected = classifier.predict_proba(images[:40])
    answers: dict[int, np.ndarray] = {}

    def session(index: int) -> None:
        for _ in range(25):
            answers[index] = classifier.predict_proba(images[index])[0]
            classifier.feature_maps(images[index])

    threads = [threading.Thread(target=session, args=(index,)) for index in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_allclose(np.stack([answers[index] for index in range(40)]), expected, atol=1e-5)


def test_load_by_name_reads_the_file_the_store_saved(tmp_path, trained_cnn, test_images):
    from mnist_core.store import ModelInfo, litert_path, save_model

    images, _ = test_images
    save_model(trained_cnn, ModelInfo("tiny", "cnn", {}, 0.9, versions={"keras": "test"}), tmp_path)
    assert litert_path("tiny", tmp_path).exists()
    loaded = Classifier.load("tiny", tmp_path)
    assert loaded.name == "tiny"
    np.testing.assert_allclose(
        loaded.predict_proba(images[:10]), KerasClassifier(trained_cnn).predict_proba(images[:10]), atol=1e-5
    )
    assert [m.maps.shape for m in loaded.feature_maps(images[0])] == [(26, 26, 32), (11, 11, 64)]


def test_a_damaged_litert_file_is_a_broken_model(tmp_path, trained_cnn):
    from mnist_core.store import BrokenModelError, ModelInfo, litert_path, save_model

    save_model(trained_cnn, ModelInfo("dented", "cnn", {}, 0.9, versions={"keras": "test"}), tmp_path)
    litert_path("dented", tmp_path).write_bytes(b"\x00" * 64)
    with pytest.raises(BrokenModelError) as raised:
        Classifier.load("dented", tmp_path)
    assert "dented" in str(raised.value)
