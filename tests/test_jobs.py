"""mnist_core.jobs: background training that finishes, stops, fails and queues like a person expects."""

import json
import time

import pytest

import mnist_core.jobs as jobs
from mnist_core.jobs import MAX_BATCH_POINTS, JobRegistry, JobStatus, TrainingBusyError, TrainingJob
from mnist_core.store import list_models, load_model
from mnist_core.training import BatchEvent, EpochEvent, TrainConfig

TINY = TrainConfig(architecture="mlp", epochs=1, batch_size=32, train_size=300)
# Held after its third batch until the test stops it (conftest's hold_training): never done before the test acts.
LONG = TrainConfig(architecture="mlp", epochs=5, batch_size=16, train_size=2000)
WAIT = 120  # seconds; generous for a busy machine, only reached when something hangs


def wait_for(condition, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_a_job_finishes_and_saves_its_model(tmp_path, small_mnist):
    job = TrainingJob(TINY, "tiny", owner="alice", models_dir=tmp_path, mnist=small_mnist).start()
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.FINISHED and snapshot.error is None and not snapshot.active
    assert snapshot.saved_name == "tiny" and snapshot.owner == "alice"
    assert snapshot.fraction_done == 1.0 and not snapshot.stop_requested
    steps = -(-300 // 32)
    assert len(snapshot.batches) == steps and snapshot.latest is snapshot.batches[-1]
    assert snapshot.latest.step == steps
    assert [epoch.epoch for epoch in snapshot.epochs] == [1]
    assert 0.3 < snapshot.test_accuracy <= 1

    recorded = json.loads((tmp_path / "tiny.json").read_text())
    assert recorded["test_accuracy"] == snapshot.test_accuracy
    assert recorded["owner"] == "alice" and recorded["stopped"] is False
    assert recorded["config"] == TINY.to_dict() and len(recorded["history"]) == 1
    assert [entry.name for entry in list_models(tmp_path)] == ["tiny"]
    assert load_model("tiny", tmp_path).count_params() == recorded["parameters"]


def test_stop_mid_run_still_saves_what_was_trained(tmp_path, small_mnist, hold_training):
    hold_training.add(LONG)
    job = TrainingJob(LONG, "stopped", models_dir=tmp_path, mnist=small_mnist).start()
    wait_for(lambda: len(job.snapshot().batches) >= 3)
    job.stop()
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.STOPPED and snapshot.stop_requested
    assert snapshot.saved_name == "stopped" and snapshot.test_accuracy is not None
    assert 0 < snapshot.fraction_done < 1
    assert len(snapshot.batches) < 125 * 5
    recorded = json.loads((tmp_path / "stopped.json").read_text())
    assert recorded["stopped"] is True and recorded["history"][-1]["complete"] is False


def test_registry_runs_one_job_at_a_time(tmp_path, small_mnist, hold_training):
    hold_training.add(LONG)
    registry = JobRegistry(models_dir=tmp_path, mnist=small_mnist)
    assert registry.current() is None
    first = registry.start(LONG, "first", owner="alice")
    try:
        with pytest.raises(TrainingBusyError) as raised:
            registry.start(TINY, "second", owner="bob")
        message = str(raised.value)
        assert "busy" in message and "alice" in message and "'first'" in message and "watch" in message
        assert raised.value.snapshot.job_id == first.job_id
        assert registry.current() is first
    finally:
        registry.stop()
    assert first.wait(WAIT)
    assert first.snapshot().status == JobStatus.STOPPED

    second = registry.start(TINY, "second", owner="bob")
    assert second is not first and registry.current() is second
    assert second.wait(WAIT)
    assert second.snapshot().status == JobStatus.FINISHED
    assert (tmp_path / "second.keras").exists()
    # A name already taken gets a suffix instead of replacing the saved model.
    third = registry.start(LONG, "second")
    assert third.model_name == "second-2"
    third.stop()
    assert third.wait(WAIT)


def test_a_failure_inside_training_is_reported_and_frees_the_registry(tmp_path, small_mnist, monkeypatch, capsys):
    def out_of_memory(*args, **kwargs):
        raise MemoryError("simulated OOM")

    monkeypatch.setattr(jobs, "train", out_of_memory)
    registry = JobRegistry(models_dir=tmp_path, mnist=small_mnist)
    failed = registry.start(TINY, "doomed")
    assert failed.wait(WAIT)
    snapshot = failed.snapshot()
    assert snapshot.status == JobStatus.FAILED and not snapshot.active
    assert "simulated OOM" in snapshot.error and "MemoryError" in snapshot.error
    assert snapshot.saved_name is None and list_models(tmp_path) == []

    again = registry.start(TINY, "doomed")  # not busy any more
    assert again is not failed and again.wait(WAIT)
    assert again.snapshot().status == JobStatus.FAILED


def test_stop_before_the_first_batch_saves_nothing(tmp_path, small_mnist):
    job = TrainingJob(TINY, "never", models_dir=tmp_path, mnist=small_mnist)
    job.stop()
    job.start()
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.STOPPED and snapshot.saved_name is None
    assert "nothing to save" in snapshot.error
    assert list_models(tmp_path) == []


def fake_batch(number: int, steps: int = 100) -> BatchEvent:
    epoch, step = divmod(number, steps)
    return BatchEvent(
        epoch=epoch + 1, epochs=1000, step=step + 1, steps=steps, loss=1.0 / (number + 1), accuracy=0.5,
        images_per_second=1000.0, elapsed_seconds=number * 0.01, eta_seconds=1.0,
    )


@pytest.mark.parametrize("count", [10, MAX_BATCH_POINTS, MAX_BATCH_POINTS + 1, 2 * MAX_BATCH_POINTS, 3001, 10_007])
def test_snapshot_thins_long_runs_but_keeps_the_ends(count):
    job = TrainingJob(TINY, "thin")  # never started: only its progress log is used
    events = [fake_batch(number) for number in range(count)]
    for event in events:
        job._record(event)
    job._record(EpochEvent(1, 1000, 0.5, 0.9, 0.4, 0.91, 3.0))
    snapshot = job.snapshot()
    assert len(snapshot.batches) == min(count, MAX_BATCH_POINTS)  # never more points than a chart needs
    assert snapshot.batches[0] == events[0] and snapshot.batches[-1] == events[-1]
    assert snapshot.latest == events[-1]
    times = [event.elapsed_seconds for event in snapshot.batches]
    assert times == sorted(set(times))  # in order, no point twice
    if count > MAX_BATCH_POINTS:  # evenly spread: no gap much wider than the average one
        gaps = [later - earlier for earlier, later in zip(times, times[1:])]
        assert max(gaps) <= 2 * (times[-1] - times[0]) / len(gaps)
    assert len(snapshot.epochs) == 1


def _counting_evaluations(monkeypatch) -> list:
    """Calls of mnist_core.evaluation.evaluate made while saving (each one a pass over the test images)."""
    import mnist_core.evaluation as evaluation

    calls = []
    real = evaluation.evaluate

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", counted)
    return calls


def test_the_last_epochs_test_accuracy_is_the_saved_one_with_no_second_evaluation(tmp_path, small_mnist, monkeypatch):
    evaluations = _counting_evaluations(monkeypatch)
    config = TrainConfig(architecture="mlp", epochs=2, batch_size=32, train_size=300, precision="float32")
    job = TrainingJob(config, "once", models_dir=tmp_path, mnist=small_mnist).start()
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.FINISHED
    assert snapshot.test_accuracy == pytest.approx(snapshot.epochs[-1].val_accuracy)
    assert evaluations == []
    # ...and it is what the saved model scores on the same test images.
    from mnist_core.evaluation import evaluate
    from mnist_core.inference import Classifier

    (_, _), (x_test, y_test) = small_mnist
    assert evaluate(Classifier(load_model("once", tmp_path)), x_test, y_test).accuracy == pytest.approx(
        snapshot.test_accuracy, abs=1 / len(y_test) + 1e-9
    )


@pytest.mark.parametrize("validation, precision", [("split", "float32"), ("test", "bfloat16")])
def test_a_model_validated_elsewhere_or_in_bfloat16_is_evaluated_on_the_test_set(
    tmp_path, small_mnist, monkeypatch, validation, precision
):
    evaluations = _counting_evaluations(monkeypatch)
    config = TrainConfig(architecture="mlp", epochs=1, batch_size=32, train_size=300, validation=validation,
                         precision=precision)
    job = TrainingJob(config, "split", models_dir=tmp_path, mnist=small_mnist).start()
    assert job.wait(WAIT)
    assert job.snapshot().status == JobStatus.FINISHED and evaluations == [1]


def test_a_stopped_run_is_evaluated_after_the_stop(tmp_path, small_mnist, monkeypatch, hold_training):
    evaluations = _counting_evaluations(monkeypatch)
    hold_training.add(LONG)
    job = TrainingJob(LONG, "cut", models_dir=tmp_path, mnist=small_mnist).start()
    wait_for(lambda: len(job.snapshot().batches) >= 3)
    job.stop()
    assert job.wait(WAIT)
    assert job.snapshot().status == JobStatus.STOPPED and evaluations == [1]
