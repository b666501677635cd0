"""The interface between the queue and whatever runs jobs: a Runner starts a Job and reports back into it.

Two implementations: local.py (worker processes on this machine, the default) and, when a cluster is configured,
ray.py (tasks on a Ray cluster). The scheduler only ever talks to this interface, so replacing how jobs run (a task queue, a cluster)
means writing one more Runner, not touching the queue or the pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from mnist_core.jobs.job import Job


class RunHandle(Protocol):
    def stop(self) -> None:
        """Ask the job to end at the next batch and save what it trained (the Stop button)."""

    def cancel(self) -> None:
        """End the job now, saving nothing (an admin's abort, a server shutting down)."""


class Runner(Protocol):
    """Optionally also `on_slots_change(listener)`: a runner whose `slots` change by themselves (ray.py: a node joins
    the cluster) calls `listener()` after each change, and the scheduler starts queued jobs then."""

    slots: int  # how many jobs can run at once (may be a property read each time)

    def run(self, job: Job, on_end: Callable[[Job], None]) -> RunHandle:
        """Start `job` now. Its progress goes into `job.record`, its start into `job.mark_running()` and its end
        into `job.end(...)`; after the end (however it came: finished, stopped, failed, worker lost) the runner
        calls `on_end(job)` exactly once, from any thread."""

    def admit(self, config) -> None:
        """Raise NotEnoughMemoryError (job.py) if a job with this TrainConfig cannot run where this runner runs jobs
        (for example its estimated memory does not fit beside what the machine already uses); else return."""

    def warm_up(self) -> None:
        """Get ready for a job soon (for example start a worker that imports TensorFlow); returns at once."""

    def describe(self) -> str:
        """Where jobs run, for people ("2 worker processes on this server", "Ray cluster at ...")."""

    def shutdown(self) -> None:
        """Cancel what runs and release every worker."""
