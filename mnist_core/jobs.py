"""Training in the background: a TrainingJob runs `train()` in a thread; a JobRegistry allows one at a time.

The job keeps every progress event under a lock and hands out immutable snapshots, so a page can poll it
from any thread. When training ends (finished or stopped) the model is evaluated on the test set and saved
to the store, whether or not anybody is still watching.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

from mnist_core.constants import MODELS_DIR
from mnist_core.training import BatchEvent, EpochEvent, TrainConfig, TrainResult, train

# Charts need no more points than this; older batch events are thinned out in snapshots.
MAX_BATCH_POINTS = 1500


class JobStatus(str, Enum):
    RUNNING = "running"
    SAVING = "saving"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class JobSnapshot:
    """Everything a page needs to draw a job at one moment; plain data, safe to keep."""

    job_id: str
    owner: str
    model_name: str
    config: TrainConfig
    status: JobStatus
    started_at: float  # time.time()
    elapsed_seconds: float
    batches: tuple[BatchEvent, ...]
    epochs: tuple[EpochEvent, ...]
    latest: BatchEvent | None
    stop_requested: bool
    error: str | None
    saved_name: str | None
    test_accuracy: float | None

    @property
    def active(self) -> bool:
        return self.status in (JobStatus.RUNNING, JobStatus.SAVING)

    @property
    def fraction_done(self) -> float:
        if self.status == JobStatus.FINISHED:
            return 1.0
        if self.latest is None:
            return 0.0
        done = (self.latest.epoch - 1) * self.latest.steps + self.latest.step
        return min(1.0, done / (self.latest.epochs * self.latest.steps))


def save_trained_model(
    result: TrainResult,
    name: str,
    models_dir: Path = MODELS_DIR,
    command: str | None = None,
    shipped: bool = False,
    owner: str = "",
    overwrite: bool = False,
    mnist=None,
):
    """Save `result.model` with its metadata and its accuracy on the 10k test set; returns the ModelInfo.

    The accuracy is the last epoch's validation accuracy when that was measured on the test set after the run's
    last batch (`measured_test_accuracy`); otherwise the model is evaluated on the test set here.
    """
    from mnist_core.store import ModelInfo, save_model

    test_accuracy = measured_test_accuracy(result)
    if test_accuracy is None:
        from mnist_core.data import load_mnist
        from mnist_core.evaluation import evaluate
        from mnist_core.inference import Classifier

        (_, _), (x_test, y_test) = mnist if mnist is not None else load_mnist()
        test_accuracy = evaluate(Classifier(result.model), x_test, y_test).accuracy
    info = ModelInfo(
        name=name,
        architecture=result.config.architecture,
        config=result.config.to_dict(),
        test_accuracy=round(test_accuracy, 6),
        history=[asdict(event) for event in result.history],
        train_seconds=round(result.seconds, 2),
        command=command,
        shipped=shipped,
        stopped=result.stopped,
        owner=owner,
    )
    return save_model(result.model, info, models_dir, overwrite=overwrite)


def measured_test_accuracy(result: TrainResult) -> float | None:
    """The test accuracy training already measured: the last epoch's validation accuracy when the run validated on
    the test set, ended with that epoch complete and computed in float32 (None otherwise).

    Keras validates the same weights the saved model holds, so evaluating again would repeat that work (about 1 s
    for the small networks). Not after mixed-precision training: its validation ran in bfloat16, and the saved
    float32 copy reads a test image or two differently, which the Models page would then contradict.
    """
    if result.config.validation != "test" or result.config.precision != "float32":
        return None
    if result.stopped or not result.history:
        return None
    last = result.history[-1]
    if not last.complete or last.epoch != result.config.epochs or last.val_accuracy is None:
        return None
    return float(last.val_accuracy)


def _thinned(events: list, limit: int) -> list:
    """At most `limit` events spread evenly over `events`, always keeping the first and the latest."""
    count = len(events)
    if count <= limit:
        return list(events)
    # Evenly spaced positions from the first (0) to the last (count - 1); they are distinct since count > limit.
    return [events[index * (count - 1) // (limit - 1)] for index in range(limit)]


class TrainingJob:
    """One training run in a background thread, with a thread-safe view of its progress."""

    def __init__(
        self,
        config: TrainConfig,
        model_name: str,
        owner: str = "",
        models_dir: Path = MODELS_DIR,
        mnist=None,
    ):
        self.job_id = uuid.uuid4().hex[:8]
        self.config = config
        self.model_name = model_name
        self.owner = owner
        self.models_dir = Path(models_dir)
        self._mnist = mnist
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._batches: list[BatchEvent] = []
        self._epochs: list[EpochEvent] = []
        self._status = JobStatus.RUNNING
        self._error: str | None = None
        self._saved_name: str | None = None
        self._test_accuracy: float | None = None
        self._started_at = time.time()
        self._ended_at: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"training-{self.job_id}", daemon=True)

    def start(self) -> TrainingJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask training to end at the next batch; the model trained so far is still saved."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (saved or failed); True if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return self.snapshot().status not in (JobStatus.RUNNING, JobStatus.SAVING)

    def _record(self, event) -> None:
        with self._lock:
            (self._batches if isinstance(event, BatchEvent) else self._epochs).append(event)

    def _finish(self, status: JobStatus, error: str | None = None) -> None:
        with self._lock:
            self._status = status
            self._error = error
            self._ended_at = time.time()

    def _run(self) -> None:
        try:
            result = train(self.config, on_event=self._record, stop_event=self._stop, mnist=self._mnist)
            if result.batches_trained == 0:
                self._finish(JobStatus.STOPPED, "Stopped before the first batch: there was nothing to save.")
                return
            with self._lock:
                self._status = JobStatus.SAVING
            info = self._save(result)
            with self._lock:
                self._saved_name = info.name
                self._test_accuracy = info.test_accuracy
            self._finish(JobStatus.STOPPED if result.stopped else JobStatus.FINISHED)
        except Exception as error:  # the job is the boundary: everything is reported, nothing escapes the thread
            message = f"{type(error).__name__}: {error}"
            self._finish(JobStatus.FAILED, message)
            traceback.print_exc()

    def _save(self, result: TrainResult):
        """Save under the job's name or, if something took that name while training ran, the next free one."""
        from mnist_core.store import ModelExistsError, ProtectedModelError, unique_name

        try:
            return save_trained_model(result, self.model_name, self.models_dir, owner=self.owner, mnist=self._mnist)
        except (ModelExistsError, ProtectedModelError):
            # The name was free at the start (JobRegistry.start); another server process or the CLI saved a model
            # under it since. Minutes of training must not be lost over a name.
            with self._lock:
                self.model_name = unique_name(self.model_name, self.models_dir)
            return save_trained_model(result, self.model_name, self.models_dir, owner=self.owner, mnist=self._mnist)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            batches = _thinned(self._batches, MAX_BATCH_POINTS)
            end = self._ended_at or time.time()
            return JobSnapshot(
                job_id=self.job_id,
                owner=self.owner,
                model_name=self.model_name,
                config=self.config,
                status=self._status,
                started_at=self._started_at,
                elapsed_seconds=end - self._started_at,
                batches=tuple(batches),
                epochs=tuple(self._epochs),
                latest=self._batches[-1] if self._batches else None,
                stop_requested=self._stop.is_set(),
                error=self._error,
                saved_name=self._saved_name,
                test_accuracy=self._test_accuracy,
            )


