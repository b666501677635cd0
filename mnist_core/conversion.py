"""LiteRT files made on demand, in a separate process: the web server asks, a worker with TensorFlow converts.

Two things can be missing: a model's own `<name>.tflite` (models saved before LiteRT, or copied into the store)
and the measured download formats of the Models page (export.measure_exports). ensure_litert_model and
ensure_export_report return what exists and otherwise have it made by `python -m mnist_core convert`, through
run_conversion_worker: the one place that starts such a process (the job scheduler takes it over later).
The caller waits; one conversion per model and kind runs at a time in this process, the others wait for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from mnist_core.constants import MODELS_DIR, PROJECT_ROOT
from mnist_core.i18n import M_, Message

# The worker's stderr: "error: <English>" for a person, then "message: <JSON>" (i18n.Message.to_json) for the pages,
# which render it in each visitor's language.
MESSAGE_PREFIX = "message: "

CONVERT_TIMEOUT_S = 300  # TensorFlow's import and one conversion: seconds; a loaded 2-core machine: under a minute
MEASURE_TIMEOUT_S = 900  # four conversions and five evaluations of 10,000 images

_locks_guard = threading.Lock()
_locks: dict[tuple[str, str, bool], threading.Lock] = {}
# (store, name, exports) -> (the .keras file's identity, the worker's error): a model that cannot be converted is
# not sent to a new worker on every page run, only once its file changes.
_failures: dict[tuple[str, str, bool], tuple[tuple, Exception]] = {}


def _key(name: str, models_dir: Path, exports: bool) -> tuple[str, str, bool]:
    return str(Path(models_dir).resolve()), name, exports


def _lock_for(name: str, models_dir: Path, exports: bool) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(_key(name, models_dir, exports), threading.Lock())


def _file_identity(path: Path) -> tuple:
    try:
        status = path.stat()
    except FileNotFoundError:
        return ()
    return status.st_ino, status.st_size, status.st_mtime_ns


def _convert_once(name: str, models_dir: Path, exports: bool) -> None:
    """run_conversion_worker, unless it already failed on this very .keras file: then its error again."""
    from mnist_core.store import StoreError, model_path

    key = _key(name, models_dir, exports)
    identity = _file_identity(model_path(name, models_dir))
    failed = _failures.get(key)
    if failed is not None and failed[0] == identity:
        raise failed[1]
    try:
        run_conversion_worker(name, models_dir, exports=exports)
    except StoreError as error:
        _failures[key] = (identity, error)
        raise
    _failures.pop(key, None)


def run_conversion_worker(name: str, models_dir: Path = MODELS_DIR, exports: bool = False) -> None:
    """Run `python -m mnist_core convert NAME` (with `--exports`: the download formats and their measurements) in
    a new process and wait for it. A failure comes back as BrokenModelError (a StoreError, which pages show) with the
    worker's own Message (sent as JSON on its stderr), or what is known of a crash or a timeout.
    """
    from mnist_core.store import BrokenModelError

    command = [sys.executable, "-m", "mnist_core", "convert", name, "--models-dir", str(models_dir)]
    if exports:
        command.append("--exports")
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    timeout = MEASURE_TIMEOUT_S if exports else CONVERT_TIMEOUT_S
    try:
        completed = subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True,
                                   timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BrokenModelError(M_("Converting {name} took longer than {seconds} s and was stopped.", name=repr(name),
                                  seconds=timeout)) from None
    if completed.returncode == 0:
        return
    lines = completed.stderr.splitlines()
    for line in reversed(lines):
        if line.startswith(MESSAGE_PREFIX):
            try:
                raise BrokenModelError(Message.from_json(line.removeprefix(MESSAGE_PREFIX)))
            except ValueError:  # not one of ours after all: the English line below says it
                break
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if errors:
        raise BrokenModelError(errors[-1])
    tail = completed.stderr.strip().splitlines()[-1:] or ["no message"]
    raise BrokenModelError(M_("Converting {name} failed (exit code {code}): {error}", name=repr(name),
                              code=completed.returncode, error=tail[0]))


def ensure_litert_model(name: str, models_dir: Path = MODELS_DIR) -> Path:
    """The path of `name`'s `.tflite`, converted first in a worker if the model has none. StoreError if it can't."""
    from mnist_core.store import ModelNotFound, litert_path, model_path

    models_dir = Path(models_dir)
    path = litert_path(name, models_dir)  # checks the name
    if path.exists():
        return path
    if not model_path(name, models_dir).exists():
        raise ModelNotFound(M_("There is no model named {name}.", name=repr(name)))
    with _lock_for(name, models_dir, exports=False):
        if not path.exists():  # another session's conversion may have made it while this one waited
            _convert_once(name, models_dir, exports=False)
    return path


def ensure_export_report(name: str, models_dir: Path = MODELS_DIR):
    """`name`'s measured download formats (export.ExportReport), made first in a worker if they are not cached."""
    from mnist_core.export import cached_report
    from mnist_core.store import BrokenModelError

    report = cached_report(name, models_dir)
    if report is not None:
        return report
    with _lock_for(name, Path(models_dir), exports=True):
        report = cached_report(name, models_dir)
        if report is None:
            _convert_once(name, Path(models_dir), exports=True)
            report = cached_report(name, models_dir)
    if report is None:
        raise BrokenModelError(M_("The exports of {name} were made but do not match its file: it changed meanwhile.",
                                  name=repr(name)))
    return report
