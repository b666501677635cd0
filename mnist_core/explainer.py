"""The explainer: saliency maps (saliency.py) and augmentation previews computed in a worker process of their own.

Both need TensorFlow, which the web server never imports (issue 18). Nor do they go through the training queue:
a drawing's explanation must not wait behind a ten-minute training. So one long-lived worker process (spawned like
the training workers, jobs/local.py) imports TensorFlow once, keeps the last few models it was asked about loaded
with their traced gradient graphs, and answers requests over a pipe, one at a time. The server side never blocks:

- `explanation(name, models_dir, image)` and `augmentation(seed)` return the result if it is known (an LRU cache
  keyed by the model file's identity and the image's hash), else `Pending` (and the request is queued), or
  `Failed` with a sentence for the page. Pages ask again on their next poll.
- The worker gets the most recently asked request first; a request nobody has asked about for FORGET_SECONDS is
  dropped (the person drew on), so a burst of strokes costs one explanation, not one per stroke.
- `warm_up()` starts the worker before it is needed (the Draw page calls it), so the first drawing does not wait
  for TensorFlow's import (seconds).
- A worker idle for `idle_seconds` is told to exit, so an idle app gives its memory back (TensorFlow: ~500 MB).
  One that dies (killed, out of memory) fails the request it had with a message; the next request gets a new one.

Nothing here imports TensorFlow; `_worker_main` does, in the worker.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_core.constants import IMAGE_SIZE
from mnist_core.hardware import usable_cores
from mnist_core.i18n import M_, Message, message_of

log = logging.getLogger(__name__)

IDLE_SECONDS = 120.0  # an idle worker exits after this; the limit explainer_idle_s (limits.py) changes it
FORGET_SECONDS = 10.0  # a queued request nobody asked about again for this long is dropped
CACHE_ENTRIES = 128  # results kept; an explanation is 2 x 10 x 28 x 28 float32 = 63 KB, so at most ~8 MB
MODELS_KEPT = 4  # Keras models (with their traced graphs) the worker keeps loaded
EXIT_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Pending:
    """Not computed yet. `starting`: the worker is still importing TensorFlow (seconds, not a fraction of one)."""

    starting: bool = False


@dataclass(frozen=True)
class Failed:
    """It could not be computed; `message` says why, for a person (an i18n Message: `render` it to show it)."""

    message: Message | str


@dataclass(frozen=True)
class AugmentationPreview:
    """A few training digits and what augmentation makes of them.

    `originals` (n, 28, 28) float32 in [0, 1], `labels` (n,), `distorted` (variants, n, 28, 28) float32: each row is
    one random draw of training.distort over all n digits, with `seed`.
    """

    originals: np.ndarray
    labels: np.ndarray
    distorted: np.ndarray
    seed: int


# Training digits the preview distorts: the first training image of each digit, except for the 1, which is the
# first one written with a flag (training.flagged_ones): augmentation stretches flags, and only a flagged 1 shows it.
def preview_indices(images: np.ndarray, labels: np.ndarray) -> list[int]:
    """Indices of the preview's training digits, 0 to 9 in order (see above)."""
    from mnist_core.training import flagged_ones

    chosen = []
    for digit in range(10):
        if digit == 1:
            flagged = flagged_ones(images, labels)
            if flagged.size:
                chosen.append(int(flagged[0]))
                continue
        chosen.append(int(np.flatnonzero(labels == digit)[0]))
    return chosen


def image_key(image: np.ndarray) -> str:
    """A short hash of one (28, 28) float32 image: the explanation cache's key for it."""
    return hashlib.blake2b(np.ascontiguousarray(image, dtype=np.float32).tobytes(), digest_size=12).hexdigest()


def _file_identity(path: Path) -> tuple:
    status = path.stat()
    return status.st_ino, status.st_size, status.st_mtime_ns


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.Process
    connection: object  # the server's end of the pipe
    ready: bool = False
    retiring: bool = False  # told to exit: its end is no failure
    in_flight: tuple | None = None  # the key of the request it has
    broken: Message | None = None  # why it could not start, as it said before it exited


@dataclass
class _Request:
    message: tuple  # what the worker is sent, with the key in second place
    asked_at: float = field(default_factory=time.monotonic)


