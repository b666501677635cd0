"""mnist_core.finetune: the held-out split, the checks, and a real fine-tune of the shipped cnn on a tiny collection
(through the queue as a "finetune" job, and through `python -m mnist_core finetune`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from mnist_core.constants import PROJECT_ROOT
from mnist_core.finetune import (
    MIN_DRAWINGS,
    FinetuneError,
    Record,
    check_drawings,
    finetune_config,
    finetune_extra,
    held_out_split,
    repeats_for,
)

TIMEOUT = 300


def test_the_held_out_part_has_some_of_each_digit_drawn_twice_and_never_all_of_one():
    labels = np.array([0] * 8 + [1] * 4 + [2] * 2 + [3] * 1 + [7] * 5)
    split = held_out_split(labels, seed=0)
    assert sorted([*split.train, *split.held_out]) == list(range(len(labels)))
    assert not set(split.train) & set(split.held_out)
    held = np.bincount(labels[split.held_out], minlength=10)
    trained = np.bincount(labels[split.train], minlength=10)
    assert held.tolist() == [2, 1, 1, 0, 0, 0, 0, 1, 0, 0]  # a quarter, rounded, at least one of each pair
    assert trained[3] == 1 and all(trained[digit] >= 1 for digit in (0, 1, 2, 3, 7))
    assert np.array_equal(held_out_split(labels, seed=0).held_out, split.held_out)  # the same split every time
    assert any(not np.array_equal(held_out_split(labels, seed=seed).held_out, split.held_out) for seed in range(1, 5))


def test_too_few_drawings_or_nothing_to_hold_out_is_said_before_any_training():
    images = np.zeros((MIN_DRAWINGS, 28, 28), np.uint8)
    with pytest.raises(FinetuneError, match=f"at least {MIN_DRAWINGS} drawings; this collection has 9"):
        check_drawings(images[:9], np.arange(9, dtype=np.uint8))
    with pytest.raises(FinetuneError, match="Draw some digit at least twice"):
        check_drawings(images, np.arange(10, dtype=np.uint8))
    with pytest.raises(FinetuneError, match="Only models of this app's architectures"):
        finetune_config("uploaded")


def test_the_drawings_are_repeated_to_a_fifth_of_an_epoch_within_bounds():
    assert repeats_for(30, 10_000) == 84  # 2,520 of 12,520 images
    assert repeats_for(2000, 2000) == 1
    assert repeats_for(1, 40_000) == 400  # one drawing is never ten thousand images


@pytest.fixture
def models_dir(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for suffix in (".keras", ".json"):
        shutil.copy2(PROJECT_ROOT / "models" / f"cnn{suffix}", folder)
    return folder


def tiny_collection(mnist) -> tuple[np.ndarray, np.ndarray]:
    """20 test digits, standing in for one person's drawings."""
    (_, _), (x_test, y_test) = mnist
    return x_test[100:120].copy(), y_test[100:120].copy()


