"""Jobs in worker processes on this machine: the web server never imports TensorFlow, the workers do.

A worker is a spawned Python process (worker.py's `worker_main`) that imports TensorFlow, loads MNIST and then
runs jobs one after the other, sending progress events back over a pipe. The runner keeps at most `slots`
workers busy; a worker that is idle for `idle_seconds` is told to exit, so an idle app gives its memory back.
`warm_up()` starts a worker before it is needed (the Train page calls it), so a click on Start does not wait for
TensorFlow to import.

A worker that dies (out of memory, killed, crashed) fails its job with a plain message; the next job gets a fresh
worker. A worker whose server dies sees its pipe close and exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from mnist_core.hardware import container, usable_cores
from mnist_core.i18n import M_, Message, gettext as _
from mnist_core.jobs.job import Job, JobOutcome, JobStatus, NotEnoughMemoryError
from mnist_core.jobs.memory import fits
from mnist_core.jobs.work import SAVING

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 5.0  # after a cancel, how long a worker may take to exit before it is killed


def describe_exit(exitcode: int | None) -> Message:
    """Why a worker process ended, in words for the person whose job it ran."""
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        if number == signal.SIGKILL:
            return M_("The training worker was killed (most likely it ran out of memory): nothing was saved. "
                      "Fewer training images or a smaller batch need less memory.")
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        if number == signal.SIGABRT:
            return M_("The training worker crashed ({signal}, often a failed memory allocation): nothing was saved. "
                      "Fewer training images or a smaller batch need less memory.", signal=name)
        return M_("The training worker ended unexpectedly ({signal}): nothing was saved.", signal=name)
    return M_("The training worker ended unexpectedly (exit code {code}): nothing was saved.", code=exitcode)


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.Process
    connection: object  # multiprocessing.connection.Connection, the server's end
    job: Job | None = None
    on_end: Callable[[Job], None] | None = None
    cancelled: bool = False
    broken: Message | None = None  # why the worker could not start, as it said before it exited
    idle_timer: threading.Timer | None = None
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message) -> bool:
        try:
            with self.send_lock:
                self.connection.send(message)
            return True
        except (OSError, EOFError, BrokenPipeError):
            return False


class _Handle:
    def __init__(self, runner: LocalRunner, worker: _Worker, job: Job):
        self._runner, self._worker, self._job = runner, worker, job

    def stop(self) -> None:
        self._worker.send(("stop", self._job.job_id))

    def cancel(self) -> None:
        self._runner._cancel(self._worker, self._job)


class LocalRunner:
    """Runs jobs in up to `slots` worker processes of this machine (see the module docstring)."""

    def __init__(self, slots: int = 1, idle_seconds: float = 180.0, memory_limit_mb: int = 0,
                 threads: int | None = None):
        self.slots = slots
        self.idle_seconds = idle_seconds
        self.memory_limit_mb = memory_limit_mb
        self.threads = threads or usable_cores()
        self._context = multiprocessing.get_context("spawn")  # never fork a process full of server threads
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False

    # --- Runner ----------------------------------------------------------------------------------------------------

    def run(self, job: Job, on_end: Callable[[Job], None]) -> _Handle:
        with self._lock:
            if self._closed:
                raise RuntimeError("the runner is shut down")
            worker = self._take_idle() or self._spawn()
            worker.job, worker.on_end, worker.cancelled = job, on_end, False
            self._busy.add(worker)
        if not worker.send(("job", job.spec)):
            # The worker died while idle; its reader thread fails the job when it sees the pipe closed.
            log.warning("worker %s was gone when job %s was sent", worker.process.pid, job.job_id)
        return _Handle(self, worker, job)

    def admit(self, config) -> None:
        """Refuse a job whose estimated peak memory does not fit beside what this container already uses (a worker
        that is already running is counted as used, and the job would run in it)."""
        with self._lock:
            worker_ready = bool(self._idle or self._busy)
        available = container().memory_available
        ok, needed = fits(config, available, worker_ready)
        if not ok:
            raise NotEnoughMemoryError(M_(
                "This training would need about {needed:,.0f} MB of memory and this server has {available:,.0f} MB "
                "free: fewer training images or a smaller batch need less.", needed=needed / 2**20,
                available=available / 2**20))

    def warm_up(self) -> None:
        with self._lock:
            if self._closed or self._idle or len(self._busy) >= self.slots:
                return  # a worker is ready, or every slot is busy (a busy worker takes the next job)
            worker = self._spawn()
            self._make_idle(worker)

    def describe(self) -> str:
        with self._lock:
            running = len(self._idle) + len(self._busy)
        return _("worker processes on this server: {slots} at a time, {threads} CPU thread(s) each, {running} "
                 "running now").format(slots=self.slots, threads=self.threads, running=running)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
        for worker in workers:
            if worker.idle_timer is not None:
                worker.idle_timer.cancel()
            if worker.job is not None:
                self._cancel(worker, worker.job)
            else:
                worker.send(("exit",))
        for worker in workers:
            worker.process.join(STOP_GRACE_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for tests and the memory benchmark)."""
        with self._lock:
            return [worker.process.pid for worker in [*self._idle, *self._busy] if worker.process.is_alive()]

    # --- inside ----------------------------------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        from mnist_core.jobs.worker import worker_main

        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=worker_main, args=(child_end, self.threads, self.memory_limit_mb),
            name="mnist-lab-training-worker", daemon=True,
        )
        process.start()
        child_end.close()  # the child has its own copy; ours would keep the pipe open after the child died
        worker = _Worker(process, parent_end)
        threading.Thread(target=self._read, args=(worker,), name=f"worker-{process.pid}-reader", daemon=True).start()
        return worker

    def _take_idle(self) -> _Worker | None:
        while self._idle:
            worker = self._idle.pop()
            if worker.idle_timer is not None:
                worker.idle_timer.cancel()
                worker.idle_timer = None
            if worker.process.is_alive():
                return worker
        return None

    def _make_idle(self, worker: _Worker) -> None:
        """Park a worker for the next job (called with the lock held); it is told to exit when idle too long."""
        worker.idle_timer = threading.Timer(self.idle_seconds, self._retire, args=(worker,))
        worker.idle_timer.daemon = True
        worker.idle_timer.start()
        self._idle.append(worker)

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            if worker not in self._idle:
                return  # it was given a job meanwhile
            self._idle.remove(worker)
        worker.send(("exit",))

    def _cancel(self, worker: _Worker, job: Job) -> None:
        worker.cancelled = True
        worker.send(("stop", job.job_id))
        worker.process.terminate()

    def _read(self, worker: _Worker) -> None:
        """The worker's messages, until its pipe closes: progress into the job, the end to the scheduler."""
        while True:
            try:
                message = worker.connection.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            job = worker.job
            if kind == "event" and job is not None:
                if message[1] == SAVING:
                    job.mark_saving()
                else:
                    job.record(message[1])
            elif kind == "done" and job is not None:
                self._finish(worker, job, message[1], reusable=True)
            elif kind == "ready":
                log.info("training worker %s ready", worker.process.pid)
            elif kind == "broken":
                worker.broken = message[1]
        worker.process.join(STOP_GRACE_SECONDS)
        job = worker.job
        if job is not None:
            if worker.cancelled:
                outcome = JobOutcome(JobStatus.CANCELLED, error=M_("Cancelled while it ran: nothing was saved."))
            elif worker.broken is not None:
                outcome = JobOutcome(JobStatus.FAILED, error=worker.broken)
                log.error("training worker %s could not start: %s", worker.process.pid, worker.broken)
            else:
                outcome = JobOutcome(JobStatus.FAILED, error=describe_exit(worker.process.exitcode))
                log.error("training worker %s died running job %s: exit code %s", worker.process.pid, job.job_id,
                          worker.process.exitcode)
            self._finish(worker, job, outcome, reusable=False)
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
        worker.connection.close()

    def _finish(self, worker: _Worker, job: Job, outcome: JobOutcome, reusable: bool) -> None:
        on_end = worker.on_end
        with self._lock:
            worker.job = worker.on_end = None
            self._busy.discard(worker)
            if reusable and not self._closed and worker.process.is_alive():
                self._make_idle(worker)
        job.end(outcome)
        if on_end is not None:
            on_end(job)
