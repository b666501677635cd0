"""mnist_core/jobs/ray.py: training jobs on a real local Ray cluster (the session's `ray_head`, 2 CPUs, token
required), driven through the same queue as the app: two at once, progress while they run, Stop keeps the model,
a queued job cancelled, a running one aborted; a two-node cluster where the worker's disk is not the server's; and
without MNIST_LAB_RAY_ADDRESS nothing imports ray.

mnist_core.jobs.ray is imported inside the tests, after `ray_head` has put the token into the environment (Ray
reads its authentication settings when it is imported).
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import numpy
import pytest

from mnist_core.jobs import JobStatus, Scheduler
from mnist_core.limits import Limits
from mnist_core.store import list_models
from mnist_core.training import TrainConfig
from mnist_core.visitors import Visitor

ROOT = Path(__file__).resolve().parents[1]
TINY = TrainConfig(architecture="mlp", epochs=1, batch_size=32, train_size=300)
# As long as the app allows: never done before the test stops it, however fast the cluster trains.
ENDLESS = TrainConfig(architecture="mlp", epochs=50, batch_size=16, train_size=60_000)
WAIT = 300  # seconds; generous for a busy machine, only reached when something hangs

ALICE = Visitor("a11ce000a11ce000", "visitor-a11c")
BOB = Visitor("b0b00000b0b00000", "visitor-b0b0")
CAROL = Visitor("ca401000ca401000", "visitor-ca40")


def wait_for(condition, timeout=WAIT):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def ray_queue(ray_head, tmp_path):
    """A queue whose runner is a RayRunner on the session's head, saving into tmp_path; shut down afterwards."""
    from mnist_core.jobs.ray import RayRunner

    runner = RayRunner(ray_head.address)
    assert runner.wait_until_connected(WAIT), runner.describe()
    queue = Scheduler(runner, tmp_path, Limits(max_jobs_per_visitor=5))
    yield queue, runner
    queue.shutdown()


# --- on the session's cluster ---------------------------------------------------------------------------------------


