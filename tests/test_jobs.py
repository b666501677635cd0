"""mnist_core.jobs: the queue (ordering, cancel, stop, owners, limits, estimates) with a stand-in runner, and the
local runner's worker processes for real (a job trains and saves, Stop keeps the model, a dying worker fails its
job alone, idle workers leave)."""

import json
import threading
import time

import pytest

from mnist_core.jobs import (
    MAX_BATCH_POINTS,
    AlreadyQueuedError,
    Job,
    JobOutcome,
    JobRefused,
    JobSpec,
    JobStatus,
    LocalRunner,
    NotYoursError,
    QueueFullError,
    QuotaError,
    Scheduler,
    run_job,
)
from mnist_core.limits import Limits
from mnist_core.panel import PANEL_INDICES, PanelEvent
from mnist_core.store import list_models, load_model
from mnist_core.training import BatchEvent, EpochEvent, TrainConfig
from mnist_core.visitors import Visitor

TINY = TrainConfig(architecture="mlp", epochs=1, batch_size=32, train_size=300)
# As long as the app allows: never done before the test stops it, however fast this machine trains.
ENDLESS = TrainConfig(architecture="mlp", epochs=50, batch_size=16, train_size=60_000)
WAIT = 180  # seconds; generous for a busy machine, only reached when something hangs

ALICE = Visitor("a11ce000a11ce000", "visitor-a11c")
BOB = Visitor("b0b00000b0b00000", "visitor-b0b0")
CAROL = Visitor("ca401000ca401000", "visitor-ca40")
TEACHER = Visitor("7eac4e407eac4e40", "visitor-7eac", admin=True)


