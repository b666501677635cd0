"""Shared fixtures: MNIST loaded once, small subsets for quick training, and small trained models."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from mnist_core.constants import PROJECT_ROOT


@pytest.fixture(autouse=True)
def scratch_data_dir(tmp_path_factory, monkeypatch):
    """Every test keeps collections of drawings (mnist_core.handwriting) in a folder of its own, never userdata/."""
    folder = tmp_path_factory.mktemp("userdata")
    monkeypatch.setenv("MNIST_LAB_DATA_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def mnist():
    """The whole bundled MNIST, checked and loaded once per session."""
    from mnist_core.data import load_mnist

    return load_mnist()


@pytest.fixture(scope="session")
def small_mnist(mnist):
    """2000 training and 500 test images, in the shape `train(mnist=...)` takes, so training stays quick."""
    (x_train, y_train), (x_test, y_test) = mnist
    return (x_train[:2000], y_train[:2000]), (x_test[:500], y_test[:500])


@pytest.fixture(scope="session")
def trained_cnn(small_mnist):
    """The seed CNN after one epoch on 2000 images: good enough to classify most digits."""
    from mnist_core.training import TrainConfig, train

    config = TrainConfig(architecture="cnn", epochs=1, batch_size=32, learning_rate=2e-3, train_size=2000)
    return train(config, mnist=small_mnist).model


@pytest.fixture(scope="session")
def test_images(mnist):
    """The first 2000 test images as float32 in [0, 1] with their labels."""
    (_, _), (x_test, y_test) = mnist
    return x_test[:2000].astype(np.float32) / 255.0, y_test[:2000].astype(np.int64)


@pytest.fixture
def subprocess_env(tmp_path):
    """Environment for running the project's CLIs: quiet TensorFlow, and a scratch model store."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["MNIST_LAB_MODELS_DIR"] = str(tmp_path / "models")
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


HOLD_AFTER_BATCHES = 3
HOLD_TIMEOUT_S = 120  # only reached when a test forgets to stop the held run


@pytest.fixture
def hold_training(monkeypatch):
    """Make run_job's training (in this process) of the configs in the returned set pause after their third batch
    until stopped.

    A run that cannot end by itself, however fast this machine trains: tests of stopping, busy registries and
    the like must not count on a job being slow enough to still run when they act (issue 16). Everything else
    about the run is real: the pause sits in the progress callback, which is where a Stop is noticed.
    """
    import mnist_core.jobs.work as jobs
    from mnist_core.training import BatchEvent

    held = set()
    real_train = jobs.train

    def train_until_stopped(config, on_event=None, stop_event=None, mnist=None, **options):
        def report_then_hold(event):
            if on_event is not None:
                on_event(event)
            if config in held and isinstance(event, BatchEvent) and (event.epoch, event.step) == (1, HOLD_AFTER_BATCHES):
                if not stop_event.wait(HOLD_TIMEOUT_S):
                    raise AssertionError(f"a held training was not stopped within {HOLD_TIMEOUT_S} s")

        return real_train(config, on_event=report_then_hold, stop_event=stop_event, mnist=mnist, **options)

    monkeypatch.setattr(jobs, "train", train_until_stopped)
    return held
