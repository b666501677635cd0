"""mnist_core.saliency: integrated gradients and Grad-CAM have the input's shape, are finite, obey integrated
gradients' completeness, and on a model that only looks at one region of the image, light up that region."""

import numpy as np
import pytest

from mnist_core.architectures import build_model
from mnist_core.saliency import METHODS, Explanation, ModelSaliency, checked_image, explain, grad_cam, integrated_gradients

REGION = (slice(4, 12), slice(16, 24))  # 8 x 8 pixels in the top right quarter
FAVOURED_DIGIT = 3  # the digit whose weights on the region are all positive


@pytest.fixture(scope="module")
def region_model():
    """A Sequential model that only sees REGION: a Dense layer that copies those 64 pixels and zeroes the rest
    (diagonal weights), then a convolution (Grad-CAM's layer) and a Dense head. Digit 3's head weights are positive,
    so every pixel in the region argues for a 3."""
    import keras

    mask = np.zeros((28, 28), np.float32)
    mask[REGION] = 1.0
    rng = np.random.default_rng(0)
    model = keras.Sequential([
        keras.Input((28, 28), name="image"),
        keras.layers.Flatten(),
        keras.layers.Dense(784, use_bias=False, name="region_only"),
        keras.layers.Reshape((28, 28, 1)),
        keras.layers.Conv2D(4, 1, activation="relu", name="conv2d"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, name="head"),
    ])
    model.get_layer("region_only").set_weights([np.diag(mask.ravel())])
    model.get_layer("conv2d").set_weights([np.abs(rng.normal(size=(1, 1, 1, 4))).astype(np.float32) + 0.1,
                                           np.zeros(4, np.float32)])
    head = rng.normal(size=(28 * 28 * 4, 10)).astype(np.float32)
    head[:, FAVOURED_DIGIT] = np.abs(head[:, FAVOURED_DIGIT]) + 0.1
    model.get_layer("head").set_weights([head, np.zeros(10, np.float32)])
    return model


@pytest.fixture(scope="module")
def ink_everywhere():
    """Random ink over the whole image, so a map that lit up outside REGION would show it."""
    return np.random.default_rng(1).uniform(0.2, 1.0, (28, 28)).astype(np.float32)


def share_inside_region(saliency_map: np.ndarray) -> float:
    magnitude = np.abs(saliency_map)
    return float(magnitude[REGION].sum() / magnitude.sum())


def test_integrated_gradients_light_up_only_the_region_the_model_looks_at(region_model, ink_everywhere):
    maps = integrated_gradients(region_model, ink_everywhere)
    assert maps.shape == (10, 28, 28) and maps.dtype == np.float32 and np.all(np.isfinite(maps))
    outside = np.ones((28, 28), bool)
    outside[REGION] = False
    assert np.abs(maps[:, outside]).max() == 0.0  # the model cannot see those pixels: nothing comes from them
    for digit in range(10):
        assert share_inside_region(maps[digit]) == pytest.approx(1.0)
    assert (maps[FAVOURED_DIGIT][REGION] > 0).all()  # every pixel there argues for the favoured digit


def test_grad_cam_lights_up_the_region_the_model_looks_at(region_model, ink_everywhere):
    maps = grad_cam(region_model, ink_everywhere)
    assert maps.shape == (10, 28, 28) and np.all(np.isfinite(maps))
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    favoured = maps[FAVOURED_DIGIT]
    assert favoured.max() == pytest.approx(1.0)
    # Bilinear enlargement of a 28 x 28 grid to 28 x 28 is the identity: the map is exactly where the model looks.
    assert share_inside_region(favoured) > 0.99


def test_integrated_gradients_add_up_to_the_logit_difference_on_the_shipped_cnn(test_images):
    """Completeness: the attributions of a digit sum to its logit for the image minus its logit for a blank one."""
    from mnist_core.store import load_model

    model = load_model("cnn")
    images, _ = test_images
    for image in images[:3]:
        maps = integrated_gradients(model, image)
        logits = model(np.stack([image, np.zeros_like(image)]), training=False).numpy()
        difference = logits[0] - logits[1]
        np.testing.assert_allclose(maps.sum(axis=(1, 2)), difference, atol=0.02 * np.abs(difference).max())


def test_an_explanation_of_a_test_digit_by_the_shipped_cnn(test_images):
    from mnist_core.store import load_model

    model = load_model("cnn")
    images, labels = test_images
    image, label = images[0], int(labels[0])
    explanation = explain(model, image)
    assert isinstance(explanation, Explanation)
    assert int(explanation.probabilities.argmax()) == label
    assert explanation.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert explanation.grad_cam_layer == "conv2d_1"  # the seed CNN's last convolution
    for method in METHODS:
        maps = getattr(explanation, method)
        assert maps.shape == (10, 28, 28) and np.all(np.isfinite(maps))
    # The map for the answer: its ink argues for the answer overall; the picked digit's map is that digit's own.
    answer = explanation.map_for("integrated_gradients", label)
    assert answer.sum() > 0
    assert explanation.map_for("grad_cam", label).max() == pytest.approx(1.0)
    other = (label + 1) % 10
    assert not np.allclose(explanation.map_for("integrated_gradients", other), answer)
    np.testing.assert_array_equal(explanation.map_for("grad_cam", other), explanation.grad_cam[other])
    with pytest.raises(ValueError, match="method"):
        explanation.map_for("occlusion", label)
    with pytest.raises(ValueError, match="digit"):
        explanation.map_for("grad_cam", 10)


def test_a_model_without_convolutions_gets_integrated_gradients_only():
    mlp = build_model("mlp")
    explanation = ModelSaliency(mlp).explain(np.random.default_rng(2).uniform(0, 1, (28, 28)).astype(np.float32))
    assert explanation.grad_cam is None and explanation.grad_cam_layer is None
    assert explanation.map_for("grad_cam", 4) is None
    assert explanation.integrated_gradients.shape == (10, 28, 28)
    assert np.all(np.isfinite(explanation.integrated_gradients))


def test_grad_cam_of_the_strong_cnn_uses_its_last_convolution_after_batch_norm_and_relu():
    strong = build_model("strong")
    saliency = ModelSaliency(strong)
    assert saliency.layer_name == "conv2d_4"
    maps = saliency.grad_cam(np.random.default_rng(3).uniform(0, 1, (28, 28)).astype(np.float32))
    assert maps.shape == (10, 28, 28) and np.all(np.isfinite(maps)) and maps.min() >= 0


def test_a_blank_image_gives_all_zero_integrated_gradients():
    maps = integrated_gradients(build_model("cnn"), np.zeros((28, 28), np.float32))
    assert np.all(maps == 0)


@pytest.mark.parametrize("bad", [np.zeros((28, 27)), np.full((28, 28), np.nan), np.zeros((1, 28, 28))])
def test_anything_but_one_finite_28x28_image_is_refused(bad):
    with pytest.raises(ValueError):
        checked_image(bad)


def test_uint8_pixels_are_scaled_like_training():
    image = np.full((28, 28), 255, np.uint8)
    assert checked_image(image).max() == 1.0
