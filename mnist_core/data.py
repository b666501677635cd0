"""The bundled MNIST: loading with a checksum check, samples, and class statistics.

Imports numpy only (never TensorFlow), so the Dataset page and the tests start fast.
"""

from __future__ import annotations

import hashlib
import math
import threading
from pathlib import Path

import numpy as np

from mnist_core.constants import DATA_PATH, IMAGE_SIZE, MNIST_SHA256, NUM_CLASSES
from mnist_core.i18n import M_

_EXPECTED_KEYS = ("x_train", "y_train", "x_test", "y_test")
_RESTORE_HINT = M_("Restore it with `git checkout -- data/mnist.npz` (or copy shared/data/mnist.npz, sha256 "
                   "{sha}..., to data/mnist.npz).", sha=MNIST_SHA256[:12])

# Paths whose checksum has been verified in this process, keyed by (path, size, mtime) so an edited file is checked again.
_verified: set[tuple[str, int, int]] = set()
_verified_lock = threading.Lock()


class DatasetError(RuntimeError):
    """The MNIST file is missing or damaged; the message says what is wrong and how to restore it."""


Split = tuple[np.ndarray, np.ndarray]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_checksum(path: Path, expected_sha256: str) -> None:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        if key in _verified:
            return
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise DatasetError(M_("The MNIST file {path} is damaged: its sha256 is {actual}..., expected {expected}.... "
                              "{hint}", path=str(path), actual=actual[:12], expected=expected_sha256[:12],
                              hint=_RESTORE_HINT))
    with _verified_lock:
        _verified.add(key)


def load_mnist(path: Path | str = DATA_PATH, expected_sha256: str = MNIST_SHA256) -> tuple[Split, Split]:
    """Return ((x_train, y_train), (x_test, y_test)) as uint8 arrays, like keras.datasets.mnist.load_data().

    Images are (n, 28, 28) with 0 = background and 255 = ink; labels are (n,) digits 0-9.
    The sha256 is checked once per process (and again if the file changes); a missing or damaged file
    raises DatasetError.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(M_("The MNIST file {path} is missing. {hint}", path=str(path), hint=_RESTORE_HINT))
    _verify_checksum(path, expected_sha256)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in _EXPECTED_KEYS}
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(M_("The MNIST file {path} could not be read ({error}). {hint}", path=str(path),
                              error=str(error), hint=_RESTORE_HINT)) from error
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def load_test_split(path: Path | str = DATA_PATH, expected_sha256: str = MNIST_SHA256) -> Split:
    """(x_test, y_test) alone, as load_mnist gives them: only the 10,000 test images are decompressed (8 MB, not the
    55 MB of both splits), for a page that needs a few test digits. Raises DatasetError like load_mnist."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(M_("The MNIST file {path} is missing. {hint}", path=str(path), hint=_RESTORE_HINT))
    _verify_checksum(path, expected_sha256)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return archive["x_test"], archive["y_test"]
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(M_("The MNIST file {path} could not be read ({error}). {hint}", path=str(path),
                              error=str(error), hint=_RESTORE_HINT)) from error


def check_mnist(path: Path | str = DATA_PATH, expected_sha256: str = MNIST_SHA256) -> tuple[int, int]:
    """Check the MNIST file (present, checksum right) and return (training images, test images), reading only the
    labels: a page that shows the dataset's figures need not decompress 55 MB of pixels. Raises DatasetError."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(M_("The MNIST file {path} is missing. {hint}", path=str(path), hint=_RESTORE_HINT))
    _verify_checksum(path, expected_sha256)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return len(archive["y_train"]), len(archive["y_test"])
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(M_("The MNIST file {path} could not be read ({error}). {hint}", path=str(path),
                              error=str(error), hint=_RESTORE_HINT)) from error


def class_counts(labels: np.ndarray) -> np.ndarray:
    """How many images of each digit: (10,) int64."""
    return np.bincount(labels.astype(np.int64), minlength=NUM_CLASSES)


def mean_images(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The average image of each digit: (10, 28, 28) float32 in [0, 255]."""
    means = np.zeros((NUM_CLASSES, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for digit in range(NUM_CLASSES):
        members = images[labels == digit]
        if len(members):
            means[digit] = members.mean(axis=0, dtype=np.float64)
    return means


def indices_of(labels: np.ndarray, digits: list[int] | tuple[int, ...] | None = None) -> np.ndarray:
    """Indices of the images whose label is in `digits` (all images when `digits` is empty or None)."""
    if not digits:
        return np.arange(len(labels))
    return np.flatnonzero(np.isin(labels, np.asarray(digits)))


def page_of(indices: np.ndarray, page: int, per_page: int) -> np.ndarray:
    """The `page`-th (0-based) slice of `per_page` indices; pages past the end are clamped to the last one."""
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    pages = page_count(len(indices), per_page)
    page = min(max(page, 0), pages - 1)
    return indices[page * per_page : (page + 1) * per_page]


def checked_pick(value, count: int) -> tuple[int, float] | None:
    """A pick in a grid of `count` tiles as a browser sent it, {"position": int in [0, count), "at": its time in
    ms}: returns (position, at), or None for nothing picked yet. Raises ValueError (a person's sentence) for anything
    the grid could not have sent."""
    if value is None:
        return None
    position = value.get("position") if isinstance(value, dict) else None
    at = value.get("at") if isinstance(value, dict) else None
    if (isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < count
            or isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at)):
        raise ValueError(M_("The grid sent a pick that is not one of its {count} images.", count=count))
    return position, float(at)


def page_count(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def random_sample(indices: np.ndarray, count: int, seed: int | None = None) -> np.ndarray:
    """`count` distinct indices drawn at random from `indices`, in sorted order."""
    rng = np.random.default_rng(seed)
    count = min(count, len(indices))
    return np.sort(rng.choice(indices, size=count, replace=False))


def subset(images: np.ndarray, labels: np.ndarray, size: int | None, seed: int = 0) -> Split:
    """A stratified-by-chance random subset of `size` examples (all of them when size is None or too big)."""
    if size is None or size >= len(labels):
        return images, labels
    chosen = np.random.default_rng(seed).permutation(len(labels))[:size]
    return images[chosen], labels[chosen]
