"""mnist_core.data: the bundled MNIST is the real one, damage is reported with a fix, helpers behave."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from mnist_core import data
from mnist_core.constants import DATA_PATH, PROJECT_ROOT
from mnist_core.data import DatasetError

PYTHON = sys.executable  # the project venv's interpreter

OFFICIAL_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
OFFICIAL_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_shapes_and_dtypes(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    # 0 is background and 255 ink, as in Keras' copy: borders are almost always empty, every image has ink.
    assert x_train[:, 0, :].mean() < 0.1 and x_train[:, 14, 14].mean() > 50
    assert x_train.max() == 255 and (x_test.reshape(10000, -1).max(axis=1) > 100).all()


def test_it_is_the_official_mnist(mnist):
    (_, y_train), (_, y_test) = mnist
    assert data.class_counts(y_train).tolist() == OFFICIAL_TRAIN_COUNTS
    assert data.class_counts(y_test).tolist() == OFFICIAL_TEST_COUNTS
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_a_missing_file_says_how_to_restore_it(tmp_path):
    missing = tmp_path / "mnist.npz"
    with pytest.raises(DatasetError) as raised:
        data.load_mnist(missing)
    message = str(raised.value)
    assert "missing" in message and str(missing) in message
    assert "git checkout" in message


@pytest.mark.parametrize("position", [0, 5_000_000, -1])
def test_a_damaged_copy_is_refused_with_a_restore_hint(tmp_path, position):
    damaged = tmp_path / "mnist.npz"
    shutil.copyfile(DATA_PATH, damaged)
    content = bytearray(damaged.read_bytes())
    content[position] ^= 0x01  # one bit flipped
    damaged.write_bytes(bytes(content))
    with pytest.raises(DatasetError) as raised:
        data.load_mnist(damaged)
    message = str(raised.value)
    assert "damaged" in message and "sha256" in message
    assert "git checkout" in message


def test_check_mnist_gives_the_split_sizes_and_refuses_a_missing_or_damaged_file(tmp_path):
    assert data.check_mnist() == (60_000, 10_000)
    with pytest.raises(DatasetError, match="missing"):
        data.check_mnist(tmp_path / "mnist.npz")
    damaged = tmp_path / "damaged.npz"
    content = bytearray(DATA_PATH.read_bytes())
    content[5_000_000] ^= 0x01
    damaged.write_bytes(bytes(content))
    with pytest.raises(DatasetError, match="damaged"):
        data.check_mnist(damaged)


def test_a_file_damaged_after_a_good_load_is_checked_again(tmp_path):
    copy = tmp_path / "mnist.npz"
    shutil.copyfile(DATA_PATH, copy)
    (_, y_train), _ = data.load_mnist(copy)
    assert len(y_train) == 60000
    content = bytearray(copy.read_bytes())
    content[1000] ^= 0xFF
    copy.write_bytes(bytes(content))
    with pytest.raises(DatasetError):
        data.load_mnist(copy)


@pytest.mark.parametrize("module", ["mnist_core.data", "mnist_core.plots"])
def test_importing_does_not_import_tensorflow(module):
    # A fresh interpreter: the Dataset page must start without paying for TensorFlow.
    code = (
        f"import sys, {module}\n"
        f"from mnist_core.data import load_mnist\n"
        "load_mnist()\n"
        "heavy = sorted(name for name in sys.modules if name.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print(heavy[:5])\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    completed = subprocess.run([PYTHON, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, f"{module} imported {completed.stdout.strip()} {completed.stderr[-500:]}"


def test_indices_of_selects_the_asked_digits():
    labels = np.array([3, 1, 3, 7, 0, 1])
    assert data.indices_of(labels, [3]).tolist() == [0, 2]
    assert data.indices_of(labels, (1, 7)).tolist() == [1, 3, 5]
    assert data.indices_of(labels, []).tolist() == list(range(6))
    assert data.indices_of(labels, None).tolist() == list(range(6))
    assert data.indices_of(labels, [9]).tolist() == []


def test_page_of_slices_and_clamps():
    indices = np.arange(25)
    assert data.page_of(indices, 0, 10).tolist() == list(range(10))
    assert data.page_of(indices, 2, 10).tolist() == [20, 21, 22, 23, 24]
    assert data.page_of(indices, 99, 10).tolist() == [20, 21, 22, 23, 24]  # past the end: last page
    assert data.page_of(indices, -3, 10).tolist() == list(range(10))
    assert data.page_of(np.arange(0), 0, 10).tolist() == []
    assert data.page_count(25, 10) == 3 and data.page_count(0, 10) == 1
    with pytest.raises(ValueError):
        data.page_of(indices, 0, 0)


def test_random_sample_is_distinct_sorted_and_repeatable(mnist):
    (_, y_train), _ = mnist
    sevens = data.indices_of(y_train, [7])
    sample = data.random_sample(sevens, 50, seed=1)
    assert len(sample) == 50 and len(set(sample.tolist())) == 50
    assert (np.diff(sample) > 0).all()
    assert (y_train[sample] == 7).all()
    assert data.random_sample(sevens, 50, seed=1).tolist() == sample.tolist()
    assert data.random_sample(sevens, 50, seed=2).tolist() != sample.tolist()
    assert sorted(data.random_sample(np.array([4, 8, 15]), 10, seed=0).tolist()) == [4, 8, 15]


def test_mean_images_are_the_class_averages(mnist):
    (x_train, y_train), _ = mnist
    images, labels = x_train[:3000], y_train[:3000]
    means = data.mean_images(images, labels)
    assert means.shape == (10, 28, 28) and means.dtype == np.float32
    assert 0 <= means.min() and means.max() <= 255
    np.testing.assert_allclose(means[3], images[labels == 3].mean(axis=0), rtol=1e-5, atol=1e-3)
    # The mean zero has a hole in the middle; the mean one is ink in the middle.
    assert means[0][14, 14] < means[0][14, 8]
    assert means[1][14, 14] > 100


def test_mean_images_of_a_missing_digit_is_blank():
    images = np.full((2, 28, 28), 200, dtype=np.uint8)
    means = data.mean_images(images, np.array([4, 4]))
    assert means[4].min() == 200 and means[5].max() == 0


def test_class_counts_has_ten_entries_even_for_few_labels():
    assert data.class_counts(np.array([2, 2, 9], dtype=np.uint8)).tolist() == [0, 0, 2, 0, 0, 0, 0, 0, 0, 1]


def test_subset_is_repeatable_and_keeps_pairs(mnist):
    (x_train, y_train), _ = mnist
    x_small, y_small = data.subset(x_train, y_train, 300, seed=4)
    assert x_small.shape == (300, 28, 28) and y_small.shape == (300,)
    x_again, _ = data.subset(x_train, y_train, 300, seed=4)
    np.testing.assert_array_equal(x_small, x_again)
    # Each image still carries its own label.
    first = int(np.flatnonzero((x_train == x_small[0]).all(axis=(1, 2)))[0])
    assert y_train[first] == y_small[0]
    assert data.subset(x_train, y_train, None)[0] is x_train


def test_a_grid_pick_is_a_position_among_the_tiles_and_the_time_of_the_click():
    assert data.checked_pick(None, 50) is None
    assert data.checked_pick({"position": 0, "at": 1700000000000}, 50) == (0, 1700000000000.0)
    assert data.checked_pick({"position": 49, "at": 2.5}, 50) == (49, 2.5)


@pytest.mark.parametrize("value", [
    {"position": 50, "at": 1}, {"position": -1, "at": 1}, {"position": 1.0, "at": 1}, {"position": False, "at": 1},
    {"position": 1, "at": float("nan")}, {"position": 1, "at": True}, {"position": 1}, {"at": 1}, 3, "3", [3],
])
def test_anything_else_a_browser_sends_as_a_grid_pick_is_refused_with_a_sentence(value):
    with pytest.raises(ValueError, match="The grid sent a pick that is not one of its 50 images."):
        data.checked_pick(value, 50)