class TrainingBusyError(RuntimeError):
    """Another training job is running; `snapshot` describes it so the person can watch it instead."""

    def __init__(self, snapshot: JobSnapshot):
        who = f" by {snapshot.owner}" if snapshot.owner else ""
        minutes, seconds = divmod(int(snapshot.elapsed_seconds), 60)
        super().__init__(
            f"Training is busy: {snapshot.model_name!r} was started{who} {minutes} min {seconds} s ago "
            f"({snapshot.fraction_done:.0%} done). One job runs at a time on this server; you can watch it."
        )
        self.snapshot = snapshot


class JobRegistry:
    """The process-wide place where the current training job lives; at most one runs at a time."""

    def __init__(self, models_dir: Path = MODELS_DIR, mnist=None):
        from mnist_core.store import remove_stale_temporaries

        self.models_dir = Path(models_dir)
        self._mnist = mnist
        self._lock = threading.Lock()
        self._current: TrainingJob | None = None
        # A server killed mid-save left hidden temporary files; the next server's registry clears them.
        remove_stale_temporaries(self.models_dir)

    def start(self, config: TrainConfig, model_name: str, owner: str = "") -> TrainingJob:
        """Start a job, or raise TrainingBusyError if one is still running."""
        from mnist_core.store import unique_name

        with self._lock:
            if self._current is not None and not self._current.done:
                raise TrainingBusyError(self._current.snapshot())
            name = unique_name(model_name, self.models_dir)
            self._current = TrainingJob(config, name, owner, self.models_dir, self._mnist).start()
            return self._current

    def current(self) -> TrainingJob | None:
        """The running job, or the last one that ran (so its result stays visible)."""
        with self._lock:
            return self._current

    def stop(self) -> None:
        with self._lock:
            if self._current is not None:
                self._current.stop()
