"""mnist_core.explainer: saliency maps and augmentation previews from a worker process, cached, never blocking the
caller, the freshest request first; a worker that dies fails its request with a message, an idle one exits."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_core.explainer import AugmentationPreview, Explainer, Failed, Pending, image_key, preview_indices
from mnist_core.saliency import Explanation
from mnist_core.training import flagged_ones

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 180  # a worker imports TensorFlow first: seconds on a loaded machine


@pytest.fixture
def store(tmp_path) -> Path:
    for suffix in (".keras", ".json", ".tflite"):
        shutil.copy2(ROOT / "models" / f"cnn{suffix}", tmp_path / f"cnn{suffix}")
    return tmp_path


@pytest.fixture(scope="module")
def explainer():
    """One worker for the tests that need a real one (each store is a folder of its own, so they do not mix)."""
    service = Explainer()
    yield service
    service.shutdown()


def wait_for(condition, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def test_an_explanation_comes_from_the_worker_and_is_kept(explainer, store, test_images):
    images, labels = test_images
    first = explainer.explanation("cnn", store, images[0])
    assert isinstance(first, Pending)  # the caller never waits: the page polls
    explanation = explainer.explanation("cnn", store, images[0], wait=WAIT_S)
    assert isinstance(explanation, Explanation), explanation
    assert int(explanation.probabilities.argmax()) == labels[0]
    assert explanation.integrated_gradients.shape == explanation.grad_cam.shape == (10, 28, 28)
    assert explanation.grad_cam_layer == "conv2d_1"
    # Asked again (the page's next run): the same answer from the cache, at once.
    assert explainer.explanation("cnn", store, images[0]) is explanation
    assert explainer.worker_pid() not in (None, os.getpid())  # computed in a process of its own


def test_a_new_file_under_the_same_name_is_explained_again(explainer, store, test_images):
    images, _ = test_images
    before = explainer.explanation("cnn", store, images[1], wait=WAIT_S)
    assert isinstance(before, Explanation)
    keras_file = store / "cnn.keras"
    keras_file.write_bytes(keras_file.read_bytes())  # a new file (another identity), same model
    assert isinstance(explainer.explanation("cnn", store, images[1]), Pending)


def test_unknown_models_and_bad_names_are_messages_at_once(explainer, store):
    image = np.zeros((28, 28), np.float32)
    missing = explainer.explanation("no-such-model", store, image)
    assert isinstance(missing, Failed) and "no-such-model" in str(missing.message)
    bad = explainer.explanation("../cnn", store, image)
    assert isinstance(bad, Failed) and "not a valid model name" in str(bad.message)
    with pytest.raises(ValueError):
        explainer.explanation("cnn", store, np.zeros((28, 27), np.float32))


def test_a_damaged_model_file_fails_with_the_stores_message(explainer, store, test_images):
    images, _ = test_images
    (store / "cnn.keras").write_bytes(b"not a zip")
    result = explainer.explanation("cnn", store, images[0], wait=WAIT_S)
    assert isinstance(result, Failed) and "could not be loaded" in str(result.message)


def test_the_augmentation_preview_distorts_the_preview_digits_with_the_trainers_transformation(explainer, mnist):
    preview = explainer.augmentation(seed=1, wait=WAIT_S)
    assert isinstance(preview, AugmentationPreview), preview
    (x_train, y_train), _ = mnist
    chosen = preview_indices(x_train, y_train)
    np.testing.assert_array_equal(preview.labels, np.arange(10))
    np.testing.assert_allclose(preview.originals, x_train[chosen] / 255.0, atol=1e-6)
    assert preview.distorted.shape == (3, 10, 28, 28)
    assert np.all(np.isfinite(preview.distorted)) and preview.distorted.min() >= 0 and preview.distorted.max() <= 1.0
    assert not np.allclose(preview.distorted[0], preview.originals)  # something happened to them...
    assert not np.allclose(preview.distorted[0], preview.distorted[1])  # ...each time its own way
    assert explainer.augmentation(seed=1) is preview  # kept
    again = explainer.augmentation(seed=2, wait=WAIT_S)  # "Distort again"
    assert not np.allclose(again.distorted, preview.distorted)


def test_the_preview_shows_a_one_written_with_a_flag(mnist):
    (x_train, y_train), _ = mnist
    chosen = preview_indices(x_train, y_train)
    assert [int(y_train[index]) for index in chosen] == list(range(10))
    assert chosen[1] in set(flagged_ones(x_train, y_train).tolist())


def test_an_idle_worker_exits_and_the_next_request_starts_another(store, test_images):
    images, _ = test_images
    service = Explainer(idle_seconds=0.5)
    try:
        assert isinstance(service.explanation("cnn", store, images[2], wait=WAIT_S), Explanation)
        wait_for(lambda: service.worker_pid() is None, "the idle worker to exit")
        assert isinstance(service.explanation("cnn", store, images[3], wait=WAIT_S), Explanation)
        assert service.workers_started == 2
    finally:
        service.shutdown()


# --- the worker's life, with stand-in workers (no TensorFlow) --------------------------------------------------


def silent_worker(connection, threads, models_kept):
    """A worker that says it is ready, then takes requests and never answers (until it is killed)."""
    connection.send(("ready",))
    while True:
        connection.recv()


def test_a_worker_that_dies_fails_its_request_with_a_message_and_the_next_gets_a_new_worker(store):
    service = Explainer(worker_target=silent_worker)
    try:
        image = np.ones((28, 28), np.float32)
        assert isinstance(service.explanation("cnn", store, image), Pending)
        pid = service.worker_pid()
        os.kill(pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
        result = service.explanation("cnn", store, image, wait=60)
        assert isinstance(result, Failed) and "ended unexpectedly" in str(result.message)
        assert isinstance(service.explanation("cnn", store, image * 0.5), Pending)
        wait_for(lambda: service.worker_pid() not in (None, pid), "a new worker")
        assert service.workers_started == 2
    finally:
        service.shutdown()


def broken_worker(connection, threads, models_kept):
    connection.send(("broken", "The explainer could not start (ImportError: no TensorFlow here)."))
    connection.close()


def test_a_worker_that_cannot_start_says_why(store):
    service = Explainer(worker_target=broken_worker)
    try:
        result = service.explanation("cnn", store, np.ones((28, 28), np.float32), wait=60)
        assert result == Failed("The explainer could not start (ImportError: no TensorFlow here).")
    finally:
        service.shutdown()


class FakeConnection:
    def __init__(self):
        self.sent = []

    def send(self, message):
        self.sent.append(message)


class FakeProcess:
    pid = 12345

    def is_alive(self):
        return True


def test_the_freshest_request_goes_first_and_forgotten_ones_are_dropped(store, monkeypatch):
    """While the worker is busy, requests queue; it then gets the one asked about most recently, and a request
    nobody asked about for FORGET_SECONDS is dropped (a person who drew on does not want it any more)."""
    from mnist_core import explainer as module

    now = [1000.0]
    service = Explainer(forget_seconds=10.0, clock=lambda: now[0])
    connection = FakeConnection()
    worker = module._Worker(FakeProcess(), connection, ready=True)
    monkeypatch.setattr(service, "_spawn", lambda: setattr(service, "_worker", worker))
    monkeypatch.setattr(service, "_start_idle_timer", lambda: None)

    def drawing(value):
        return np.full((28, 28), value, np.float32)

    service.explanation("cnn", store, drawing(0.1))  # sent at once: the worker is free
    now[0] += 1
    service.explanation("cnn", store, drawing(0.2))  # queued behind it
    now[0] += 1
    service.explanation("cnn", store, drawing(0.3))  # queued, fresher
    assert [message[1][-1] for message in connection.sent] == [image_key(drawing(0.1))]

    first = connection.sent[0][1]
    service._handle(worker, ("result", first, "maps of 0.1"))
    assert connection.sent[-1][1][-1] == image_key(drawing(0.3))  # the freshest, not the oldest
    assert service.explanation("cnn", store, drawing(0.1)) == "maps of 0.1"

    now[0] += 30  # nobody asks about 0.2 any more
    service._handle(worker, ("failed", connection.sent[-1][1], "no"))
    assert len(connection.sent) == 2  # 0.2 was forgotten, not computed
    assert service.explanation("cnn", store, drawing(0.3)) == Failed("no")