def wait_for(condition, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


# --- the queue, with a runner the test drives -------------------------------------------------------------------


class StandInRunner:
    """Starts nothing: the test ends jobs when it likes (`finish`), as a real runner would report."""

    def __init__(self, slots: int = 1):
        self.slots = slots
        self.started: list[Job] = []
        self.ends = {}
        self.stops: list[str] = []
        self.warm_ups = 0

    def run(self, job, on_end):
        self.started.append(job)
        self.ends[job.job_id] = on_end
        runner = self

        class Handle:
            def stop(self):
                runner.stops.append(job.job_id)

            def cancel(self):
                runner.finish(job, JobStatus.CANCELLED)

        return Handle()

    def finish(self, job, status=JobStatus.FINISHED, error=None):
        job.end(JobOutcome(status, saved_name=job.spec.model_name if status != JobStatus.FAILED else None,
                           error=error))
        self.ends.pop(job.job_id)(job)

    def admit(self, config):
        pass

    def warm_up(self):
        self.warm_ups += 1

    def describe(self):
        return "stand-in"

    def shutdown(self):
        pass


def queue_of(tmp_path, slots=1, **limits) -> tuple[Scheduler, StandInRunner]:
    runner = StandInRunner(slots)
    return Scheduler(runner, tmp_path, Limits(**limits)), runner


def test_jobs_start_first_in_first_out_one_at_a_time(tmp_path):
    queue, runner = queue_of(tmp_path)
    first = queue.submit(TINY, "first", ALICE)
    second = queue.submit(TINY, "second", BOB)
    third = queue.submit(TINY, "third", CAROL)
    assert first.status == JobStatus.RUNNING and runner.started == [first]
    assert [entry.snapshot.model_name for entry in queue.queue_view()] == ["second", "third"]
    assert [entry.position for entry in queue.queue_view()] == [1, 2]

    runner.finish(first)
    assert runner.started == [first, second] and second.status == JobStatus.RUNNING
    runner.finish(second)
    assert runner.started == [first, second, third]
    runner.finish(third)
    assert queue.queued() == [] and queue.running() == []
    assert [job.status for job in (first, second, third)] == [JobStatus.FINISHED] * 3


def test_a_failed_job_does_not_block_the_next(tmp_path):
    queue, runner = queue_of(tmp_path)
    doomed = queue.submit(TINY, "doomed", ALICE)
    after = queue.submit(TINY, "after", BOB)
    runner.finish(doomed, JobStatus.FAILED, "MemoryError: simulated")
    assert str(doomed.snapshot().error) == "MemoryError: simulated"
    assert after.status == JobStatus.RUNNING and runner.started == [doomed, after]


def test_a_runner_that_cannot_start_a_job_fails_it_and_goes_on(tmp_path):
    queue, runner = queue_of(tmp_path)
    real_run = runner.run
    calls = []

    def run_once_broken(job, on_end):
        calls.append(job)
        if len(calls) == 1:
            raise OSError("cannot spawn a process")
        return real_run(job, on_end)

    runner.run = run_once_broken
    broken = queue.submit(TINY, "broken", ALICE)
    assert broken.status == JobStatus.FAILED and "cannot spawn a process" in str(broken.snapshot().error)
    fine = queue.submit(TINY, "fine", BOB)
    assert fine.status == JobStatus.RUNNING


def test_several_slots_run_several_jobs_and_the_queue_waits_for_a_free_one(tmp_path):
    queue, runner = queue_of(tmp_path, slots=2)
    jobs = [queue.submit(TINY, f"job-{index}", visitor) for index, visitor in enumerate([ALICE, BOB, CAROL])]
    assert [job.status for job in jobs] == [JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.QUEUED]
    runner.finish(jobs[1])
    assert jobs[2].status == JobStatus.RUNNING


def test_only_the_owner_or_an_admin_stops_or_cancels(tmp_path):
    queue, runner = queue_of(tmp_path)
    running = queue.submit(TINY, "alices", ALICE)
    waiting = queue.submit(TINY, "bobs", BOB)
    for action in (queue.stop, queue.cancel):
        with pytest.raises(NotYoursError):
            action(waiting.job_id, ALICE)
    with pytest.raises(NotYoursError):
        queue.stop(running.job_id, BOB)
    assert runner.stops == [] and waiting.status == JobStatus.QUEUED

    queue.stop(running.job_id, ALICE)
    assert runner.stops == [running.job_id] and running.stop_requested
    queue.cancel(waiting.job_id, TEACHER)
    assert waiting.status == JobStatus.CANCELLED and queue.queued() == []
    runner.finish(running, JobStatus.STOPPED)
    assert runner.started == [running]  # the cancelled job never ran
    with pytest.raises(JobRefused, match="already ended"):
        queue.cancel(waiting.job_id, BOB)


def test_stop_on_a_queued_job_takes_it_out_and_cancel_refuses_a_running_one(tmp_path):
    queue, runner = queue_of(tmp_path)
    running = queue.submit(TINY, "running", ALICE)
    waiting = queue.submit(TINY, "waiting", BOB)
    queue.stop(waiting.job_id, BOB)
    assert waiting.status == JobStatus.CANCELLED
    with pytest.raises(JobRefused, match="no longer waiting"):
        queue.cancel(running.job_id, ALICE)


def test_one_job_per_visitor_at_a_time_and_a_queue_length_limit(tmp_path):
    queue, runner = queue_of(tmp_path, max_queue=2)
    mine = queue.submit(TINY, "mine", ALICE)
    with pytest.raises(AlreadyQueuedError, match="'mine' is still running"):
        queue.submit(TINY, "again", ALICE)  # a double click queues nothing twice
    queue.submit(TINY, "bobs", BOB)
    queue.submit(TINY, "carols", CAROL)
    with pytest.raises(QueueFullError, match="queue is full"):
        queue.submit(TINY, "one-more", Visitor("d0000000d0000000", "visitor-d000"))
    runner.finish(mine)
    assert queue.submit(TINY, "next", ALICE).status == JobStatus.QUEUED  # Alice's job ended: she may queue again


def test_trainings_per_hour_and_the_settings_bounds_come_from_the_limits(tmp_path):
    now = [1_000_000.0]
    runner = StandInRunner()
    queue = Scheduler(runner, tmp_path, Limits(trainings_per_hour=2, max_epochs=5, max_train_size=1000),
                      clock=lambda: now[0])
    with pytest.raises(QuotaError, match="at most 5 epochs and 1,000 training images"):
        queue.submit(TrainConfig(architecture="mlp", epochs=6, train_size=300), "long", ALICE)
    for name in ("one", "two"):
        runner.finish(queue.submit(TINY, name, ALICE))
    with pytest.raises(QuotaError, match="2 trainings in the last hour"):
        queue.submit(TINY, "three", ALICE)
    assert queue.submit(TINY, "admins-are-not-counted", TEACHER).status == JobStatus.RUNNING
    now[0] += 3601
    runner.finish(queue.running()[0])
    assert queue.submit(TINY, "three", ALICE).status == JobStatus.RUNNING


def test_a_taken_name_gets_a_number_in_the_store_and_in_the_queue(tmp_path):
    (tmp_path / "my-cnn.keras").write_bytes(b"saved before")
    queue, runner = queue_of(tmp_path)
    assert queue.submit(TINY, "my-cnn", ALICE).spec.model_name == "my-cnn-2"
    assert queue.submit(TINY, "my-cnn", BOB).spec.model_name == "my-cnn-3"


def test_queued_positions_and_waits_follow_the_running_jobs_eta_and_the_settings(tmp_path):
    queue, runner = queue_of(tmp_path)
    running = queue.submit(TINY, "running", ALICE)
    running.record(BatchEvent(epoch=1, epochs=1, step=5, steps=10, loss=1.0, accuracy=0.5, images_per_second=1000.0,
                              elapsed_seconds=5.0, eta_seconds=30.0))
    second = queue.submit(TrainConfig(architecture="cnn", epochs=2, train_size=15_000), "second", BOB)
    third = queue.submit(TINY, "third", CAROL)
    first_wait, second_wait = [entry.starts_in_seconds for entry in queue.queue_view()]
    assert first_wait > 30.0  # the running job's ETA plus its evaluation and save
    assert second_wait == pytest.approx(first_wait + queue.estimate_seconds(second.spec.config))
    assert queue.estimate_seconds(second.spec.config) > queue.estimate_seconds(third.spec.config)


def test_measured_speed_replaces_the_default_estimate(tmp_path):
    queue, runner = queue_of(tmp_path)
    config = TrainConfig(architecture="cnn", epochs=1, train_size=10_000)
    before = queue.estimate_seconds(config)
    job = queue.submit(config, "measured", ALICE)
    for step in range(1, 11):
        job.record(BatchEvent(epoch=1, epochs=1, step=step, steps=10, loss=1.0, accuracy=0.5,
                              images_per_second=500.0, elapsed_seconds=step, eta_seconds=10 - step))
    runner.finish(job)
    assert queue.estimate_seconds(config) > before  # 500 img/s measured: far slower than the default
    assert queue.estimate_seconds(config) == pytest.approx(6.0 + 10_000 / 500.0)


def test_latest_for_a_visitor_and_current(tmp_path):
    queue, runner = queue_of(tmp_path)
    assert queue.latest_for(ALICE) is None and queue.current() is None
    alices = queue.submit(TINY, "alices", ALICE)
    bobs = queue.submit(TINY, "bobs", BOB)
    assert queue.latest_for(BOB) is bobs and queue.current() is alices
    runner.finish(alices)
    assert queue.latest_for(ALICE) is alices and queue.current() is bobs
    assert queue.get(alices.job_id) is alices and queue.get("nope") is None


def fake_batch(number: int, steps: int = 100) -> BatchEvent:
    epoch, step = divmod(number, steps)
    return BatchEvent(
        epoch=epoch + 1, epochs=1000, step=step + 1, steps=steps, loss=1.0 / (number + 1), accuracy=0.5,
        images_per_second=1000.0, elapsed_seconds=number * 0.01, eta_seconds=1.0,
    )


def test_panel_events_are_kept_apart_from_the_epochs_in_the_snapshot(tmp_path):
    job = Job(JobSpec(TINY, "watched", str(tmp_path)))
    job.record(PanelEvent(0, (1,) * 20, (0.2,) * 20))
    job.record(EpochEvent(1, 2, 0.5, 0.8, 0.4, 0.85, 1.0))
    job.record(PanelEvent(1, (7,) * 20, (0.9,) * 20))
    snapshot = job.snapshot()
    assert [panel.epoch for panel in snapshot.panels] == [0, 1] and snapshot.panels[1].predictions[0] == 7
    assert [epoch.epoch for epoch in snapshot.epochs] == [1]


@pytest.mark.parametrize("count", [10, MAX_BATCH_POINTS, MAX_BATCH_POINTS + 1, 2 * MAX_BATCH_POINTS, 3001, 10_007])
def test_snapshot_thins_long_runs_but_keeps_the_ends(count):
    job = Job(JobSpec(TINY, "thin", "/nowhere"))  # never run: only its progress log is used
    events = [fake_batch(number) for number in range(count)]
    for event in events:
        job.record(event)
    job.record(EpochEvent(1, 1000, 0.5, 0.9, 0.4, 0.91, 3.0))
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


# --- the work of a job, in this process --------------------------------------------------------------------------


def test_run_job_trains_saves_and_records_the_owner(tmp_path, small_mnist):
    import threading

    events = []
    spec = JobSpec(TINY, "tiny", str(tmp_path), owner_id=ALICE.id, owner_name=ALICE.name)
    outcome = run_job(spec, events.append, threading.Event(), mnist=small_mnist)
    assert outcome.status == JobStatus.FINISHED and outcome.saved_name == "tiny" and outcome.error is None
    assert 0.3 < outcome.test_accuracy <= 1
    assert sum(isinstance(event, BatchEvent) for event in events) == -(-300 // 32) and events[-1] == "saving"
    recorded = json.loads((tmp_path / "tiny.json").read_text())
    assert (recorded["owner"], recorded["owner_id"]) == (ALICE.name, ALICE.id) and recorded["stopped"] is False
    assert recorded["config"] == TINY.to_dict() and recorded["test_accuracy"] == outcome.test_accuracy
    assert load_model("tiny", tmp_path).count_params() == recorded["parameters"]


def test_run_job_stopped_before_the_first_batch_saves_nothing(tmp_path, small_mnist):
    import threading

    stop = threading.Event()
    stop.set()
    outcome = run_job(JobSpec(TINY, "never", str(tmp_path)), lambda event: None, stop, mnist=small_mnist)
    assert outcome.status == JobStatus.STOPPED and outcome.saved_name is None
    assert "nothing to save" in str(outcome.error) and list_models(tmp_path) == []


def test_run_job_reports_a_failure_instead_of_raising(tmp_path, small_mnist, monkeypatch):
    import threading

    import mnist_core.jobs.work as work

    def out_of_memory(*args, **kwargs):
        raise MemoryError("simulated OOM")

    monkeypatch.setattr(work, "train", out_of_memory)
    outcome = run_job(JobSpec(TINY, "doomed", str(tmp_path)), lambda event: None, threading.Event(),
                      mnist=small_mnist)
    assert outcome.status == JobStatus.FAILED and str(outcome.error).startswith("MemoryError: simulated OOM")
    assert "ran out of memory" in str(outcome.error)
    assert list_models(tmp_path) == []


def test_a_rehearsal_trains_the_default_network_on_a_few_batches_and_keeps_only_its_model(monkeypatch, tmp_path,
                                                                                          small_mnist):
    from mnist_core import training
    from mnist_core.jobs import work

    monkeypatch.chdir(tmp_path)  # whatever it might write would land here
    monkeypatch.setattr(training, "_ready", [])
    trained = []
    real_train = work.train

    def watched(config, **options):
        result = real_train(config, **options)
        trained.append((config, options, result))
        return result

    monkeypatch.setattr(work, "train", watched)
    assert work.rehearse(threading.Event(), mnist=small_mnist) is True
    [(config, options, result)] = trained
    assert config == training.PRESETS["fast"] and options["images"] == work.REHEARSAL_IMAGES and options["reuse"]
    assert result.batches_trained == work.REHEARSAL_IMAGES // config.batch_size and not result.stopped
    assert list(tmp_path.iterdir()) == []
    [kept] = training._ready  # the next default-preset job restarts this model (test_training: as a new one trains)
    assert kept.settings[0] == "quick"


def test_a_rehearsal_stops_when_a_real_job_comes(small_mnist):
    from mnist_core.jobs import work

    interrupted = threading.Event()
    interrupted.set()  # the job came before the rehearsal's first batch
    assert work.rehearse(interrupted, mnist=small_mnist) is False


# --- worker processes, for real ----------------------------------------------------------------------------------


@pytest.fixture
def local_queue(tmp_path):
    queues = []

    def make(**options):
        runner = LocalRunner(**options)
        queue = Scheduler(runner, tmp_path, Limits(max_jobs_per_visitor=5))
        queues.append(queue)
        return queue, runner

    yield make
    for queue in queues:
        queue.shutdown()


def test_a_job_runs_in_a_worker_process_and_saves_and_the_next_reuses_the_worker(local_queue, tmp_path):
    queue, runner = local_queue()
    first = queue.submit(TINY, "first", ALICE)
    second = queue.submit(TINY, "second", BOB)  # queued behind the first
    assert second.status == JobStatus.QUEUED
    assert first.wait(WAIT) and second.wait(WAIT)
    for job, name in ((first, "first"), (second, "second")):
        snapshot = job.snapshot()
        assert snapshot.status == JobStatus.FINISHED, snapshot.error
        assert snapshot.saved_name == name and 0.3 < snapshot.test_accuracy <= 1
        assert len(snapshot.batches) == -(-300 // 32) and [epoch.epoch for epoch in snapshot.epochs] == [1]
        # The panel of test digits came back from the worker with the progress: before training and after epoch 1.
        assert [panel.epoch for panel in snapshot.panels] == [0, 1]
        assert all(len(panel.predictions) == len(PANEL_INDICES) for panel in snapshot.panels)
    assert sorted(entry.name for entry in list_models(tmp_path)) == ["first", "second"]
    assert len(runner.worker_pids()) == 1  # the same worker ran both; it waits idle now


def test_stop_keeps_the_model_trained_so_far(local_queue, tmp_path):
    queue, _ = local_queue()
    job = queue.submit(ENDLESS, "stopped", ALICE)
    wait_for(lambda: len(job.snapshot().batches) >= 3)
    queue.stop(job.job_id, ALICE)
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.STOPPED and snapshot.stop_requested and snapshot.saved_name == "stopped"
    assert 0 < snapshot.fraction_done < 1
    recorded = json.loads((tmp_path / "stopped.json").read_text())
    assert recorded["stopped"] is True and recorded["history"][-1]["complete"] is False


def test_a_stop_sent_while_the_worker_still_warms_up_is_not_lost(local_queue, tmp_path):
    queue, _ = local_queue()
    job = queue.submit(ENDLESS, "early-stop", ALICE)
    queue.stop(job.job_id, ALICE)  # before the worker has even imported TensorFlow
    assert job.wait(WAIT)
    assert job.snapshot().status == JobStatus.STOPPED


def test_a_worker_that_dies_fails_its_job_alone_and_the_next_job_gets_a_fresh_worker(local_queue, tmp_path):
    queue, runner = local_queue()
    doomed = queue.submit(ENDLESS, "doomed", ALICE)
    wait_for(lambda: doomed.snapshot().latest is not None)
    import os
    import signal

    [pid] = runner.worker_pids()
    os.kill(pid, signal.SIGKILL)  # what the kernel's out-of-memory killer does
    assert doomed.wait(WAIT)
    snapshot = doomed.snapshot()
    assert snapshot.status == JobStatus.FAILED and "killed" in str(snapshot.error) and "memory" in str(snapshot.error)
    assert list_models(tmp_path) == []

    after = queue.submit(TINY, "after", BOB)
    assert after.wait(WAIT) and after.snapshot().status == JobStatus.FINISHED
    assert runner.worker_pids() != [pid]


def test_a_worker_past_its_memory_limit_fails_its_job_with_a_plain_message(local_queue, tmp_path):
    queue, _ = local_queue(memory_limit_mb=400)  # TensorFlow alone needs more address space than this
    job = queue.submit(TINY, "squeezed", ALICE)
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.FAILED
    assert "memory" in str(snapshot.error).lower() and "Traceback" not in str(snapshot.error)
    assert list_models(tmp_path) == []


def test_an_idle_worker_exits_and_warm_up_starts_one_ahead_of_need(local_queue):
    queue, runner = local_queue(idle_seconds=1.0)
    queue.warm_up()
    [pid] = runner.worker_pids()
    queue.warm_up()  # one ready worker is enough
    assert runner.worker_pids() == [pid]
    wait_for(lambda: runner.worker_pids() == [])


def test_a_job_sent_to_a_worker_that_rehearses_runs_as_any_other(local_queue, tmp_path):
    queue, runner = local_queue()
    queue.warm_up()  # the worker gets ready with nothing to do: it rehearses (work.rehearse)
    time.sleep(4)  # about when TensorFlow is imported and the rehearsal's first batches run
    job = queue.submit(TINY, "after-rehearsal", ALICE)
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.FINISHED, snapshot.error
    assert len(snapshot.batches) == -(-300 // 32) and [epoch.epoch for epoch in snapshot.epochs] == [1]
    assert [entry.name for entry in list_models(tmp_path)] == ["after-rehearsal"]


def test_shutdown_ends_every_worker_and_cancels_what_runs(local_queue):
    queue, runner = local_queue()
    job = queue.submit(ENDLESS, "cut-short", ALICE)
    wait_for(lambda: job.snapshot().latest is not None)
    queue.shutdown()
    assert job.wait(WAIT) and job.snapshot().status == JobStatus.CANCELLED
    assert runner.worker_pids() == []


def save_a_model(models_dir, name, owner):
    from mnist_core.architectures import build_model
    from mnist_core.store import ModelInfo, save_model

    save_model(build_model("mlp"), ModelInfo(name=name, architecture="mlp", config=TINY.to_dict(), test_accuracy=0.1,
                                             owner=owner.name, owner_id=owner.id), models_dir)


def test_models_per_visitor_and_the_store_size_are_limited(tmp_path):
    save_a_model(tmp_path, "alice-1", ALICE)
    save_a_model(tmp_path, "alice-2", ALICE)
    queue, runner = queue_of(tmp_path, models_per_visitor=2, store_max_models=4)
    with pytest.raises(QuotaError, match="You keep 2 models on this server"):
        queue.submit(TINY, "alice-3", ALICE)
    runner.finish(queue.submit(TINY, "bob-1", BOB))
    save_a_model(tmp_path, "bob-1", BOB)
    queue.submit(TINY, "carol-1", CAROL)  # 3 stored + 1 running = 4: the store is full for the next one
    with pytest.raises(QuotaError, match="The model store is full"):
        queue.submit(TINY, "teachers", TEACHER)

    megabytes = queue_of(tmp_path, store_max_mb=1)[0]
    with pytest.raises(QuotaError, match=r"The model store is full \(\d+ MB of 1 MB\)"):
        megabytes.submit(TINY, "big", Visitor("d0000000d0000000", "visitor-d000"))


def test_the_memory_estimate_follows_the_settings_and_a_job_that_cannot_fit_is_refused(monkeypatch, tmp_path):
    from mnist_core.hardware import Container
    from mnist_core.jobs import NotEnoughMemoryError
    from mnist_core.jobs import local as local_module
    from mnist_core.jobs.memory import READY_WORKER_BYTES, estimate_peak_bytes

    small = TrainConfig(architecture="cnn", batch_size=64, train_size=6_000)
    big = TrainConfig(architecture="strong", batch_size=512, train_size=60_000, augment=True)
    assert estimate_peak_bytes(small) < estimate_peak_bytes(big)
    assert estimate_peak_bytes(small) - estimate_peak_bytes(small, worker_ready=True) == READY_WORKER_BYTES
    # Measured peaks (bench/bench_worker_memory.py): the estimate never falls below them.
    assert estimate_peak_bytes(TrainConfig(architecture="cnn", batch_size=512, train_size=6_000)) >= 931 * 2**20
    assert estimate_peak_bytes(TrainConfig(architecture="cnn", batch_size=128, train_size=60_000)) >= 886 * 2**20

    def a_container_with(free_mib):
        return lambda: Container(cpus=1.0, memory_limit=2_700 * 2**20, memory_used=(2_700 - free_mib) * 2**20,
                                 memory_total=None, source="test")

    runner = LocalRunner()
    monkeypatch.setattr(local_module, "container", a_container_with(free_mib=700))
    with pytest.raises(NotEnoughMemoryError, match=r"would need about [\d,]+ MB of memory and this server has 700 MB"):
        runner.admit(big)
    queue = Scheduler(runner, tmp_path)
    with pytest.raises(NotEnoughMemoryError):
        queue.submit(small, "no-room", ALICE)  # no worker yet: the job would need a whole new one
    assert queue.queued() == [] and queue.running() == []
    monkeypatch.setattr(local_module, "container", a_container_with(free_mib=2_000))
    runner.admit(small)


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


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_last_epochs_test_accuracy_is_the_saved_one_with_no_second_evaluation(tmp_path, small_mnist, monkeypatch,
                                                                                 precision):
    """Issue 10's "no work done twice": after bfloat16 training the last epoch is validated by the float32 copy the
    model is saved as (training.train), not in bfloat16 and then again in float32."""
    evaluations = _counting_evaluations(monkeypatch)
    config = TrainConfig(architecture="mlp", epochs=2, batch_size=32, train_size=300, precision=precision)
    events = []
    outcome = run_job(JobSpec(config, "once", str(tmp_path)), events.append, threading.Event(), mnist=small_mnist)
    assert outcome.status == JobStatus.FINISHED
    epochs = [event for event in events if isinstance(event, EpochEvent)]
    assert outcome.test_accuracy == pytest.approx(epochs[-1].val_accuracy)
    assert evaluations == []
    # ...and it is what the saved model scores on the same test images.
    from mnist_core.evaluation import evaluate
    from mnist_core.inference import Classifier

    (_, _), (x_test, y_test) = small_mnist
    assert evaluate(Classifier.load("once", tmp_path), x_test, y_test).accuracy == pytest.approx(
        outcome.test_accuracy, abs=1 / len(y_test) + 1e-9
    )


@pytest.mark.parametrize("validation, precision", [("split", "float32"), ("split", "bfloat16")])
def test_a_model_validated_elsewhere_is_evaluated_on_the_test_set(
    tmp_path, small_mnist, monkeypatch, validation, precision
):
    evaluations = _counting_evaluations(monkeypatch)
    config = TrainConfig(architecture="mlp", epochs=1, batch_size=32, train_size=300, validation=validation,
                         precision=precision)
    outcome = run_job(JobSpec(config, "split", str(tmp_path)), lambda event: None, threading.Event(),
                      mnist=small_mnist)
    assert outcome.status == JobStatus.FINISHED and evaluations == [1]


def test_a_stopped_run_is_evaluated_after_the_stop(tmp_path, small_mnist, monkeypatch):
    evaluations = _counting_evaluations(monkeypatch)
    stop = threading.Event()
    config = TrainConfig(architecture="mlp", epochs=3, batch_size=32, train_size=300, precision="float32")

    def stop_at_the_third_batch(event):
        if isinstance(event, BatchEvent) and event.step == 3:
            stop.set()

    outcome = run_job(JobSpec(config, "cut", str(tmp_path)), stop_at_the_third_batch, stop, mnist=small_mnist)
    assert outcome.status == JobStatus.STOPPED and evaluations == [1]


# --- an uploaded model, imported by a worker's work ----------------------------------------------------------------


def keras_file_of(model) -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def test_an_uploaded_softmax_784_input_model_is_imported_in_the_apps_shape(tmp_path, small_mnist, trained_cnn):
    import keras
    import numpy as np

    from mnist_core.inference import Classifier
    from mnist_core.model_upload import stage_upload
    from mnist_core.store import read_info

    # A notebook's model: 784 inputs, softmax probabilities out (the app's own models take 28 x 28, give logits),
    # with the trained CNN's weights.
    notebook_model = keras.Sequential([keras.Input((784,)), keras.layers.Reshape((28, 28, 1)),
                                       *trained_cnn.layers[1:], keras.layers.Activation("softmax")])
    staged = stage_upload(keras_file_of(notebook_model), tmp_path)
    assert staged.name.startswith(".upload.") and list_models(tmp_path) == []  # hidden while it waits

    spec = JobSpec(TrainConfig(), "from-a-notebook", str(tmp_path), ALICE.id, ALICE.name, kind="import",
                   extra=(("upload_path", str(staged)),))
    events = []
    outcome = run_job(spec, events.append, threading.Event(), mnist=small_mnist)
    assert outcome.status == JobStatus.FINISHED, outcome.error
    assert outcome.saved_name == "from-a-notebook" and events == ["saving"] and not staged.exists()
    info = read_info("from-a-notebook", tmp_path)
    assert info.uploaded and info.architecture == "uploaded" and info.owner_id == ALICE.id
    # It answers as the model it wraps, through the app's LiteRT path, from 28 x 28 images.
    (_, _), (x_test, y_test) = small_mnist
    images = x_test[:200].astype(np.float32) / 255
    expected = np.asarray(trained_cnn(images, training=False)).argmax(axis=1)
    assert (Classifier.load("from-a-notebook", tmp_path).predict(images) == expected).all()
    assert info.test_accuracy == pytest.approx(float((Classifier.load("from-a-notebook", tmp_path)
                                                      .predict(x_test) == y_test).mean()), abs=1e-6)
    # Downloaded and uploaded again, it passes the upload checks: one flat list of Keras' own layers.
    from mnist_core.model_upload import inspect_keras_file
    from mnist_core.store import model_path

    again = inspect_keras_file(model_path("from-a-notebook", tmp_path).read_bytes())
    assert again.input_shape == (28, 28) and again.output_shape == (10,)


def test_an_upload_refused_by_the_worker_is_a_failed_job_with_the_reason_and_leaves_nothing(tmp_path, small_mnist):
    from mnist_core.model_upload import stage_upload

    staged = stage_upload(b"PK\x03\x04 not really a zip", tmp_path)
    spec = JobSpec(TrainConfig(), "junk", str(tmp_path), ALICE.id, ALICE.name, kind="import",
                   extra=(("upload_path", str(staged)),))
    outcome = run_job(spec, lambda event: None, threading.Event(), mnist=small_mnist)
    assert outcome.status == JobStatus.FAILED and "Traceback" not in str(outcome.error) and outcome.error
    assert not staged.exists() and list_models(tmp_path) == []


def test_a_runner_whose_slots_grow_starts_queued_jobs_at_once(tmp_path):
    """A Ray cluster gaining a node: its runner says so (on_slots_change) and the queue starts what waits."""

    class GrowingRunner(StandInRunner):
        def on_slots_change(self, listener):
            self.grown = listener

    runner = GrowingRunner(slots=1)
    queue = Scheduler(runner, tmp_path, Limits(max_jobs_per_visitor=5))
    first = queue.submit(TINY, "first", ALICE)
    second = queue.submit(TINY, "second", BOB)
    assert [job.status for job in (first, second)] == [JobStatus.RUNNING, JobStatus.QUEUED]
    runner.slots = 2
    runner.grown()
    assert second.status == JobStatus.RUNNING and runner.started == [first, second] and queue.queued() == []
