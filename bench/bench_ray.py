"""The same 8 small training jobs through the local runner and through a local Ray cluster with 2 workers (issue 19).

Each run is a fresh "web server" process (this script with --run): a Scheduler with the runner under test gets
8 jobs from 8 visitors at once and waits for all of them, as a classroom pressing Start together would. Figures:

- wall: first submit to last end; jobs/hour from it;
- per-job overhead: a job's running time minus its training time (the `train_seconds` in its saved JSON): worker
  start-up and TensorFlow's import where it happens, data, model building, evaluation, saving, and on Ray the task's
  scheduling and the model's bytes coming back;
- server RSS: the server process' peak (VmHWM) and end RSS; for Ray this includes `import ray`, the driver's
  connection and the one `ray.put` of MNIST;
- the cluster: the Ray node's processes (head, no workers) when idle, and the workers' summed peak PSS
  (proportional set size: shared pages split among the processes that share them).

Runners: "local-1" is the app's default (one worker process, all cores), "local-2" two worker processes with one
thread each, "ray-2" a Ray head started here with --num-cpus=2 (tests/ray_cluster.py: token required), 1 CPU per
job. The configurations alternate, --repeats times each; the table shows medians.

    .venv/bin/python bench/bench_ray.py                 # about 5-10 minutes on 2 cores
    .venv/bin/python bench/bench_ray.py --repeats 1 --runners ray-2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchlib  # noqa: F401  (puts the project on sys.path)
from benchlib import PROJECT_ROOT, load_average, print_header, print_table

JOBS = 8
CONFIG = dict(architecture="cnn", epochs=1, batch_size=64, train_size=6000)
MIB = 2**20


def rss_of(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB; (0, 0) if it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0.0
    values = [re.search(rf"{key}:\s+(\d+) kB", status) for key in ("VmRSS", "VmHWM")]
    return tuple(int(found.group(1)) / 1024 if found else 0.0 for found in values)


def pss_of(pid: int) -> float:
    """Proportional set size in MiB (shared pages divided among their users, so a sum over processes is honest)."""
    try:
        found = re.search(r"^Pss:\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.MULTILINE)
    except OSError:
        return 0.0
    return int(found.group(1)) / 1024 if found else 0.0


def descendants(root: int, table: list[tuple[int, int, int, str]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, parent, _, _ in table:
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def processes() -> list[tuple[int, int, int, str]]:
    """(pid, parent pid, process group, command) of every process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append((int(stat.parent.name), int(fields[1]), int(fields[2]), command))
        except (OSError, IndexError, ValueError):
            continue
    return found


class WorkerMemory:
    """Samples the summed PSS of the training workers twice a second (`pick(table)` gives their pids: Ray's
    workers under the head, or this process' worker children); `peak` in MiB."""

    def __init__(self, pick):
        self.pick, self.peak = pick, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.5):
            total = sum(pss_of(pid) for pid in self.pick(processes()))
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak


def run_once(runner_name: str) -> dict:
    """One run in this process (the --run mode): 8 jobs through `runner_name`; returns the figures."""
    from mnist_core.jobs import JobStatus, LocalRunner, Scheduler
    from mnist_core.limits import Limits
    from mnist_core.training import TrainConfig
    from mnist_core.visitors import Visitor

    start_rss = rss_of(os.getpid())[0]
    if runner_name.startswith("ray"):
        from mnist_core.jobs.ray import RayRunner, disconnect

        runner = RayRunner(os.environ["MNIST_LAB_RAY_ADDRESS"])
        connect_started = time.perf_counter()
        if not runner.wait_until_connected(300):
            raise SystemExit(f"no Ray connection: {runner.describe()}")
        connect_seconds = time.perf_counter() - connect_started
        head = int(os.environ["BENCH_RAY_HEAD_PID"])

        def ray_workers(table):
            below = descendants(head, table)
            return [pid for pid, _, _, command in table if pid in below and is_worker(command)]

        workers = WorkerMemory(ray_workers)
    else:
        slots = int(runner_name.split("-")[1])
        runner = LocalRunner(slots=slots, threads=max(1, 2 // slots))
        connect_seconds = 0.0
        me = os.getpid()
        workers = WorkerMemory(lambda table: [pid for pid, parent, _, command in table
                                              if parent == me and "multiprocessing" in command])
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as store:
        queue = Scheduler(runner, store, Limits(max_jobs_per_visitor=JOBS, max_queue=JOBS))
        config = TrainConfig(**CONFIG)
        started = time.perf_counter()
        jobs = [queue.submit(config, f"job-{number}", Visitor(f"{number:016x}", f"visitor-{number}"))
                for number in range(JOBS)]
        for job in jobs:
            job.wait(1800)
        wall = time.perf_counter() - started
        overheads = []
        for job in jobs:
            snapshot = job.snapshot()
            if snapshot.status != JobStatus.FINISHED:
                raise SystemExit(f"job {snapshot.model_name} ended {snapshot.status.value}: {snapshot.error}")
            info = json.loads((Path(store) / f"{snapshot.saved_name}.json").read_text())
            overheads.append(snapshot.elapsed_seconds - info["train_seconds"])
        end_rss, peak_rss = rss_of(os.getpid())
        worker_peak = workers.stop()
        queue.shutdown()
    if runner_name.startswith("ray"):
        disconnect()
    return {"runner": runner_name, "wall": wall, "overhead": statistics.median(overheads),
            "overhead_max": max(overheads), "start_rss": start_rss, "end_rss": end_rss, "peak_rss": peak_rss,
            "worker_peak": worker_peak, "connect": connect_seconds, "load": load_average()}


def in_a_process(runner_name: str, env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, __file__, "--run", runner_name], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"{runner_name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def node_memory(head: int) -> tuple[float, float]:
    """(summed PSS, summed RSS) in MiB of a Ray head's processes (`ray start` and what it started), workers left
    out: what a node costs before any job."""
    table = processes()
    below = descendants(head, table) | {head}
    pids = [pid for pid, _, _, command in table if pid in below and not is_worker(command)]
    return sum(pss_of(pid) for pid in pids), sum(rss_of(pid)[0] for pid in pids)


def is_worker(command: str) -> bool:
    """A Ray worker process (ray::IDLE, ray::<task>), not one of the node's agents (ray::DashboardAgent, ...)."""
    return command.startswith("ray::") and "Agent" not in command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runners", nargs="+", default=["local-1", "local-2", "ray-2"])
    parser.add_argument("--run", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.run:
        print(json.dumps(run_once(options.run)))
        return

    print_header(f"{JOBS} jobs ({CONFIG}) through the local runner and a local Ray cluster")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("MNIST_LAB_RAY_ADDRESS", None)
    head = None
    idle_node = (float("nan"), float("nan"))
    if any(name.startswith("ray") for name in options.runners):
        from tests.ray_cluster import LocalHead

        head = LocalHead(num_cpus=2).start()
        time.sleep(5)  # let the node's agents settle before reading its memory
        idle_node = node_memory(head.process.pid)
    try:
        results: dict[str, list[dict]] = {name: [] for name in options.runners}
        for repeat in range(options.repeats):
            for name in options.runners:
                run_env = dict(env)
                if name.startswith("ray"):
                    run_env.update(head.environment(), MNIST_LAB_RAY_ADDRESS=head.address,
                                   BENCH_RAY_HEAD_PID=str(head.process.pid))
                figures = in_a_process(name, run_env)
                results[name].append(figures)
                print(f"  run {repeat + 1} {name}: wall {figures['wall']:.1f} s, overhead {figures['overhead']:.1f} s, "
                      f"server peak {figures['peak_rss']:.0f} MiB, workers' peak {figures['worker_peak']:.0f} MiB, "
                      f"load {figures['load']:.1f}", flush=True)
    finally:
        if head is not None:
            head.stop()

    rows = []
    for name, runs in results.items():
        wall = statistics.median(run["wall"] for run in runs)
        rows.append([
            name, f"{wall:.1f}", f"{JOBS * 3600 / wall:,.0f}",
            f"{statistics.median(run['overhead'] for run in runs):.1f} "
            f"(max {max(run['overhead_max'] for run in runs):.1f})",
            f"{statistics.median(run['start_rss'] for run in runs):.0f} -> "
            f"{statistics.median(run['peak_rss'] for run in runs):.0f} peak, "
            f"{statistics.median(run['end_rss'] for run in runs):.0f} end",
            f"{statistics.median(run['worker_peak'] for run in runs):.0f}",
            f"{statistics.median(run['connect'] for run in runs):.1f}" if name.startswith("ray") else "-",
            ", ".join(f"{run['load']:.1f}" for run in runs),
        ])
    print_table(["runner", "wall s", "jobs/hour", "per-job overhead s", "server RSS MiB", "workers' peak PSS MiB",
                 "connect s", "load after each run"], rows)
    if head is not None:
        print(f"Ray head node (ray start, gcs, raylet, agents, monitors; no workers) when idle: {idle_node[0]:.0f} MiB "
              f"PSS ({idle_node[1]:.0f} MiB summed RSS, which counts shared libraries once per process)")


if __name__ == "__main__":
    main()