class Explainer:
    """One worker process serving saliency maps and augmentation previews (see the module docstring). Thread-safe:
    every session of the server shares one."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS, cache_entries: int = CACHE_ENTRIES,
                 forget_seconds: float = FORGET_SECONDS, threads: int | None = None,
                 clock: Callable[[], float] = time.monotonic, worker_target: Callable | None = None):
        self.idle_seconds = idle_seconds
        self.cache_entries = cache_entries
        self.forget_seconds = forget_seconds
        self.threads = threads or usable_cores()
        self._clock = clock
        self._worker_target = worker_target or _worker_main  # tests give a stand-in (no TensorFlow)
        self._context = multiprocessing.get_context("spawn")  # never fork a process full of server threads
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._results: OrderedDict[tuple, object] = OrderedDict()
        self._queued: dict[tuple, _Request] = {}
        self._worker: _Worker | None = None
        self._idle_timer: threading.Timer | None = None
        self._closed = False
        self.workers_started = 0  # for tests and the benchmark

    # --- what pages call -------------------------------------------------------------------------------------------

    def explanation(self, name: str, models_dir: Path, image: np.ndarray, wait: float = 0.0):
        """The saliency.Explanation of the stored model `name` for one (28, 28) image in [0, 1], or Pending, or
        Failed. With `wait` > 0, blocks up to that many seconds for it (the Draw page waits in short steps)."""
        from mnist_core.store import StoreError, model_path

        image = np.ascontiguousarray(image, dtype=np.float32)
        if image.shape != (IMAGE_SIZE, IMAGE_SIZE) or not np.all(np.isfinite(image)):
            raise ValueError(f"expected one finite 28x28 image, got an array of shape {image.shape}")
        models_dir = Path(models_dir).resolve()
        try:
            path = model_path(name, models_dir)  # checks the name
            identity = _file_identity(path)
        except StoreError as error:
            return Failed(message_of(error))
        except OSError:
            return Failed(M_("There is no model named {name}.", name=repr(name)))
        key = ("explain", str(models_dir), name, identity, image_key(image))
        return self._ask(key, ("explain", key, str(models_dir), name, image), wait)

    def augmentation(self, seed: int, wait: float = 0.0):
        """An AugmentationPreview of the preview digits (preview_indices) distorted with `seed`, or Pending, or
        Failed."""
        seed = int(seed)
        key = ("augment", seed)
        return self._ask(key, ("augment", key, seed), wait)

    def warm_up(self) -> None:
        """Start the worker now if none runs, so the first request does not wait for TensorFlow's import."""
        with self._lock:
            if not self._closed and self._worker is None:
                self._spawn()
                self._start_idle_timer()

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
            self._cancel_idle_timer()
            self._answered.notify_all()
        if worker is not None:
            worker.retiring = True
            self._send(worker, ("exit",))
            worker.process.join(EXIT_GRACE_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()

    def worker_pid(self) -> int | None:
        """The live worker's process id, None when there is none (for tests and the memory benchmark)."""
        with self._lock:
            worker = self._worker
        return worker.process.pid if worker is not None and worker.process.is_alive() else None

    def describe(self) -> str:
        with self._lock:
            running = self._worker is not None
            queued = len(self._queued)
        return f"explainer: {'one worker process' if running else 'no worker (starts when asked)'}, {queued} queued"

    # --- inside --------------------------------------------------------------------------------------------------

    def _ask(self, key: tuple, message: tuple, wait: float):
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                if key in self._results:
                    self._results.move_to_end(key)
                    return self._results[key]
                if self._closed:
                    return Failed(M_("The explainer is shut down."))
                worker = self._worker
                if worker is None or worker.in_flight != key:
                    self._queued[key] = _Request(message, self._clock())  # asked again: it stays fresh
                self._dispatch()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    worker = self._worker
                    return Pending(starting=worker is not None and not worker.ready)
                self._answered.wait(remaining)

    def _dispatch(self) -> None:
        """Send the freshest queued request to the worker if it is free (with the lock held)."""
        now = self._clock()
        for key in [key for key, request in self._queued.items() if now - request.asked_at > self.forget_seconds]:
            del self._queued[key]
        if self._closed or not self._queued:
            return
        if self._worker is None:
            self._spawn()
        worker = self._worker
        if worker.in_flight is not None:
            return
        key = max(self._queued, key=lambda queued: self._queued[queued].asked_at)
        request = self._queued.pop(key)
        self._cancel_idle_timer()
        worker.in_flight = key
        if not self._send(worker, request.message):
            log.warning("explainer worker %s was gone when a request was sent", worker.process.pid)

    @staticmethod
    def _send(worker: _Worker, message: tuple) -> bool:
        try:
            worker.connection.send(message)
            return True
        except (OSError, EOFError, BrokenPipeError):
            return False

    def _spawn(self) -> None:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=self._worker_target, args=(child_end, self.threads, MODELS_KEPT),
                                        name="mnist-lab-explainer", daemon=True)
        process.start()
        child_end.close()  # the child has its own; ours would keep the pipe open after the child died
        worker = _Worker(process, parent_end)
        self._worker = worker
        self.workers_started += 1
        threading.Thread(target=self._read, args=(worker,), name=f"explainer-{process.pid}-reader",
                         daemon=True).start()

    def _store(self, key: tuple, value) -> None:
        self._results[key] = value
        self._results.move_to_end(key)
        while len(self._results) > self.cache_entries:
            self._results.popitem(last=False)

    def _read(self, worker: _Worker) -> None:
        """The worker's answers until its pipe closes; then, if it had a request, that request fails."""
        while True:
            try:
                message = worker.connection.recv()
            except (EOFError, OSError):
                break
            self._handle(worker, message)
        worker.process.join(EXIT_GRACE_SECONDS)
        self._worker_ended(worker, worker.process.exitcode)
        worker.connection.close()

    def _handle(self, worker: _Worker, message: tuple) -> None:
        kind = message[0]
        with self._lock:
            if kind == "ready":
                worker.ready = True
            elif kind == "broken":
                worker.broken = message[1]
            elif kind in ("result", "failed"):
                key = message[1]
                self._store(key, message[2] if kind == "result" else Failed(message[2]))
                worker.in_flight = None
                self._dispatch()
                if worker.in_flight is None and self._worker is worker:
                    self._start_idle_timer()
            self._answered.notify_all()

    def _worker_ended(self, worker: _Worker, exitcode: int | None) -> None:
        with self._lock:
            if worker.in_flight is not None and not worker.retiring:
                if worker.broken is not None:
                    reason = worker.broken
                else:
                    reason = M_("The explainer process ended unexpectedly (exit code {code}: killed, or out of "
                                "memory?) while it worked on this drawing: draw again to try once more.",
                                code=exitcode)
                log.error("explainer worker %s ended with a request in hand: %s", worker.process.pid, reason)
                self._store(worker.in_flight, Failed(reason))
            if self._worker is worker:
                self._worker = None
                self._cancel_idle_timer()
                self._dispatch()  # what was queued meanwhile gets a new worker
            self._answered.notify_all()

    def _start_idle_timer(self) -> None:
        self._cancel_idle_timer()
        timer = threading.Timer(self.idle_seconds, self._retire_if_idle)
        timer.daemon = True
        timer.start()
        self._idle_timer = timer

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _retire_if_idle(self) -> None:
        with self._lock:
            worker = self._worker
            if worker is None or worker.in_flight is not None or self._queued:
                return
            worker.retiring = True
            self._worker = None
            self._idle_timer = None
        log.info("explainer worker %s idle for %.0f s: told to exit", worker.process.pid, self.idle_seconds)
        self._send(worker, ("exit",))


