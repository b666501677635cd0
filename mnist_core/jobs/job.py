"""One job as the server sees it: what to run (JobSpec), how it is going (Job, under a lock), and immutable
JobSnapshots for the pages.

A runner (local.py: a worker process; later a Ray task) does the work and feeds the Job its progress events and
its end; the scheduler (queue.py) decides when it starts. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum

from mnist_core.i18n import Message
from mnist_core.panel import PanelEvent
from mnist_core.training import BatchEvent, EpochEvent, TrainConfig

# Charts need no more points than this; older batch events are thinned out in snapshots.
MAX_BATCH_POINTS = 1500


class JobRefused(RuntimeError):
    """A job (or an action on one) that is not allowed; its one argument, an i18n Message, says why, for a person."""


class NotEnoughMemoryError(JobRefused):
    pass


class JobStatus(str, Enum):
    QUEUED = "queued"  # waiting for a free worker slot
    RUNNING = "running"  # handed to a runner: preparing, then training
    SAVING = "saving"  # evaluating on the test set and saving
    FINISHED = "finished"
    STOPPED = "stopped"  # stopped by its owner; what was trained is saved
    FAILED = "failed"
    CANCELLED = "cancelled"  # taken out of the queue, or aborted, before anything was saved


ACTIVE = (JobStatus.RUNNING, JobStatus.SAVING)
ENDED = (JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to run a job; plain data, picklable, sent across processes.

    `kind` names the work (work.py's WORK registry: "train" by default); `extra` carries what a kind needs beyond
    the TrainConfig (for example a base model's name), as plain picklable values.
    """

    config: TrainConfig
    model_name: str
    models_dir: str
    owner_id: str = ""
    owner_name: str = ""
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    kind: str = "train"
    extra: tuple[tuple[str, object], ...] = ()

    def extra_value(self, key: str, default=None):
        return dict(self.extra).get(key, default)


@dataclass(frozen=True)
class JobOutcome:
    """How a job's work ended, as the worker reports it."""

    status: JobStatus  # FINISHED, STOPPED or FAILED
    saved_name: str | None = None
    test_accuracy: float | None = None
    # Why it stopped or failed, for a person: a Message (rendered in each reader's language when a page shows it),
    # or plain text where no sentence of ours applies.
    error: Message | str | None = None


@dataclass(frozen=True)
class JobSnapshot:
    """Everything a page needs to draw a job at one moment; plain data, safe to keep."""

    job_id: str
    kind: str  # "train", "import", ... (work.py's WORK)
    owner_id: str
    owner: str  # the owner's shown name
    model_name: str
    config: TrainConfig
    status: JobStatus
    submitted_at: float  # time.time()
    started_at: float | None
    elapsed_seconds: float  # since it started running (0 while queued)
    batches: tuple[BatchEvent, ...]
    epochs: tuple[EpochEvent, ...]
    latest: BatchEvent | None
    stop_requested: bool
    error: Message | str | None  # i18n.render(...) it to show it
    saved_name: str | None
    test_accuracy: float | None
    panels: tuple[PanelEvent, ...] = ()  # the watched test digits' answers: before training, then after each epoch

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def queued(self) -> bool:
        return self.status == JobStatus.QUEUED

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def fraction_done(self) -> float:
        if self.status == JobStatus.FINISHED:
            return 1.0
        if self.latest is None:
            return 0.0
        done = (self.latest.epoch - 1) * self.latest.steps + self.latest.step
        return min(1.0, done / (self.latest.epochs * self.latest.steps))


def _thinned(events: list, limit: int) -> list:
    """At most `limit` events spread evenly over `events`, always keeping the first and the latest."""
    count = len(events)
    if count <= limit:
        return list(events)
    # Evenly spaced positions from the first (0) to the last (count - 1); they are distinct since count > limit.
    return [events[index * (count - 1) // (limit - 1)] for index in range(limit)]


class Job:
    """A job's live state on the server. Runners call `record`, `mark_*` and `end`; pages read `snapshot()`."""

    def __init__(self, spec: JobSpec, clock=time.time):
        self.spec = spec
        self._clock = clock
        self._lock = threading.Lock()
        self._batches: list[BatchEvent] = []
        self._epochs: list[EpochEvent] = []
        self._panels: list[PanelEvent] = []
        self._status = JobStatus.QUEUED
        self._stop_requested = False
        self._error: Message | str | None = None
        self._saved_name: str | None = None
        self._test_accuracy: float | None = None
        self._submitted_at = clock()
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._ended = threading.Event()

    @property
    def job_id(self) -> str:
        return self.spec.job_id

    @property
    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    @property
    def done(self) -> bool:
        return self.status in ENDED

    @property
    def stop_requested(self) -> bool:
        with self._lock:
            return self._stop_requested

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (any way); True if it has."""
        return self._ended.wait(timeout)

    # --- what runners and the scheduler call ---------------------------------------------------------------

    def mark_running(self) -> None:
        with self._lock:
            self._status = JobStatus.RUNNING
            self._started_at = self._clock()

    def mark_saving(self) -> None:
        with self._lock:
            if self._status == JobStatus.RUNNING:
                self._status = JobStatus.SAVING

    def request_stop(self) -> None:
        with self._lock:
            self._stop_requested = True

    def record(self, event) -> None:
        with self._lock:
            if isinstance(event, BatchEvent):
                self._batches.append(event)
            elif isinstance(event, PanelEvent):
                self._panels.append(event)
            else:
                self._epochs.append(event)

    def end(self, outcome: JobOutcome) -> bool:
        """Record how the job ended; False (and nothing changes) if it had already ended."""
        with self._lock:
            if self._status in ENDED:
                return False
            self._status = outcome.status
            self._saved_name = outcome.saved_name
            self._test_accuracy = outcome.test_accuracy
            self._error = outcome.error
            self._ended_at = self._clock()
        self._ended.set()
        return True

    # --- what pages read ---------------------------------------------------------------------------------------

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            batches = _thinned(self._batches, MAX_BATCH_POINTS)
            if self._started_at is None:
                elapsed = 0.0
            else:
                elapsed = (self._ended_at or self._clock()) - self._started_at
            return JobSnapshot(
                job_id=self.spec.job_id,
                kind=self.spec.kind,
                owner_id=self.spec.owner_id,
                owner=self.spec.owner_name,
                model_name=self._saved_name or self.spec.model_name,
                config=self.spec.config,
                status=self._status,
                submitted_at=self._submitted_at,
                started_at=self._started_at,
                elapsed_seconds=elapsed,
                batches=tuple(batches),
                epochs=tuple(self._epochs),
                latest=self._batches[-1] if self._batches else None,
                stop_requested=self._stop_requested,
                error=self._error,
                saved_name=self._saved_name,
                test_accuracy=self._test_accuracy,
                panels=tuple(self._panels),
            )