def test_two_jobs_run_at_once_on_the_cluster_and_land_in_the_servers_store(ray_queue, tmp_path):
    from mnist_core.inference import Classifier

    queue, runner = ray_queue
    assert runner.slots == 2  # 2 CPUs, 1 per job
    assert "2 CPUs on 1 node, 2 trainings at a time (1 CPU each)" in runner.describe()

    first = queue.submit(TINY, "first", ALICE)
    second = queue.submit(TINY, "second", BOB)
    assert queue.queued() == [] and {first.status, second.status} <= {JobStatus.RUNNING, JobStatus.SAVING,
                                                                       JobStatus.FINISHED}
    assert first.wait(WAIT) and second.wait(WAIT)
    for job, name in ((first, "first"), (second, "second")):
        snapshot = job.snapshot()
        assert snapshot.status == JobStatus.FINISHED, snapshot.error
        assert snapshot.saved_name == name and 0.3 < snapshot.test_accuracy <= 1
        assert len(snapshot.batches) == -(-300 // 32) and [epoch.epoch for epoch in snapshot.epochs] == [1]
        placement = runner.placement(job.job_id)
        assert placement["pid"] != os.getpid()  # a Ray worker trained it
        assert not Path(placement["scratch"]).exists()  # and left nothing behind on its disk
        recorded = json.loads((tmp_path / f"{name}.json").read_text())
        assert recorded["owner_id"] == job.spec.owner_id and recorded["versions"]["tensorflow"]
        # The server answers with the LiteRT file the worker converted (the web process has no TensorFlow).
        assert Classifier.load(name, tmp_path).predict(numpy.zeros((1, 28, 28), "float32")).shape == (1,)
    assert sorted(entry.name for entry in list_models(tmp_path)) == ["first", "second"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "first.json", "first.keras", "first.tflite", "second.json", "second.keras", "second.tflite"]


def test_stop_keeps_the_model_a_queued_job_is_cancelled_and_a_running_one_aborted(ray_queue, tmp_path):
    queue, runner = ray_queue
    kept = queue.submit(ENDLESS, "kept", ALICE)
    aborted = queue.submit(ENDLESS, "aborted", BOB)
    waiting = queue.submit(TINY, "waiting", CAROL)
    assert waiting.status == JobStatus.QUEUED  # both slots are taken
    [entry] = queue.queue_view()
    assert entry.position == 1 and entry.starts_in_seconds > 0

    # Both stream their progress while they run, at the same time.
    wait_for(lambda: all(len(job.snapshot().batches) >= 3 for job in (kept, aborted)))
    assert kept.status == JobStatus.RUNNING and aborted.status == JobStatus.RUNNING
    assert "2 running now" in runner.describe()

    queue.cancel(waiting.job_id, CAROL)
    assert waiting.snapshot().status == JobStatus.CANCELLED and waiting.snapshot().started_at is None

    queue.stop(kept.job_id, ALICE)
    assert kept.wait(WAIT)
    snapshot = kept.snapshot()
    assert snapshot.status == JobStatus.STOPPED and snapshot.saved_name == "kept", snapshot.error
    assert 0 < snapshot.fraction_done < 1
    recorded = json.loads((tmp_path / "kept.json").read_text())
    assert recorded["stopped"] is True and recorded["history"][-1]["complete"] is False
    assert zipfile.is_zipfile(tmp_path / "kept.keras")

    queue.shutdown()  # the server going away: what still runs is cancelled on the cluster (ray.cancel, force)
    assert aborted.wait(WAIT)
    assert aborted.snapshot().status == JobStatus.CANCELLED
    assert [entry.name for entry in list_models(tmp_path)] == ["kept"]


def test_a_stop_pressed_before_the_task_runs_is_not_lost(ray_queue, tmp_path):
    queue, _ = ray_queue
    job = queue.submit(ENDLESS, "early-stop", ALICE)
    queue.stop(job.job_id, ALICE)  # before the task has imported TensorFlow, maybe before it was submitted
    assert job.wait(WAIT)
    assert job.snapshot().status == JobStatus.STOPPED


def test_an_uploaded_model_travels_to_the_cluster_as_bytes_and_is_imported(ray_queue, tmp_path):
    """An "import" job reads the visitor's staged upload, a file of this server: the worker gets its bytes, and
    the staged file is removed when the job ends, as a local worker removes it."""
    from mnist_core.architectures import build_model
    from mnist_core.model_upload import stage_upload
    from mnist_core.store import read_info

    queue, _ = ray_queue
    with tempfile.TemporaryDirectory() as folder:
        build_model("mlp").save(Path(folder) / "model.keras")
        staged = stage_upload((Path(folder) / "model.keras").read_bytes(), tmp_path)
    job = queue.submit(TrainConfig(), "imported", ALICE, kind="import", extra=(("upload_path", str(staged)),))
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.FINISHED and snapshot.saved_name == "imported", snapshot.error
    info = read_info("imported", tmp_path)
    assert info.uploaded and info.owner_id == ALICE.id
    assert not staged.exists() and (tmp_path / "imported.tflite").is_file()


def test_a_finetune_job_gets_its_base_model_as_bytes_and_its_model_lands_in_the_store(ray_queue, tmp_path, mnist):
    """A "finetune" job starts from a model of this server's store: the worker gets its files (its own disk has no
    store), fine-tunes on the drawings the job carries, and the new model with its record lands here; the base is
    left as it was."""
    import shutil

    from mnist_core.finetune import Record, finetune_config, finetune_extra
    from mnist_core.store import read_info

    queue, _ = ray_queue
    for suffix in (".keras", ".json"):
        shutil.copy2(ROOT / "models" / f"cnn{suffix}", tmp_path)
    base_files = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    (_, _), (x_test, y_test) = mnist
    hand_x, hand_y = x_test[100:120].copy(), y_test[100:120].copy()  # 20 test digits stand in for someone's drawings
    job = queue.submit(finetune_config("cnn", epochs=1, mnist_images=2000), "cnn-anna", ALICE, kind="finetune",
                       extra=finetune_extra("cnn", "annas hand", hand_x, hand_y))
    assert job.wait(WAIT)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.FINISHED and snapshot.saved_name == "cnn-anna", snapshot.error
    assert len(snapshot.epochs) == 1  # its progress came back like a training's
    info = read_info("cnn-anna", tmp_path)
    record = Record.from_dict(info.finetune)
    assert (record.base_model, record.collection, record.collection_size) == ("cnn", "annas hand", 20)
    assert info.owner_id == ALICE.id and info.architecture == "cnn"
    assert (tmp_path / "cnn-anna.tflite").is_file()
    assert {name: (tmp_path / name).read_bytes() for name in base_files} == base_files
    assert sorted(entry.name for entry in list_models(tmp_path)) == ["cnn", "cnn-anna"]


def test_warm_up_has_a_pooled_worker_import_tensorflow_once(ray_queue):
    import ray

    queue, runner = ray_queue
    queue.warm_up()  # returns at once: the Train page calls it on every visit
    prepared = runner._preparing
    assert prepared is not None
    queue.warm_up()
    assert runner._preparing is prepared  # once per runner
    assert ray.get(prepared, timeout=WAIT) != os.getpid()  # a Ray worker imported TensorFlow


def test_when_the_web_server_dies_the_cluster_ends_its_running_job(ray_queue, tmp_path):
    """A web server killed while its job trains on the cluster (a crash, an OOM kill, a redeploy): Ray ends the
    task it owned, so the cluster's CPU is free again and nobody's model is half-saved; the jobs were only in that
    server's memory, so a new server starts with none (as with local workers)."""
    import signal

    import ray

    queue, runner = ray_queue
    server_script = textwrap.dedent(f"""
        import sys, time
        from mnist_core.jobs import Scheduler
        from mnist_core.jobs.ray import RayRunner
        from mnist_core.limits import Limits
        from mnist_core.training import TrainConfig
        from mnist_core.visitors import Visitor

        runner = RayRunner(sys.argv[1])
        queue = Scheduler(runner, sys.argv[2], Limits())
        job = queue.submit(TrainConfig(**{ENDLESS.to_dict()!r}), "crashed", Visitor("a11ce000a11ce000", "visitor-a11c"))
        while job.snapshot().latest is None:
            assert job.snapshot().active, job.snapshot().error
            time.sleep(0.05)
        print(job.job_id, flush=True)
        time.sleep(3600)
    """)
    store = tmp_path / "dead-server-store"
    store.mkdir()
    server = subprocess.Popen([sys.executable, "-c", server_script, runner.cluster.address, str(store)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        dead_job_id = server.stdout.readline().strip()
        assert dead_job_id, server.poll()
        wait_for(lambda: ray.available_resources().get("CPU", 0) == 1)  # its task holds one of the 2 CPUs
        server.send_signal(signal.SIGKILL)
        server.wait(WAIT)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(WAIT)
    wait_for(lambda: ray.available_resources().get("CPU", 0) == 2)
    assert list(store.iterdir()) == []
    # Its worker was killed before it could remove its scratch folder; the node's next job removes it.
    scratch_of_dead_job = f"mnist-lab-job-{dead_job_id}-*"
    [left_behind] = Path(tempfile.gettempdir()).glob(scratch_of_dead_job)
    wait_for(lambda: not process_exists(int(left_behind.name.rsplit("-pid", 1)[1].split("-")[0])))
    assert queue.submit(TINY, "next", BOB).wait(WAIT)
    assert list(Path(tempfile.gettempdir()).glob(scratch_of_dead_job)) == []


# --- a cluster of two nodes -----------------------------------------------------------------------------------------


def test_on_two_nodes_the_worker_saves_on_its_own_disk_and_the_model_lands_in_the_servers_store(tmp_path):
    """ray.cluster_utils.Cluster in a process of its own: a head without CPUs and a worker node whose tasks get
    their own temporary folder. The job runs on the worker node, keeps its files there (and removes them), and
    the model arrives in the server's store as bytes."""
    store, worker_disk = tmp_path / "server-store", tmp_path / "worker-disk"
    store.mkdir()
    worker_disk.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith("RAY_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "ray_two_nodes.py"), str(store), str(worker_disk)],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["finished"], report
    assert "0 CPUs" not in report["described"] and "on 2 nodes" in report["described"]
    placement = report["placement"]
    assert placement["node_id"] == report["worker_node_id"] != report["head_node_id"]
    scratch = Path(placement["scratch"])
    assert scratch.parent == worker_disk and not scratch.exists()
    assert list(worker_disk.rglob("two-nodes*")) == []  # (TensorFlow leaves its autograph files there)
    [entry] = list_models(store)
    assert entry.name == "two-nodes" and not entry.broken and entry.info.owner == "visitor-a11c"
    assert zipfile.is_zipfile(store / "two-nodes.keras") and (store / "two-nodes.tflite").is_file()


# --- without a cluster ----------------------------------------------------------------------------------------------


def test_token_mode_is_chosen_only_when_a_token_is_at_hand(tmp_path):
    from mnist_core.jobs.ray import prepare_environment

    environ = {}
    prepare_environment(environ, home=tmp_path)
    assert environ == {"RAY_ENABLE_AUTO_CONNECT": "0"}  # a cluster without authentication: no token mode

    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("f" * 64)
    prepare_environment(environ, home=tmp_path)
    assert environ["RAY_AUTH_MODE"] == "token"  # as `ray start` does when it finds the file

    environ = {"RAY_AUTH_TOKEN": "f" * 64}
    prepare_environment(environ, home=tmp_path / "elsewhere")
    assert environ["RAY_AUTH_MODE"] == "token"

    environ = {"RAY_AUTH_TOKEN": "f" * 64, "RAY_AUTH_MODE": "disabled"}
    prepare_environment(environ, home=tmp_path)
    assert environ["RAY_AUTH_MODE"] == "disabled"  # someone chose: left alone


def test_a_local_ray_is_refused_in_a_small_container_and_jobs_say_why(tmp_path):
    from mnist_core.jobs.ray import Connection, RayRunner

    one_gigabyte = Connection("local", memory_bytes=lambda: 2**30)
    runner = RayRunner("local", cluster=one_gigabyte)
    assert not one_gigabyte.wait(60)
    assert "only 1.0 GB of memory" in runner.describe() and "Ray node" in runner.describe()

    queue = Scheduler(runner, tmp_path, Limits())
    job = queue.submit(TINY, "nowhere", ALICE)
    assert job.wait(60)
    snapshot = job.snapshot()
    assert snapshot.status == JobStatus.FAILED and "only 1.0 GB of memory" in str(snapshot.error)
    assert list_models(tmp_path) == []


def test_the_cpus_per_job_setting_is_checked():
    from mnist_core.jobs.ray import ClusterUnavailable, RayRunner

    with pytest.raises(ClusterUnavailable, match="MNIST_LAB_RAY_ADDRESS is not set"):
        RayRunner.from_environment({})
    for wrong in ("0", "two", "-1", "1.5"):
        with pytest.raises(ValueError, match="MNIST_LAB_RAY_CPUS_PER_JOB must be a whole number"):
            RayRunner.from_environment({"MNIST_LAB_RAY_ADDRESS": "127.0.0.1:1", "MNIST_LAB_RAY_CPUS_PER_JOB": wrong})


_WITHOUT_RAY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(sys.argv[1], default_timeout=120)
    at.run()
    at.switch_page(sys.argv[2])
    at.run()
    import ui

    runner = ui.scheduler().runner
    print(json.dumps({"ray": sorted(name for name in sys.modules if name == "ray" or name.startswith("ray.")),
                      "runner": type(runner).__name__, "described": runner.describe(),
                      "errors": [e.message for e in at.exception]}))
    """
)


def test_without_a_ray_address_the_app_trains_locally_and_never_imports_ray(tmp_path):
    """A fresh process opens Home and Train without MNIST_LAB_RAY_ADDRESS: the queue uses worker processes on this
    server, and ray is never imported (the app without the variable is the app as before)."""
    script = tmp_path / "without_ray.py"
    script.write_text(_WITHOUT_RAY_SCRIPT, encoding="utf-8")
    env = {name: value for name, value in os.environ.items() if name != "MNIST_LAB_RAY_ADDRESS"}
    env.update(PYTHONPATH=str(ROOT), MNIST_LAB_MODELS_DIR=str(tmp_path / "models"))
    result = subprocess.run([sys.executable, str(script), str(ROOT / "app.py"), "pages/train.py"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == [] and report["runner"] == "LocalRunner"
    assert report["described"].startswith("worker processes on this server")
    assert report["ray"] == []