# --- the worker process ---------------------------------------------------------------------------------------


def _worker_main(connection, threads: int, models_kept: int) -> None:
    """The explainer process: import TensorFlow once, then answer requests until told to exit (or the server's end
    of the pipe closes). Every failure of a request is answered as ("failed", key, message)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except BaseException as error:  # the request in hand fails with this; the next one gets a new worker
        connection.send(("broken", M_("The explainer could not start ({kind}: {error}).", kind=type(error).__name__,
                                      error=message_of(error))))
        connection.close()
        raise SystemExit(1) from None
    connection.send(("ready",))
    models: OrderedDict[tuple, object] = OrderedDict()  # (models_dir, name, identity) -> saliency.ModelSaliency
    preview_digits: list = []  # (originals, labels), loaded on the first augmentation request

    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            break  # the server is gone
        if message[0] == "exit":
            break
        key = message[1]
        try:
            if message[0] == "explain":
                _, _, models_dir, name, image = message
                explainer = _model_saliency(models, (models_dir, name, key[3]), models_kept)
                connection.send(("result", key, explainer.explain(image)))
            elif message[0] == "augment":
                connection.send(("result", key, _augmentation_preview(preview_digits, message[2])))
            else:
                connection.send(("failed", key, M_("unknown request {kind}", kind=repr(message[0]))))
        except Exception as error:  # noqa: BLE001 - the request is the boundary; the worker carries on
            from mnist_core.store import StoreError

            log.exception("explainer request %s failed", key[0])
            reason = message_of(error) if isinstance(error, StoreError) else M_(
                "{kind}: {error}", kind=type(error).__name__, error=message_of(error))
            connection.send(("failed", key, reason))
    connection.close()


def _model_saliency(models: OrderedDict, model_key: tuple, models_kept: int):
    from mnist_core.saliency import ModelSaliency
    from mnist_core.store import load_model

    if model_key in models:
        models.move_to_end(model_key)
        return models[model_key]
    models_dir, name, _ = model_key
    explainer = ModelSaliency(load_model(name, Path(models_dir)))
    models[model_key] = explainer
    while len(models) > models_kept:
        models.popitem(last=False)
    return explainer


PREVIEW_VARIANTS = 3  # distorted versions of each digit in a preview


def _augmentation_preview(preview_digits: list, seed: int) -> AugmentationPreview:
    """The preview digits distorted PREVIEW_VARIANTS times with training.distort, the trainer's own transformation."""
    import tensorflow as tf

    from mnist_core.training import distort

    if not preview_digits:
        from mnist_core.data import load_mnist

        (x_train, y_train), _ = load_mnist()
        chosen = preview_indices(x_train, y_train)
        # Copies: the 60,000 training images are freed when this returns; the worker keeps ten.
        preview_digits.extend([x_train[chosen].astype(np.float32) / 255.0, y_train[chosen].astype(np.int32)])
    originals, labels = preview_digits
    tf.random.set_seed(seed)
    distorted = np.stack([distort(tf.constant(originals), tf.constant(labels)).numpy()
                          for _ in range(PREVIEW_VARIANTS)])
    return AugmentationPreview(originals=originals, labels=labels, distorted=distorted.astype(np.float32), seed=seed)
