"""mnist_core.architectures: every registered network builds and maps images to ten logits."""

import numpy as np
import pytest

from mnist_core.architectures import (
    ARCHITECTURES,
    UnknownArchitectureError,
    build_model,
    get_architecture,
    is_float32,
    layer_table,
    parameter_count,
    summary_text,
)


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def built(request):
    return request.param, build_model(request.param)


def test_each_architecture_maps_images_to_ten_logits(built):
    name, model = built
    images = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    logits = np.asarray(model(images, training=False))
    assert logits.shape == (3, 10) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
    assert model.name == name
    assert parameter_count(model) > 0


def test_parameter_counts_computed_by_hand():
    # cnn: conv 3x3x1x32 + 32 = 320 -> 26x26x32, pool -> 13x13x32, conv 3x3x32x64 + 64 = 18,496 -> 11x11x64,
    # pool -> 5x5x64 = 1600, dense 1600x64 + 64 = 102,464, dense 64x10 + 10 = 650: 121,930 in all.
    assert parameter_count(build_model("cnn")) == 320 + 18_496 + 102_464 + 650 == 121_930
    # cnn3 adds conv 3x3x64x64 + 64 = 36,928 on the 5x5x64 map -> 3x3x64 = 576, so dense 576x64 + 64 = 36,928.
    assert parameter_count(build_model("cnn3")) == 320 + 18_496 + 36_928 + 36_928 + 650 == 93_322
    # mlp: 784x128 + 128 = 100,480 and 128x10 + 10 = 1290.
    assert parameter_count(build_model("mlp")) == 100_480 + 1_290
    # lenet5: 5x5x1x6 + 6 = 156 (same padding, 28x28x6), pool 14x14x6, 5x5x6x16 + 16 = 2416 -> 10x10x16,
    # pool 5x5x16 = 400, 400x120 + 120 = 48,120, 120x84 + 84 = 10,164, 84x10 + 10 = 850.
    assert parameter_count(build_model("lenet5")) == 156 + 2_416 + 48_120 + 10_164 + 850


def test_summary_text_lists_the_layers():
    text = summary_text(build_model("cnn"))
    for layer in ("conv2d", "max_pooling2d", "flatten", "dense"):
        assert layer in text.lower()
    assert "121,930" in text or "121930" in text


def test_layer_table_has_one_row_per_layer():
    model = build_model("cnn")
    rows = layer_table(model)
    assert [row.kind for row in rows] == [
        "Reshape", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense",
    ]
    assert rows[1].output_shape == "(batch, 26, 26, 32)"
    assert rows[-1].output_shape == "(batch, 10)"
    assert sum(row.parameters for row in rows) == parameter_count(model)


def test_unknown_name_says_which_names_exist():
    with pytest.raises(UnknownArchitectureError) as raised:
        build_model("resnet9000")
    message = str(raised.value)
    assert "resnet9000" in message
    for name in ARCHITECTURES:
        assert name in message
    assert isinstance(raised.value, ValueError)


def test_every_entry_is_described():
    assert {"mlp", "cnn", "cnn3", "lenet5", "strong"} <= set(ARCHITECTURES)
    for name, architecture in ARCHITECTURES.items():
        assert architecture.name == name
        assert get_architecture(name) is architecture
        assert architecture.title.strip() and architecture.description.strip() and architecture.source.strip()


def test_each_build_is_a_fresh_model():
    first, second = build_model("mlp"), build_model("mlp")
    assert first is not second
    assert first.layers[1] is not second.layers[1]


@pytest.mark.parametrize("name", ["cnn", "strong"])
def test_bfloat16_models_compute_in_bfloat16_keep_float32_weights_and_copy_back_to_float32(name):
    model = build_model(name, "bfloat16")
    *hidden, output = model.layers
    assert {layer.compute_dtype for layer in hidden} == {"bfloat16"}
    assert output.compute_dtype == "float32"  # logits and the loss in float32
    assert {variable.dtype for variable in model.weights} == {"float32"}
    images = np.random.default_rng(1).random((4, 28, 28), dtype=np.float32)
    mixed = np.asarray(model(images, training=False))
    assert mixed.dtype == np.float32

    # What a mixed-precision model is saved as (training's float32 twin): the float32 build, holding its weights.
    copy = build_model(name, "float32")
    copy.set_weights(model.get_weights())
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    for ours, theirs in zip(copy.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    exact = np.asarray(copy(images, training=False))
    # bfloat16 keeps 8 bits of mantissa: the same logits to within a few hundredths.
    np.testing.assert_allclose(mixed, exact, atol=0.1, rtol=0.05)
    assert is_float32(copy) and not is_float32(model)


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16"):
        build_model("cnn", "float16")


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_recorded_summaries_match_the_built_models(name):
    """The pages show recorded summaries (no TensorFlow on the request path); they must be the real models' own."""
    from mnist_core.architectures import measure_summary, recorded_summary

    assert recorded_summary(name) == measure_summary(name), (
        f"the recorded summary of {name!r} is stale: run `python -m mnist_core architectures --write`")


def test_every_architecture_has_a_recorded_summary_and_an_unknown_name_is_refused():
    import json

    from mnist_core.architectures import SUMMARIES_PATH, recorded_summary

    assert set(json.loads(SUMMARIES_PATH.read_text(encoding="utf-8"))) == set(ARCHITECTURES)
    with pytest.raises(UnknownArchitectureError):
        recorded_summary("resnet-9000")
