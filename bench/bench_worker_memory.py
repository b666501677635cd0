"""Memory of a training worker process: what the queue's memory estimate (mnist_core/jobs/memory.py) is
calibrated on.

For each architecture and batch size, a fresh worker (mnist_core.jobs.LocalRunner, as the app starts them) runs one
epoch on a subset of the training images; its VmRSS when ready (TensorFlow imported, MNIST loaded) and its VmHWM
(peak RSS) after the job are read from /proc/PID/status. The table shows the measured peak beside the estimate.

Run from the project root (about three minutes):

    .venv/bin/python bench/bench_worker_memory.py
    .venv/bin/python bench/bench_worker_memory.py --train-size 60000 --architectures cnn --batch-sizes 128
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import benchlib  # noqa: F401  (puts the project on sys.path)
from benchlib import print_header, print_table

from mnist_core.jobs import LocalRunner, Scheduler
from mnist_core.jobs.memory import estimate_peak_bytes
from mnist_core.limits import Limits
from mnist_core.training import TrainConfig
from mnist_core.visitors import Visitor

MIB = 2**20


def status_of(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) / 1024 for key in ("VmRSS", "VmHWM")}


def measure(config: TrainConfig) -> tuple[float, float]:
    """(RSS when ready, peak RSS after the job) of a fresh worker, in MiB."""
    with tempfile.TemporaryDirectory(prefix="bench-worker-memory-") as store:
        runner = LocalRunner(idle_seconds=60)
        queue = Scheduler(runner, store, Limits(max_jobs_per_visitor=10))
        try:
            queue.warm_up()
            [pid] = runner.worker_pids()
            ready = None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the worker is ready when its RSS stops growing
                first = status_of(pid)["VmRSS"]
                time.sleep(1.0)
                second = status_of(pid)["VmRSS"]
                if second > 300 and abs(second - first) < 2:
                    ready = second
                    break
            job = queue.submit(config, "bench", Visitor("bench000bench000", "bench"))
            job.wait(1800)
            if job.snapshot().error:
                raise RuntimeError(job.snapshot().error)
            return ready, status_of(pid)["VmHWM"]
        finally:
            queue.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--architectures", nargs="+", default=["mlp", "cnn", "cnn3", "lenet5", "strong"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 512])
    args = parser.parse_args()

    print_header("Training worker memory: ready and peak RSS, one epoch")
    rows = []
    for architecture in args.architectures:
        for batch_size in args.batch_sizes:
            config = TrainConfig(architecture=architecture, epochs=1, batch_size=batch_size,
                                 train_size=args.train_size, augment=architecture == "strong", precision="float32")
            ready, peak = measure(config)
            estimate = estimate_peak_bytes(config) / MIB
            rows.append([architecture, batch_size, f"{args.train_size:,}", f"{ready:,.0f}", f"{peak:,.0f}",
                         f"{estimate:,.0f}", f"{estimate / peak:.2f}"])
            print(" | ".join(map(str, rows[-1])), flush=True)
    print()
    print_table(["architecture", "batch", "images", "ready MiB", "peak MiB", "estimate MiB", "estimate/peak"], rows)


if __name__ == "__main__":
    main()
