"""The body of a training worker process (started by local.py's LocalRunner with the spawn method).

It limits its own memory if asked (RLIMIT_AS: a job that needs more fails in the worker, not in the whole
container), sets TensorFlow's thread counts, imports TensorFlow and loads MNIST before the first job (the warm-up),
rehearses the default preset's job once if no job is waiting yet (work.rehearse: the first real job then starts
faster), then runs the jobs it is sent one at a time. Messages to the server: ("ready",), ("event", event or SAVING),
("done", JobOutcome). From the server: ("job", JobSpec), ("stop", job_id), ("exit",). A closed pipe means the
server is gone: the worker exits.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger(__name__)


def _limit_memory(megabytes: int) -> None:
    import resource

    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def describe_start_failure(error: BaseException, memory_limit_mb: int):
    """Why a worker could not get ready (import TensorFlow, load MNIST), for the person whose job waited: an i18n
    Message, sent to the server as it is (the server's pages render it in each reader's language)."""
    from mnist_core.i18n import M_, message_of

    text = str(error)
    if isinstance(error, MemoryError) or "failed to map segment" in text or "Cannot allocate memory" in text:
        if memory_limit_mb:
            return M_("The training worker ran out of memory while it started (its limit is {limit} MB): nothing "
                      "was trained.", limit=memory_limit_mb)
        return M_("The training worker ran out of memory while it started: nothing was trained.")
    return M_("The training worker could not start ({kind}: {error}): nothing was trained.",
              kind=type(error).__name__, error=message_of(error))


def worker_main(connection, threads: int, memory_limit_mb: int = 0) -> None:
    if memory_limit_mb:
        _limit_memory(memory_limit_mb)
    inbox: queue.Queue = queue.Queue()
    stop = threading.Event()
    lock = threading.Lock()
    current_job: list[str | None] = [None]
    rehearsal_over = threading.Event()
    stopped_early: set[str] = set()  # Stops that came before their job started (a worker still warming up)

    def listen() -> None:
        # Reads everything the server sends, so a Stop arrives while the main thread trains.
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                os._exit(0)  # the server is gone: nobody to train for
            if message[0] in ("job", "exit"):
                rehearsal_over.set()  # a real job (or the end) stops the rehearsal at its next batch call
            if message[0] == "stop":
                with lock:
                    if message[1] == current_job[0]:
                        stop.set()
                    else:
                        stopped_early.add(message[1])
            else:
                inbox.put(message)

    threading.Thread(target=listen, name="worker-listener", daemon=True).start()

    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        import keras

        from mnist_core.data import load_mnist
        from mnist_core.jobs.work import rehearse, run_job

        mnist = load_mnist()
    except BaseException as error:  # the runner fails the job it sends with this, and starts a new worker next time
        connection.send(("broken", describe_start_failure(error, memory_limit_mb)))
        connection.close()
        raise SystemExit(1) from None
    connection.send(("ready",))
    if inbox.empty():
        try:
            rehearse(rehearsal_over, mnist=mnist)
        except Exception:  # only a warm-up: the worker carries on without it
            log.warning("the worker's rehearsal failed", exc_info=True)
        keras.backend.clear_session()

    while True:
        message = inbox.get()
        if message[0] == "exit":
            break
        spec = message[1]
        with lock:
            stop.clear()
            current_job[0] = spec.job_id
            if spec.job_id in stopped_early:
                stop.set()
        outcome = run_job(spec, lambda event: connection.send(("event", event)), stop, mnist=mnist)
        current_job[0] = None
        keras.backend.clear_session()  # the next job starts from a clean Keras state
        connection.send(("done", outcome))
    connection.close()
