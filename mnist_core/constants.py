"""Numbers and paths that the whole project shares, defined once."""

import os
from pathlib import Path

IMAGE_SIZE = 28  # MNIST images are 28x28 pixels
MNIST_BOX = 20  # MNIST fits each digit's longer side into a 20x20 box before centring it in 28x28
CANVAS_SIZE = 280  # the Draw page's canvas, ten screen pixels per MNIST pixel
NUM_CLASSES = 10
CLASS_NAMES = tuple(str(digit) for digit in range(NUM_CLASSES))

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_PATH = PROJECT_ROOT / "data" / "mnist.npz"
# Tests point the app at a scratch store with MNIST_LAB_MODELS_DIR so they never touch the shipped models.
MODELS_DIR = Path(os.environ.get("MNIST_LAB_MODELS_DIR", PROJECT_ROOT / "models"))


def models_dir() -> Path:
    """The model store the app uses, read from the environment at call time (tests change it)."""
    return Path(os.environ.get("MNIST_LAB_MODELS_DIR", PROJECT_ROOT / "models"))


def data_dir() -> Path:
    """Where the app keeps what visitors make besides models (their collections of drawings), read from the
    environment at call time: MNIST_LAB_DATA_DIR, else userdata/ beside the code (git-ignored)."""
    return Path(os.environ.get("MNIST_LAB_DATA_DIR", PROJECT_ROOT / "userdata"))

# sha256 of the bundled MNIST (see data/README.md for its provenance)
MNIST_SHA256 = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"
