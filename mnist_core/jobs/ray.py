"""Jobs on a Ray cluster (issue 19): the Runner the queue uses when `MNIST_LAB_RAY_ADDRESS` is set.

The only module that imports `ray` (and nothing imports it unless that variable is set). Each job is one Ray
generator task running work.py's `run_job` unchanged: training in a thread of the task, its progress events yielded
back in small batches, the model's files (.keras, and .tflite when the store's save makes one) as bytes in the last
item, which this server saves into its own store. A worker never sees the server's store: on a real cluster it is
another machine's disk.

- Connection: once per process, from a daemon thread that lives as long as the process (Ray's child processes die
  with the thread that started them, so never a Streamlit script thread). `RAY_ENABLE_AUTO_CONNECT=0`: a failed
  connection never silently starts a local cluster. When a token is at hand (`RAY_AUTH_TOKEN`,
  `RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token`) and `RAY_AUTH_MODE` is unset, token mode is used, as `ray start`
  does: an explicit host:port otherwise fails against a cluster that requires the token.
- Code reaches the workers as `runtime_env={"py_modules": [mnist_core]}`; MNIST once per process through `ray.put`;
  files of this server a job reads (an "import" job's upload: `extra` keys ending in "_path") and stored models it
  starts from (a "finetune" job's base: keys ending in "_model") as bytes.
- Slots: the cluster's CPUs divided by the CPUs of a job (`cpus_per_job`), re-read every few seconds; the queue
  (queue.py) keeps its own FIFO and hands a job over when a slot frees (Ray has no queue positions).
- Stop: a small control actor (num_cpus=0) that the task asks about twice a second; the task then stops training at
  the next batch and saves what it trained. Cancel: `ray.cancel(task, force=True)` kills the worker.
- MNIST_LAB_RAY_ADDRESS=local starts a Ray of this process' own (from the same daemon thread), refused in a container
  too small for a Ray node beside the web server and a training worker.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path


def auth_token_available(environ=os.environ, home: Path | None = None) -> bool:
    """Whether a Ray auth token is at hand where Ray looks for one (the variable, the path variable, ~/.ray)."""
    if environ.get("RAY_AUTH_TOKEN"):
        return True
    path = environ.get("RAY_AUTH_TOKEN_PATH") or Path(home or Path.home()) / ".ray" / "auth_token"
    return Path(path).is_file()


def prepare_environment(environ=os.environ, home: Path | None = None) -> None:
    """Set what Ray must see before it connects: no auto-connect, and token mode when a token is at hand.

    `ray start` enables token authentication by itself when it finds a token; a driver given an explicit host:port
    then fails (InvalidAuthToken) unless RAY_AUTH_MODE=token. Token mode without a token, or against a cluster
    without authentication, fails or hangs: so it is chosen only when a token exists and nobody chose otherwise.
    """
    environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
    if "RAY_AUTH_MODE" not in environ and auth_token_available(environ, home):
        environ["RAY_AUTH_MODE"] = "token"


# Ray reads these when it is imported: a failed ray.init must never let a later .remote() start a cluster of its own,
# and token mode has to be chosen before the first connection.
prepare_environment()

import ray  # noqa: E402 (see above)

import mnist_core  # noqa: E402
from mnist_core.i18n import M_, Message, message_of  # noqa: E402
from mnist_core.jobs.job import Job, JobOutcome, JobSpec, JobStatus, NotEnoughMemoryError  # noqa: E402
from mnist_core.jobs.memory import estimate_peak_bytes  # noqa: E402
from mnist_core.jobs.work import SAVING  # noqa: E402

log = logging.getLogger(__name__)

ADDRESS_VARIABLE = "MNIST_LAB_RAY_ADDRESS"
CPUS_PER_JOB_VARIABLE = "MNIST_LAB_RAY_CPUS_PER_JOB"
LOCAL = "local"  # the address that starts a Ray of this process' own instead of joining a cluster
NAMESPACE = "mnist-lab"

# A Ray node (~400 MB) and one TensorFlow worker (~700-800 MB) beside a web server (~300 MB-1 GB): below this a
# local Ray cannot run a single job (measured 2026-11-30, docs/scaling.md).
LOCAL_CLUSTER_MIN_BYTES = int(2.5 * 2**30)
REFRESH_SECONDS = 5.0  # how often the cluster's CPUs and nodes are re-read (a node may join or leave)
RETRY_SECONDS = 15.0  # after a failed connection
CONNECT_WAIT_SECONDS = 90.0  # how long a job waits for a connection before it fails
STOP_CHECK_SECONDS = 0.5  # how often a task asks the control actor whether its job was stopped
EVENTS_PER_ITEM = 500  # progress events yielded together, at most
JOIN_SECONDS = 30.0  # how long a task waits for its training thread after a stop or a cancel


class ClusterUnavailable(RuntimeError):
    """No Ray cluster to run jobs on; the message is for a person."""


def check_room_for_a_local_cluster(memory_bytes: int | None) -> None:
    """Refuse (ClusterUnavailable) to start a local Ray in a container with less memory than one job needs there."""
    if memory_bytes is not None and memory_bytes < LOCAL_CLUSTER_MIN_BYTES:
        raise ClusterUnavailable(
            f"{ADDRESS_VARIABLE}={LOCAL} would start a Ray node on this server, but it has only "
            f"{memory_bytes / 2**30:.1f} GB of memory: a Ray node (~400 MB) and a training worker (~700-800 MB) "
            f"beside the web server need at least {LOCAL_CLUSTER_MIN_BYTES / 2**30:.1f} GB. Unset {ADDRESS_VARIABLE} "
            "to train in worker processes here, or point it at a Ray cluster elsewhere (docs/scaling.md).")


# --- what runs on the cluster ---------------------------------------------------------------------------------------


@ray.remote(num_cpus=0, max_restarts=0)
class StopRequests:
    """The jobs whose owners pressed Stop; tasks ask about theirs (a few bytes, no CPU reserved)."""

    def __init__(self):
        self._stopped: set[str] = set()

    def request_stop(self, job_id: str) -> None:
        self._stopped.add(job_id)

    def should_stop(self, job_id: str) -> bool:
        return job_id in self._stopped

    def forget(self, job_id: str) -> None:
        self._stopped.discard(job_id)


SCRATCH_PREFIX = "mnist-lab-job-"


def _scratch_folder(job_id: str) -> Path:
    """A new scratch folder for a job on this node, named with this worker's pid (see _remove_dead_scratch)."""
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{job_id}-pid{os.getpid()}-"))