def test_a_finetune_job_on_a_tiny_collection_saves_a_model_with_its_record(models_dir, small_mnist, mnist,
                                                                           monkeypatch):
    """A "finetune" job through the queue (in this process' threads, to see what it trains on): the held-out
    drawings are never trained on, the others are, repeated; the model is saved with the base, the collection and
    before/after figures that match an evaluation made here."""
    import mnist_core.training
    from job_runners import InProcessRunner
    from mnist_core.evaluation import evaluate
    from mnist_core.inference import Classifier
    from mnist_core.jobs import JobStatus, Scheduler
    from mnist_core.store import read_info
    from mnist_core.visitors import Visitor

    x_hand, y_hand = tiny_collection(mnist)
    seen = {}
    real_train = mnist_core.training.train

    def train_and_look(config, on_event=None, stop_event=None, mnist=None, model=None):
        seen["x"], seen["y"] = mnist[0]
        seen["config"] = config
        return real_train(config, on_event=on_event, stop_event=stop_event, mnist=mnist, model=model)

    monkeypatch.setattr(mnist_core.training, "train", train_and_look)
    queue = Scheduler(InProcessRunner(mnist=small_mnist), models_dir)
    owner = Visitor("00000000000000a1", "visitor-00a1")
    config = finetune_config("cnn", epochs=1, mnist_images=2000)
    job = queue.submit(config, "cnn-anna", owner, kind="finetune",
                       extra=finetune_extra("cnn", "annas hand", x_hand, y_hand))
    assert job.wait(TIMEOUT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.FINISHED, snapshot.error
    assert snapshot.saved_name == "cnn-anna" and len(snapshot.epochs) == 1

    info = read_info("cnn-anna", models_dir)
    record = Record.from_dict(info.finetune)
    assert (record.base_model, record.collection, record.collection_size, record.epochs) == ("cnn", "annas hand", 20, 1)
    assert record.labels == {str(digit): int(count) for digit, count in enumerate(np.bincount(y_hand, minlength=10))
                             if count}
    held = np.array(record.held_out_indices)
    assert np.array_equal(held, held_out_split(y_hand, seed=config.seed).held_out)
    assert record.held_out == len(held) > 0 and record.trained_on == 20 - len(held)
    assert (info.owner_id, info.architecture, info.test_accuracy) == (owner.id, "cnn", record.mnist_test_accuracy.after)
    assert info.finetune["mnist_test_accuracy"]["within_limit"] == (record.mnist_drop_points <= 0.3)

    # What it trained on: 2,000 MNIST images, then each training drawing `repeats` times, and no held-out drawing.
    trained_on = seen["x"]
    assert len(trained_on) == seen["config"].train_size == 2000 + record.trained_on * record.repeats
    drawn = {x_hand[index].tobytes() for index in range(20)}
    counted = {}
    for image in trained_on[2000:]:
        counted[image.tobytes()] = counted.get(image.tobytes(), 0) + 1
    assert set(counted) <= drawn and all(count == record.repeats for count in counted.values())
    held_images = {x_hand[index].tobytes() for index in held}
    assert not held_images & {image.tobytes() for image in trained_on}

    # The figures are what the models say here: before = the shipped cnn, after = the saved one.
    (_, _), (x_test, y_test) = small_mnist
    base, tuned = Classifier.load("cnn", models_dir), Classifier.load("cnn-anna", models_dir)
    assert record.held_out_accuracy.before == pytest.approx(evaluate(base, x_hand[held], y_hand[held]).accuracy)
    assert record.held_out_accuracy.after == pytest.approx(evaluate(tuned, x_hand[held], y_hand[held]).accuracy)
    assert record.mnist_test_accuracy.before == pytest.approx(evaluate(base, x_test, y_test).accuracy, abs=1e-6)
    assert record.mnist_test_accuracy.after == pytest.approx(evaluate(tuned, x_test, y_test).accuracy, abs=1e-6)


def test_a_finetune_stopped_before_its_first_batch_saves_nothing(models_dir, small_mnist, mnist):
    from mnist_core.finetune import finetune_and_save
    from mnist_core.jobs import JobSpec, JobStatus

    x_hand, y_hand = tiny_collection(mnist)
    stop = threading.Event()
    stop.set()
    spec = JobSpec(finetune_config("cnn", 1, 2000), "never", str(models_dir), kind="finetune",
                   extra=finetune_extra("cnn", "annas hand", x_hand, y_hand))
    outcome = finetune_and_save(spec, lambda event: None, stop, mnist=small_mnist)
    assert outcome.status == JobStatus.STOPPED and "nothing to save" in str(outcome.error)
    assert not list(models_dir.glob("never.*"))


def test_the_command_line_fine_tunes_from_an_exported_file(models_dir, tmp_path, mnist):
    from mnist_core.handwriting import Handwriting, new_drawing, picture_png
    from mnist_core.visitors import Visitor

    x_hand, y_hand = tiny_collection(mnist)
    drawings = Handwriting(tmp_path / "data" / "handwriting.sqlite3")
    anna = Visitor("00000000000000a1", "visitor-00a1")
    for image, label in zip(x_hand, y_hand):
        drawings.add(anna, new_drawing(picture_png(image), image, int(label)))
    export = tmp_path / "annas-hand.zip"
    export.write_bytes(drawings.export_zip(drawings.own(anna).id))

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "mnist_core", "finetune", "--base", "cnn", "--file", str(export), "--name",
               "cnn-anna", "--epochs", "1", "--mnist-images", "2000", "--models-dir", str(models_dir)]
    completed = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "epoch 1/1 done" in completed.stderr
    recorded = json.loads((models_dir / "cnn-anna.json").read_text())
    base_accuracy = json.loads((models_dir / "cnn.json").read_text())["test_accuracy"]
    mnist_test = recorded["finetune"]["mnist_test_accuracy"]
    assert mnist_test["before"] == pytest.approx(base_accuracy, abs=1e-6)  # the shipped cnn, evaluated again
    assert completed.stdout.startswith("saved 'cnn-anna': held-out drawings (")
    assert f"MNIST test {mnist_test['before']:.2%} -> {mnist_test['after']:.2%} (" in completed.stdout
    assert recorded["finetune"]["collection"] == "annas-hand" and recorded["finetune"]["collection_size"] == 20
    assert recorded["command"].startswith("python -m mnist_core finetune --base cnn --file ")

    # By collection name from a data folder; a name nobody gave is a sentence, not a traceback.
    missing = subprocess.run([*command[:6], "--collection", "nobody", "--name", "x", "--data-dir",
                              str(tmp_path / "data"), "--models-dir", str(models_dir)],
                             cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert missing.returncode == 2 and missing.stderr.strip() == \
        "error: There is no collection named 'nobody' on this server."
