"""mnist_core.filters: the first convolution's kernels read from a .keras file without TensorFlow are the very
weights Keras loads, for a Sequential model, a nested functional one, and none for a model without convolutions."""

import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnist_core.filters import FiltersError, first_layer_filters, shown_layer_name
from mnist_core.store import ModelNotFound, load_model

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_models_first_kernels_are_keras_own_weights():
    for name in ("cnn", "strong-cnn"):
        filters = first_layer_filters(name)
        model = load_model(name)
        kernel = model.get_layer(filters.layer_name).get_weights()[0]
        assert filters.layer_name == "conv2d" and filters.input_channels == 1
        np.testing.assert_array_equal(filters.kernels, kernel[:, :, 0, :])
        assert filters.kernels.shape == (3, 3, 32)


def test_a_model_without_convolutions_has_no_filters(tmp_path):
    from mnist_core.architectures import build_model

    build_model("mlp").save(tmp_path / "flat.keras")
    assert first_layer_filters("flat", tmp_path) is None


def test_the_first_convolution_inside_a_nested_functional_model_is_found(tmp_path):
    import keras

    inner_input = keras.Input((28, 28, 1))
    features = keras.layers.Conv2D(6, 5, name="edges")(inner_input)
    inner = keras.Model(inner_input, keras.layers.Dense(10)(keras.layers.Flatten()(features)), name="inner")
    outer_input = keras.Input((28, 28), name="image")
    model = keras.Model(outer_input, inner(keras.layers.Reshape((28, 28, 1))(outer_input)), name="outer")
    model.save(tmp_path / "nested.keras")
    filters = first_layer_filters("nested", tmp_path)
    assert filters.layer_name == "edges" and filters.kernels.shape == (5, 5, 6)
    np.testing.assert_array_equal(filters.kernels, inner.get_layer("edges").get_weights()[0][:, :, 0, :])


def test_named_convolutions_are_found_where_keras_put_them(tmp_path):
    """Keras files weights by class ("conv2d", "conv2d_1"), not by the names a person gave the layers."""
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, name="second_in_name_order"),
                              keras.layers.Conv2D(2, 3, name="a_later_one"), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    model.save(tmp_path / "named.keras")
    filters = first_layer_filters("named", tmp_path)
    assert filters.layer_name == "second_in_name_order" and filters.kernels.shape == (3, 3, 4)
    np.testing.assert_array_equal(filters.kernels, model.layers[0].get_weights()[0][:, :, 0, :])


def test_damaged_and_missing_files_are_messages(tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"not a zip at all")
    with pytest.raises(FiltersError, match="not a readable Keras model"):
        first_layer_filters("junk", tmp_path)
    shutil.copy2(ROOT / "models" / "cnn.keras", tmp_path / "gutted.keras")
    with zipfile.ZipFile(ROOT / "models" / "cnn.keras") as source, \
            zipfile.ZipFile(tmp_path / "gutted.keras", "w") as target:
        target.writestr("config.json", source.read("config.json"))  # no weights file
    with pytest.raises(FiltersError, match="no model.weights.h5"):
        first_layer_filters("gutted", tmp_path)
    with pytest.raises(ModelNotFound):
        first_layer_filters("absent", tmp_path)


def test_reading_filters_imports_neither_tensorflow_nor_keras():
    script = textwrap.dedent("""
        import sys
        from mnist_core.filters import first_layer_filters
        filters = first_layer_filters("cnn")
        print(filters.kernels.shape, "tensorflow" in sys.modules, "keras" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "(3, 3, 32) False False", result.stderr


def test_layer_names_that_are_not_plain_are_not_printed():
    assert shown_layer_name("conv2d_1") == "conv2d_1"
    for hostile in ('<a href="https://example.com">x</a>', "**bold**", "", None, "x" * 65):
        assert shown_layer_name(hostile) == "its convolution"