def _remove_dead_scratch(folder: Path | None = None) -> None:
    """Remove the scratch folders of workers that no longer run on this node: a force-cancelled task, or one whose
    web server died, is killed without running its `finally`, and would leave its folder (and a job's inputs)."""
    for path in Path(folder or tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-pid*-*"):
        try:
            pid = int(path.name.rsplit("-pid", 1)[1].split("-", 1)[0])
            os.kill(pid, 0)
        except ValueError:
            continue  # not one of ours
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's process


def _use_threads(cpus: int) -> None:
    """TensorFlow's threads from the task's CPUs: Ray sets OMP_NUM_THREADS=1, but TF would still use every core of
    the node. Only possible before TensorFlow's first op in this worker process; a reused worker keeps its setting."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, cpus)))
    except RuntimeError:
        pass  # an earlier task of this worker set them (the same task shape: the same CPUs)


def model_files(name: str, folder: Path) -> dict[str, bytes]:
    """The files the store saved for `name` in `folder` (.keras, and .tflite when the store makes one), by suffix,
    plus its metadata as ".json": what a worker sends back for the server to save (store.save_model_files).

    The one place that decides which files travel: the store's own save (run by the work in the worker, where
    TensorFlow is) makes them, so a LiteRT file comes along as soon as save_model writes one.
    """
    from mnist_core.store import MODEL_FILE_SUFFIXES

    files = {}
    for suffix in (*MODEL_FILE_SUFFIXES, ".json"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            files[suffix] = path.read_bytes()
    return files


def input_files(spec: JobSpec) -> dict[str, bytes]:
    """The files of this server a job reads (its `extra` values whose key ends in "_path", such as an "import"
    job's uploaded .keras), as bytes: on a cluster the worker cannot open the server's paths."""
    return {key: Path(value).read_bytes() for key, value in spec.extra if key.endswith("_path") and value}


def input_models(spec: JobSpec) -> dict[str, dict[str, bytes]]:
    """The stored models a job starts from (its `extra` values whose key ends in "_model", such as a "finetune"
    job's base model): name -> their files in this server's store (.json, .keras; .tflite is not needed to train),
    as bytes. A missing file is left out, so the work in the worker says "not found" as it would locally."""
    from mnist_core.store import model_path

    models_dir = Path(spec.models_dir)
    models = {}
    for key, name in spec.extra:
        if not (key.endswith("_model") and isinstance(name, str) and name):
            continue
        keras_path = model_path(name, models_dir)
        files = {path.suffix: path.read_bytes() for path in (keras_path.with_suffix(".json"), keras_path)
                 if path.is_file()}
        if files:
            models[name] = files
    return models


def _with_inputs_in(spec: JobSpec, inputs: dict[str, bytes], folder: Path) -> JobSpec:
    """`spec` with each input file written into `folder` and its `extra` path pointing there."""
    folder.mkdir()
    paths = {}
    for key, content in inputs.items():
        paths[key] = folder / key
        paths[key].write_bytes(content)
    return dataclasses.replace(spec, extra=tuple((key, str(paths.get(key, value))) if key in paths else (key, value)
                                                 for key, value in spec.extra))


@ray.remote(max_retries=0)  # a job whose worker died is reported to its owner, never run again behind their back
def run_on_cluster(spec: JobSpec, inputs: dict[str, bytes], models: dict[str, dict[str, bytes]], mnist,
                   stop_requests, cpus: int):
    """The job as a Ray generator task: yields ("events", [event or SAVING, ...]) while it runs and finally
    ("done", JobOutcome, model_files, placement). The job's input files (input_files), the models it starts from
    (input_models) and the model it saves live in a scratch folder of this worker's node; the model is read back as
    bytes and the folder removed."""
    from mnist_core.jobs.work import run_job

    _use_threads(cpus)
    _remove_dead_scratch()
    scratch = _scratch_folder(spec.job_id)
    spec = _with_inputs_in(spec, inputs, scratch / "inputs")
    for name, files in models.items():  # the job's own store on this node starts with the models it reads
        for suffix, content in files.items():
            (scratch / f"{name}{suffix}").write_bytes(content)
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    finished = object()
    result: list[JobOutcome] = []

    def work() -> None:
        try:
            result.append(run_job(dataclasses.replace(spec, models_dir=str(scratch)), events.put, stop, mnist=mnist))
        finally:
            events.put(finished)

    trainer = threading.Thread(target=work, name=f"job-{spec.job_id}", daemon=True)
    trainer.start()
    try:
        checked_at = time.monotonic()
        done = False
        while not done:
            batch = []
            try:
                batch.append(events.get(timeout=STOP_CHECK_SECONDS))
                while len(batch) < EVENTS_PER_ITEM:
                    batch.append(events.get_nowait())
            except queue.Empty:
                pass
            if batch and batch[-1] is finished:
                batch.pop()
                done = True
            if batch:
                yield ("events", batch)
            if not done and not stop.is_set() and time.monotonic() - checked_at >= STOP_CHECK_SECONDS:
                checked_at = time.monotonic()
                if ray.get(stop_requests.should_stop.remote(spec.job_id)):
                    stop.set()
        outcome = result[0]
        files = model_files(outcome.saved_name, scratch) if outcome.saved_name else {}
        placement = {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                     "scratch": str(scratch)}
        yield ("done", outcome, files, placement)
    finally:
        # A cancelled task must not go on training in its thread: stop it, wait for it, leave nothing behind.
        stop.set()
        trainer.join(JOIN_SECONDS)
        shutil.rmtree(scratch, ignore_errors=True)
        import keras

        keras.backend.clear_session()  # the worker's next job starts from a clean Keras state


@ray.remote(max_retries=0)
def prepare_worker(cpus: int) -> int:
    """Import TensorFlow and the training code in a pooled worker, so the next job there starts sooner."""
    _use_threads(cpus)
    import mnist_core.jobs.work  # noqa: F401

    return os.getpid()


# --- what runs in the web server ------------------------------------------------------------------------------------


def describe_failure(error: BaseException) -> Message:
    """Why a job on the cluster ended without an outcome, for the person whose job it was."""
    if isinstance(error, ray.exceptions.OutOfMemoryError):
        return M_("The Ray node running this training ran out of memory and stopped it: nothing was saved. Fewer "
                  "training images or a smaller batch need less memory.")
    if isinstance(error, ray.exceptions.WorkerCrashedError):
        return M_("The training worker on the Ray cluster ended unexpectedly (most likely it ran out of memory): "
                  "nothing was saved.")
    if isinstance(error, (ray.exceptions.NodeDiedError, ray.exceptions.LocalRayletDiedError)):
        return M_("The Ray node running this training went away: nothing was saved.")
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = error.cause if getattr(error, "cause", None) is not None else error
        return M_("The training failed on the Ray cluster ({kind}: {error}): nothing was saved.",
                  kind=type(cause).__name__, error=message_of(cause))
    return M_("The training was lost on the Ray cluster ({kind}: {error}): nothing was saved.",
              kind=type(error).__name__, error=message_of(error))


class Connection:
    """This process' one connection to a Ray cluster (ray.init works once per process), shared by its runners: a
    daemon thread that connects, retries after a failure, and re-reads the cluster's CPUs and nodes every few
    seconds for as long as the process lives. Get it with `connection(address)`."""

    def __init__(self, address: str, memory_bytes: Callable[[], int | None] | None = None):
        self.address = address
        self._memory_bytes = memory_bytes or _container_memory
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.refused = threading.Event()  # set when connecting is pointless (a local Ray that does not fit)
        self._closing = threading.Event()
        self.problem: str | None = None  # why there is no connection (yet)
        self.cpus = 0.0
        self.nodes = 0
        self.largest_node_memory = 0.0
        self.shown_address = address
        self.stop_requests = None  # the StopRequests actor
        self.mnist = None  # the ObjectRef of MNIST in the object store
        self._listeners: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._stay_connected, name="ray-connection", daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        """Wait until connected (True), refused or `timeout` seconds passed (False)."""
        deadline = time.monotonic() + timeout
        while not self.connected.is_set() and not self.refused.is_set() and time.monotonic() < deadline:
            self.connected.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        return self.connected.is_set()

    def figures(self) -> tuple[float, int, float, str, str | None]:
        """(CPUs, nodes, the largest node's memory in bytes, the address to show, the connection's problem)."""
        with self._lock:
            return self.cpus, self.nodes, self.largest_node_memory, self.shown_address, self.problem

    def on_change(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def close(self) -> None:
        """Disconnect (for tests and benchmarks: an app keeps its connection until it exits)."""
        self._closing.set()
        self._thread.join(JOIN_SECONDS)

    def _stay_connected(self) -> None:
        while not self._closing.is_set():
            if not self.connected.is_set():
                try:
                    self._connect()
                except ClusterUnavailable as refusal:
                    with self._lock:
                        self.problem = str(refusal)
                    self.refused.set()
                    log.error("%s", refusal)
                    return  # nothing will change that: every job fails with the reason
                except Exception as error:  # an unreachable cluster, a wrong token: shown on the Home page, retried
                    with self._lock:
                        self.problem = f"{type(error).__name__}: {error}"
                    log.warning("could not connect to the Ray cluster at %s: %s", self.address, error)
                    try:
                        ray.shutdown()
                    except Exception:
                        log.exception("ray.shutdown after a failed connection")
                    self._closing.wait(RETRY_SECONDS)
                    continue
            try:
                self._refresh()
            except Exception:
                log.exception("could not read the Ray cluster's resources")
            self._closing.wait(REFRESH_SECONDS)
        if self.connected.is_set():
            self.connected.clear()
            ray.shutdown()

    def _connect(self) -> None:
        from mnist_core.data import load_mnist

        prepare_environment()
        options = dict(
            namespace=NAMESPACE,
            runtime_env={"py_modules": [mnist_core], "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}},
            configure_logging=False,
        )
        if self.address == LOCAL:
            check_room_for_a_local_cluster(self._memory_bytes())
            from mnist_core.hardware import usable_cores

            ray.init(num_cpus=usable_cores(), include_dashboard=False, **options)
        else:
            ray.init(address=self.address, **options)
        self.stop_requests = StopRequests.remote()
        self.mnist = ray.put(load_mnist())  # once per process; tasks on this node read it without a copy
        shown = ray.get_runtime_context().gcs_address if self.address in (LOCAL, "auto") else self.address
        with self._lock:
            self.shown_address = shown
            self.problem = None
        self._refresh()
        self.connected.set()
        log.info("connected to the Ray cluster at %s", shown)

    def _refresh(self) -> None:
        resources = ray.cluster_resources()
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        with self._lock:
            before = (self.cpus, self.nodes)
            self.cpus = float(resources.get("CPU", 0.0))
            self.nodes = len(nodes)
            self.largest_node_memory = max((node["Resources"].get("memory", 0.0) for node in nodes), default=0.0)
            changed = (self.cpus, self.nodes) != before
            listeners = list(self._listeners)
        if changed:
            for listener in listeners:
                listener()


_connection: Connection | None = None
_connection_lock = threading.Lock()


def connection(address: str) -> Connection:
    """This process' connection, made on first use; ClusterUnavailable if it already belongs to another address."""
    global _connection
    with _connection_lock:
        if _connection is None or _connection._closing.is_set():
            _connection = Connection(address)
        elif _connection.address != address:
            raise ClusterUnavailable(f"This process is connected to the Ray cluster at {_connection.address}; it "
                                     f"cannot also use {address}.")
        return _connection


def disconnect() -> None:
    """Close this process' connection, if any (tests and benchmarks; the app's lasts as long as the process)."""
    global _connection
    with _connection_lock:
        current, _connection = _connection, None
    if current is not None:
        current.close()


class _Handle:
    """The queue's grip on one job on the cluster (runner.RunHandle)."""

    def __init__(self, runner: RayRunner, job: Job):
        self._runner, self.job = runner, job
        self.lock = threading.Lock()
        self.task = None  # the ObjectRefGenerator, once submitted
        self.stop_requested = False
        self.cancelled = False

    def stop(self) -> None:
        with self.lock:
            self.stop_requested = True
            submitted = self.task is not None
        if submitted:
            self._runner._send_stop(self.job.job_id)

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            task = self.task
        if task is not None:
            ray.cancel(task, force=True)


class RayRunner:
    """Runs jobs as tasks on the Ray cluster at `address` (see the module docstring), `cpus_per_job` CPUs each.

    Every runner of a process shares its one connection (one address per process)."""

    def __init__(self, address: str, cpus_per_job: int = 1, cluster: Connection | None = None):
        if cpus_per_job < 1:
            raise ValueError("a job needs at least one CPU")
        self.cpus_per_job = cpus_per_job
        self.cluster = cluster or connection(address)
        self._lock = threading.Lock()
        self._handles: dict[str, _Handle] = {}
        self._placements: dict[str, dict] = {}
        self._preparing = None
        self._closed = False

    @classmethod
    def from_environment(cls, environ=os.environ) -> RayRunner:
        """The runner for `MNIST_LAB_RAY_ADDRESS` (and `MNIST_LAB_RAY_CPUS_PER_JOB`, 1 by default)."""
        address = environ.get(ADDRESS_VARIABLE, "").strip()
        if not address:
            raise ClusterUnavailable(f"{ADDRESS_VARIABLE} is not set")
        text = environ.get(CPUS_PER_JOB_VARIABLE, "1").strip()
        cpus = int(text) if text.isdigit() else 0
        if cpus < 1:
            raise ValueError(f"{CPUS_PER_JOB_VARIABLE} must be a whole number of CPUs, 1 or more, not {text!r}")
        return cls(address, cpus_per_job=cpus)

    # --- Runner ----------------------------------------------------------------------------------------------------

    @property
    def slots(self) -> int:
        """Jobs the cluster can run at once: its CPUs over a job's. At least 1, so that with no cluster (yet) a job
        is handed over and waits for the connection, then fails with the reason if none comes."""
        cpus = self.cluster.figures()[0]
        return max(1, int(cpus // self.cpus_per_job))

    def on_slots_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (the queue's dispatch) whenever the cluster's CPUs change: a node joined or left."""
        self.cluster.on_change(listener)

    def run(self, job: Job, on_end: Callable[[Job], None]) -> _Handle:
        handle = _Handle(self, job)
        with self._lock:
            if self._closed:
                raise RuntimeError("the runner is shut down")
            self._handles[job.job_id] = handle
        threading.Thread(target=self._follow, args=(handle, on_end), name=f"ray-job-{job.job_id}",
                         daemon=True).start()
        return handle

    def admit(self, config) -> None:
        """Refuse a job whose estimated peak memory is more than the largest node of the cluster has."""
        largest = self.cluster.figures()[2]
        needed = estimate_peak_bytes(config)
        if largest and needed > largest:
            raise NotEnoughMemoryError(M_(
                "This training would need about {needed:,.0f} MB of memory and the largest node of the Ray cluster "
                "has {largest:,.0f} MB: fewer training images or a smaller batch need less.", needed=needed / 2**20,
                largest=largest / 2**20))

    def warm_up(self) -> None:
        """Have a pooled worker import TensorFlow ahead of the first job (once per runner; not while jobs run)."""
        if not self.cluster.connected.is_set():
            return
        with self._lock:
            if self._preparing is not None or self._handles or self._closed:
                return
            self._preparing = prepare_worker.options(num_cpus=self.cpus_per_job).remote(self.cpus_per_job)

    def describe(self) -> str:
        cpus, nodes, _, where, problem = self.cluster.figures()
        with self._lock:
            running = len(self._handles)
        if not self.cluster.connected.is_set():
            return f"the Ray cluster at {where}, " + (f"not reachable: {problem}" if problem else "connecting")
        slots = self.slots
        return (f"the Ray cluster at {where}: {cpus:g} CPUs on {nodes} node{'s' if nodes != 1 else ''}, "
                f"{slots} training{'s' if slots != 1 else ''} at a time ({self.cpus_per_job} "
                f"CPU{'s' if self.cpus_per_job != 1 else ''} each), {running} running now")

    def shutdown(self) -> None:
        """Cancel this runner's jobs; the process' connection stays for its other runners (see disconnect())."""
        with self._lock:
            self._closed = True
            handles = list(self._handles.values())
        for handle in handles:
            handle.cancel()
        for handle in handles:
            handle.job.wait(JOIN_SECONDS)

    # --- for tests and benchmarks -----------------------------------------------------------------------------------

    def wait_until_connected(self, timeout: float | None = None) -> bool:
        return self.cluster.connected.wait(timeout)

    def placement(self, job_id: str) -> dict | None:
        """Where an ended job's task ran: {"node_id", "pid", "scratch"} (the worker's own scratch folder)."""
        with self._lock:
            return self._placements.get(job_id)

    # --- inside ----------------------------------------------------------------------------------------------------

    def _send_stop(self, job_id: str) -> None:
        self.cluster.stop_requests.request_stop.remote(job_id)

    def _follow(self, handle: _Handle, on_end: Callable[[Job], None]) -> None:
        """Submit the job's task once connected and carry its progress into the Job until it ends."""
        job = handle.job
        outcome = None
        try:
            outcome = self._carry(handle)
        except Exception as error:
            if handle.cancelled:
                outcome = JobOutcome(JobStatus.CANCELLED, error=M_("Cancelled while it ran: nothing was saved."))
            else:
                log.error("job %s on the Ray cluster failed: %r", job.job_id, error)
                outcome = JobOutcome(JobStatus.FAILED, error=describe_failure(error))
        finally:
            if outcome is None:
                outcome = JobOutcome(JobStatus.FAILED, error=M_("The training ended on the Ray cluster without a result."))
            with self._lock:
                self._handles.pop(job.job_id, None)
            if handle.task is not None:
                try:
                    self.cluster.stop_requests.forget.remote(job.job_id)
                except Exception:
                    log.exception("could not clear the stop request of job %s", job.job_id)
            # The job's input files were this server's to hand over; a local worker removes them when its job ends.
            for key, value in job.spec.extra:
                if key.endswith("_path") and value:
                    Path(value).unlink(missing_ok=True)
            job.end(outcome)
            on_end(job)

    def _carry(self, handle: _Handle) -> JobOutcome:
        job = handle.job
        if not self.cluster.wait(CONNECT_WAIT_SECONDS):
            problem = self.cluster.figures()[4] or f"no answer within {CONNECT_WAIT_SECONDS:.0f} s"
            return JobOutcome(JobStatus.FAILED, error=M_(
                "The Ray cluster at {address} is not reachable ({problem}): nothing was trained.",
                address=self.cluster.address, problem=problem))
        # The worker gets no path of this server: it saves into a scratch folder of its own node.
        remote_spec = dataclasses.replace(job.spec, models_dir="")
        with handle.lock:
            if handle.cancelled:
                return JobOutcome(JobStatus.CANCELLED, error=M_("Cancelled before it started: nothing was saved."))
            handle.task = run_on_cluster.options(num_cpus=self.cpus_per_job, name=f"mnist-lab-{job.spec.kind}").remote(
                remote_spec, input_files(job.spec), input_models(job.spec), self.cluster.mnist,
                self.cluster.stop_requests, self.cpus_per_job)
            stop_first = handle.stop_requested
        if stop_first:
            self._send_stop(job.job_id)
        outcome, files = None, {}
        for reference in handle.task:
            message = ray.get(reference)
            if message[0] == "events":
                for event in message[1]:
                    if event == SAVING:
                        job.mark_saving()
                    else:
                        job.record(event)
            elif message[0] == "done":
                outcome, files, placement = message[1], message[2], message[3]
                with self._lock:
                    self._placements[job.job_id] = placement
        if outcome is None:
            return JobOutcome(JobStatus.FAILED, error=M_("The training ended on the Ray cluster without a result."))
        if outcome.saved_name:
            outcome = self._save(job.spec, outcome, files)
        return outcome

    def _save(self, spec: JobSpec, outcome: JobOutcome, files: dict[str, bytes]) -> JobOutcome:
        """Save the model the worker sent into this server's store, under the job's name or, if something took it
        while the job ran, the next free one (as work.py does for a local job)."""
        from mnist_core.store import ModelExistsError, ModelInfo, ProtectedModelError, save_model_files, unique_name

        info = ModelInfo.from_dict(json.loads(files[".json"]))
        content = {suffix: data for suffix, data in files.items() if suffix != ".json"}
        models_dir = Path(spec.models_dir)
        name = spec.model_name
        for _ in range(5):  # another process may take a free name again between our look and our save
            try:
                info.name = name
                save_model_files(info, content, models_dir)
                return dataclasses.replace(outcome, saved_name=name)
            except (ModelExistsError, ProtectedModelError):
                name = unique_name(spec.model_name, models_dir)
        return JobOutcome(JobStatus.FAILED, error=M_(
            "Trained, but no free name to save {name} under.", name=repr(spec.model_name)))


def _container_memory() -> int | None:
    from mnist_core.hardware import container

    here = container()
    return here.memory_limit or here.memory_total
