"""The training queue: first in, first out, as many running at once as the runner has slots.

Start while every slot is busy puts the job in the queue; each visitor may have `limits.max_jobs_per_visitor`
jobs waiting or running (one by default: a double click queues nothing twice) and the queue holds at most
`limits.max_queue`. Only a job's owner (or an admin) may stop or cancel
it. Queued jobs start by themselves when a slot frees, whether or not anybody is watching, and are saved like any
other. Estimates of when a queued job starts come from the running jobs' own ETAs plus, for the jobs ahead, their
settings divided by the images per second measured for their architecture on this server.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from mnist_core.i18n import M_, Mn_, message_of
from mnist_core.jobs.job import ENDED, Job, JobOutcome, JobRefused, JobSnapshot, JobSpec, JobStatus
from mnist_core.jobs.runner import RunHandle, Runner
from mnist_core.limits import Limits
from mnist_core.constants import MODELS_DIR
from mnist_core.store import MAX_NAME_LENGTH, remove_stale_temporaries, unique_name
from mnist_core.training import TrainConfig
from mnist_core.visitors import Visitor

# Images per second before this server has measured any (2 cores, from BENCHMARKS.md; corrected by measurement).
DEFAULT_IMAGES_PER_SECOND = {"mlp": 40_000.0, "quick": 14_000.0, "cnn": 7_500.0, "cnn3": 7_000.0, "lenet5": 12_000.0, "strong": 1_500.0}
FALLBACK_IMAGES_PER_SECOND = 5_000.0
AUGMENTED_SLOWDOWN = 2.0  # augmentation roughly halves the images per second of the small CNNs
# Seconds a job spends outside its epochs: a worker's start-up (data, model, first batch) and the final
# evaluation and save.
OVERHEAD_SECONDS = 6.0
MEASURE_WEIGHT = 0.5  # how much a new measurement moves the estimate (exponential average)
KEEP_ENDED = 50  # ended jobs kept for their owners to read how they ended


class QueueFullError(JobRefused):
    pass


class AlreadyQueuedError(JobRefused):
    pass


class NotYoursError(JobRefused):
    pass


class QuotaError(JobRefused):
    pass


@dataclass(frozen=True)
class QueueEntry:
    """A queued job, its place (1 = next to start) and the estimated seconds until it starts."""

    position: int
    snapshot: JobSnapshot
    starts_in_seconds: float


def _estimate_key(config: TrainConfig) -> tuple[str, str, bool]:
    return config.architecture, config.precision, config.augment


class Scheduler:
    """Holds every job of this server that saves into `models_dir`: queued, running and recently ended.
    Thread-safe."""

    def __init__(self, runner: Runner, models_dir: Path | str = MODELS_DIR, limits: Limits | None = None,
                 clock=time.time):
        self.runner = runner
        self.models_dir = Path(models_dir)
        self.limits = limits or Limits()
        self._clock = clock
        self._lock = threading.RLock()
        self._queue: deque[Job] = deque()
        self._running: dict[str, tuple[Job, RunHandle | None]] = {}
        self._ended: deque[Job] = deque(maxlen=KEEP_ENDED)
        self._started_by: dict[str, deque[float]] = {}  # visitor id -> times their trainings were accepted
        self._measured: dict[tuple[str, str, bool], float] = {}  # images per second, by architecture/precision/augment
        # A server killed mid-save left hidden temporary files in the store; the next server's queue clears them.
        remove_stale_temporaries(self.models_dir)
        # A runner whose slots change by themselves (a Ray cluster gaining a node) says so: queued jobs start then.
        watch_slots = getattr(runner, "on_slots_change", None)
        if watch_slots is not None:
            watch_slots(self.dispatch)

    # --- what visitors do ----------------------------------------------------------------------------------------

    def submit(self, config: TrainConfig, model_name: str, visitor: Visitor, kind: str = "train",
               extra: tuple[tuple[str, object], ...] = ()) -> Job:
        """Queue a job for `visitor` (it starts at once if a slot is free): a training by default, or another `kind`
        of work (work.py's WORK) with its `extra` values. Raises a JobRefused subclass."""
        if config.epochs > self.limits.max_epochs or config.train_size > self.limits.max_train_size:
            raise QuotaError(M_("This server allows at most {epochs} epochs and {images:,} training images per "
                                "training.", epochs=self.limits.max_epochs, images=self.limits.max_train_size))
        with self._lock:
            self._check_rate(visitor)
            self._check_store(visitor)
            self.runner.admit(config)
            theirs = [job for job in [*self._queue, *(job for job, _ in self._running.values())]
                      if job.spec.owner_id == visitor.id]
            if len(theirs) >= self.limits.max_jobs_per_visitor and not visitor.admin:
                name = repr(theirs[0].spec.model_name)
                raise AlreadyQueuedError(
                    M_("Your training {name} is still waiting: cancel it to start another, or wait until it ends.",
                       name=name) if theirs[0].status == JobStatus.QUEUED else
                    M_("Your training {name} is still running: stop it to start another, or wait until it ends.",
                       name=name))
            free_slot = len(self._running) < self.runner.slots and not self._queue
            if not free_slot and len(self._queue) >= self.limits.max_queue:
                raise QueueFullError(M_("The training queue is full ({count} waiting): try again when some have "
                                        "started.", count=len(self._queue)))
            # A name already taken gets a number (the job falls back again at save time if another takes it meanwhile).
            name = self._free_name(model_name)
            job = Job(JobSpec(config, name, str(self.models_dir), visitor.id, visitor.name, kind=kind, extra=extra),
                      clock=self._clock)
            self._started_by.setdefault(visitor.id, deque()).append(self._clock())
            self._queue.append(job)
            self._dispatch()
            return job

    def stop(self, job_id: str, visitor: Visitor) -> None:
        """Stop a running job at its next batch (its model so far is saved), or take a queued one out."""
        with self._lock:
            job, handle = self._find(job_id)
            if not visitor.may_manage(job.spec.owner_id):
                raise NotYoursError(M_("Only the person who started this training (or an admin) can stop it."))
            if job.status == JobStatus.QUEUED:
                self._remove_queued(job)
                return
            job.request_stop()
        if handle is not None:
            handle.stop()

    def cancel(self, job_id: str, visitor: Visitor) -> None:
        """Take a queued job out of the queue (nothing was trained, nothing is saved)."""
        with self._lock:
            job, _ = self._find(job_id)
            if not visitor.may_manage(job.spec.owner_id):
                raise NotYoursError(M_("Only the person who queued this training (or an admin) can cancel it."))
            if job.status != JobStatus.QUEUED:
                raise JobRefused(M_("This training is no longer waiting: stop it instead."))
            self._remove_queued(job)

    def dispatch(self) -> None:
        """Start queued jobs if the runner has free slots now (its slots grew)."""
        with self._lock:
            self._dispatch()

    def warm_up(self) -> None:
        """Someone may train soon (they opened the Train page): let the runner get a worker ready."""
        self.runner.warm_up()

    # --- what pages read -----------------------------------------------------------------------------------------

    def running(self) -> list[Job]:
        with self._lock:
            return [job for job, _ in self._running.values()]

    def queued(self) -> list[Job]:
        with self._lock:
            return list(self._queue)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            for job in [*self._queue, *(job for job, _ in self._running.values()), *self._ended]:
                if job.job_id == job_id:
                    return job
        return None

    def latest_for(self, visitor: Visitor, kinds: tuple[str, ...] | None = None) -> Job | None:
        """The visitor's most recent job (queued, running, or ended), of one of `kinds` if given."""
        with self._lock:
            for job in [*reversed(self._queue), *(job for job, _ in reversed(self._running.values())),
                        *reversed(self._ended)]:
                if job.spec.owner_id == visitor.id and (kinds is None or job.spec.kind in kinds):
                    return job
        return None

    def current(self) -> Job | None:
        """A running job to watch (the one started first), else the job that ended last, else None."""
        with self._lock:
            if self._running:
                return next(iter(self._running.values()))[0]
            return self._ended[-1] if self._ended else None

    def queue_view(self) -> list[QueueEntry]:
        """The queued jobs in order, with positions and estimated waits."""
        with self._lock:
            queued = list(self._queue)
            waits = self._start_estimates(queued)
        return [QueueEntry(index + 1, job.snapshot(), waits[index]) for index, job in enumerate(queued)]

    def estimate_seconds(self, config: TrainConfig) -> float:
        """How long a job with `config` should take on this server, start-up and saving included."""
        key = _estimate_key(config)
        with self._lock:
            rate = self._measured.get(key)
        if rate is None:
            rate = DEFAULT_IMAGES_PER_SECOND.get(config.architecture, FALLBACK_IMAGES_PER_SECOND)
            if config.augment:
                rate /= AUGMENTED_SLOWDOWN
        images = config.train_size * (1 - (config.validation_split if config.validation == "split" else 0))
        return OVERHEAD_SECONDS + config.epochs * images / rate

    def shutdown(self) -> None:
        with self._lock:
            for job in list(self._queue):
                self._remove_queued(job)
        self.runner.shutdown()

    # --- inside ----------------------------------------------------------------------------------------------------

    def _check_rate(self, visitor: Visitor) -> None:
        if visitor.admin:
            return
        times = self._started_by.setdefault(visitor.id, deque())
        hour_ago = self._clock() - 3600
        while times and times[0] < hour_ago:
            times.popleft()
        if len(times) >= self.limits.trainings_per_hour:
            wait = int(times[0] + 3600 - self._clock()) // 60 + 1
            raise QuotaError(Mn_("You have started {count} training in the last hour, this server's limit: try "
                                 "again in about {minutes} min.",
                                 "You have started {count} trainings in the last hour, this server's limit: try "
                                 "again in about {minutes} min.", len(times), minutes=wait))

    def _free_name(self, base: str) -> str:
        """`base` or the next numbered name free in the store and among the queued and running jobs."""
        taken = {job.spec.model_name for job in [*self._queue, *(job for job, _ in self._running.values())]}
        name = unique_name(base, self.models_dir)
        number = 1
        while name in taken:
            number += 1
            name = unique_name(f"{base[:MAX_NAME_LENGTH - 6]}-{number}", self.models_dir)
        return name

    def _check_store(self, visitor: Visitor) -> None:
        """Room in the store for one more model: the visitor's own quota and the store's count and size."""
        from mnist_core.store import list_models

        entries = list_models(self.models_dir)
        pending = len(self._queue) + len(self._running)
        if not visitor.admin:
            kept = sum(1 for entry in entries if entry.info is not None and entry.info.owner_id == visitor.id)
            if kept >= self.limits.models_per_visitor:
                raise QuotaError(Mn_(
                    "You keep {count} model on this server, its limit per person: delete it on the Models page "
                    "(download it first if you want to keep it) to train another.",
                    "You keep {count} models on this server, its limit per person: delete one on the Models page "
                    "(download it first if you want to keep it) to train another.", kept))
        if len(entries) + pending >= self.limits.store_max_models:
            raise QuotaError(M_("The model store is full ({count} models): ask an admin to make room, or delete one "
                                "of yours.", count=len(entries)))
        size_mb = sum(path.stat().st_size for path in self.models_dir.glob("*") if path.is_file()) / 2**20
        if size_mb >= self.limits.store_max_mb:
            raise QuotaError(M_("The model store is full ({size:,.0f} MB of {limit:,} MB): ask an admin to make "
                                "room, or delete one of yours.", size=size_mb, limit=self.limits.store_max_mb))

    def _find(self, job_id: str) -> tuple[Job, RunHandle | None]:
        if job_id in self._running:
            return self._running[job_id]
        for job in self._queue:
            if job.job_id == job_id:
                return job, None
        for job in self._ended:
            if job.job_id == job_id:
                raise JobRefused(M_("This training has already ended."))
        raise JobRefused(M_("There is no such training on this server."))

    def _remove_queued(self, job: Job) -> None:
        self._queue.remove(job)
        job.end(JobOutcome(JobStatus.CANCELLED, error=M_("Taken out of the queue before it started.")))
        self._ended.append(job)

    def _dispatch(self) -> None:
        """Start queued jobs while the runner has free slots (called with the lock held)."""
        while self._queue and len(self._running) < self.runner.slots:
            job = self._queue.popleft()
            job.mark_running()
            self._running[job.job_id] = (job, None)
            try:
                handle = self.runner.run(job, self._on_end)
            except Exception as error:  # a runner that cannot start must not wedge the queue
                self._running.pop(job.job_id, None)
                job.end(JobOutcome(JobStatus.FAILED, error=M_("The training could not be started: {error}",
                                                              error=message_of(error))))
                self._ended.append(job)
                continue
            if job.job_id in self._running:  # it may have ended already, inside run()
                self._running[job.job_id] = (job, handle)
                if job.stop_requested:
                    handle.stop()

    def _on_end(self, job: Job) -> None:
        with self._lock:
            self._learn_speed(job)
            if self._running.pop(job.job_id, None) is not None:
                self._ended.append(job)
            if not job.done:  # a runner that forgot: never leave a job "running" forever
                job.end(JobOutcome(JobStatus.FAILED, error=M_("The training ended without saying how.")))
            self._dispatch()

    def _learn_speed(self, job: Job) -> None:
        """Fold the images per second a job reached into the estimate for its kind of job."""
        snapshot = job.snapshot()
        speeds = [event.images_per_second for event in snapshot.batches[len(snapshot.batches) // 2:]
                  if event.images_per_second > 0]
        if len(speeds) < 3:
            return
        speeds.sort()
        measured = speeds[len(speeds) // 2]
        key = _estimate_key(snapshot.config)
        previous = self._measured.get(key)
        self._measured[key] = measured if previous is None else (1 - MEASURE_WEIGHT) * previous + MEASURE_WEIGHT * measured

    def _job_seconds(self, job: Job) -> float:
        """A whole job's estimated seconds: a training's from its settings; other work (an import) is about a
        worker's start-up and an evaluation."""
        if job.spec.kind != "train":
            return 2 * OVERHEAD_SECONDS
        return self.estimate_seconds(job.spec.config)

    def _remaining_seconds(self, job: Job) -> float:
        snapshot = job.snapshot()
        if snapshot.latest is None:
            return max(0.0, self._job_seconds(job) - snapshot.elapsed_seconds)
        return snapshot.latest.eta_seconds + OVERHEAD_SECONDS / 2  # evaluation and saving still to come

    def _start_estimates(self, queued: list[Job]) -> list[float]:
        """Seconds until each queued job starts: each takes the slot that frees first (called with the lock)."""
        free_at = [self._remaining_seconds(job) for job, _ in self._running.values()]
        free_at += [0.0] * max(0, self.runner.slots - len(free_at))
        heapq.heapify(free_at)
        starts = []
        for job in queued:
            start = heapq.heappop(free_at)
            starts.append(start)
            heapq.heappush(free_at, start + self._job_seconds(job))
        return starts

    @staticmethod
    def is_ended(status: JobStatus) -> bool:
        return status in ENDED
