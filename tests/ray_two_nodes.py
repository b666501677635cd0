"""Run one tiny job on a two-node Ray cluster made by `ray.cluster_utils.Cluster`, and print what happened as JSON.

Run as a script by tests/test_ray_runner.py (a process connects to one Ray cluster only, and the test process is
connected to the session's head). The head has no CPUs, so the job must run on the second node, whose workers get a
temporary folder of their own (TMPDIR); the web server's store is another folder. Usage:
    python tests/ray_two_nodes.py STORE_DIR WORKER_DISK
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(store: Path, worker_disk: Path) -> dict:
    from ray.cluster_utils import Cluster

    from mnist_core.jobs import JobStatus, Scheduler
    from mnist_core.jobs.ray import RayRunner, disconnect
    from mnist_core.limits import Limits
    from mnist_core.training import TrainConfig
    from mnist_core.visitors import Visitor

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        worker_node = cluster.add_node(num_cpus=1, env_vars={"TMPDIR": str(worker_disk)})
        cluster.wait_for_nodes()
        runner = RayRunner(cluster.address)
        if not runner.wait_until_connected(180):
            raise SystemExit(f"no connection: {runner.describe()}")
        queue = Scheduler(runner, store, Limits())
        job = queue.submit(TrainConfig(architecture="mlp", epochs=1, batch_size=32, train_size=300), "two-nodes",
                           Visitor("a11ce000a11ce000", "visitor-a11c"))
        described = runner.describe()
        job.wait(600)
        snapshot = job.snapshot()
        report = {
            "status": snapshot.status.value,
            "error": snapshot.error,
            "saved_name": snapshot.saved_name,
            "batches": len(snapshot.batches),
            "placement": runner.placement(job.job_id),
            "head_node_id": cluster.head_node.node_id,
            "worker_node_id": worker_node.node_id,
            "described": described,
            "finished": snapshot.status == JobStatus.FINISHED,
        }
        queue.shutdown()
        disconnect()
        return report
    finally:
        cluster.shutdown()
        time.sleep(1)


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
