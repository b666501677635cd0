"""Training jobs: the job and its snapshots (job.py), the work a job does (work.py), the queue (queue.py),
the runner interface (runner.py) and the runner that uses worker processes on this machine (local.py).

Only work.py and worker.py import TensorFlow, inside functions, and only worker processes call them.
"""

from mnist_core.jobs.job import (
    MAX_BATCH_POINTS,
    Job,
    JobOutcome,
    JobRefused,
    JobSnapshot,
    JobSpec,
    JobStatus,
    NotEnoughMemoryError,
)
from mnist_core.jobs.local import LocalRunner
from mnist_core.jobs.queue import (
    AlreadyQueuedError,
    NotYoursError,
    QueueEntry,
    QueueFullError,
    QuotaError,
    Scheduler,
)
from mnist_core.jobs.work import run_job, save_trained_model

__all__ = [
    "MAX_BATCH_POINTS",
    "AlreadyQueuedError",
    "Job",
    "JobOutcome",
    "JobRefused",
    "JobSnapshot",
    "JobSpec",
    "JobStatus",
    "LocalRunner",
    "NotEnoughMemoryError",
    "NotYoursError",
    "QueueEntry",
    "QueueFullError",
    "QuotaError",
    "Scheduler",
    "run_job",
    "save_trained_model",
]
