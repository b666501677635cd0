"""The work of a training job, wherever it runs (a worker process, a test's thread): train, evaluate, save.

`run_job` reports progress through a plain callback and honours a stop flag, like `train()` itself; it never
raises for a failure of the work (the outcome says what went wrong), so a runner only has to carry messages.
TensorFlow is imported here, inside the functions: a web process that imports mnist_core.jobs stays small.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mnist_core.constants import MODELS_DIR
from mnist_core.finetune import finetune_and_save
from mnist_core.i18n import M_, message_of
from mnist_core.jobs.job import JobOutcome, JobSpec, JobStatus
from mnist_core.training import TrainResult, train

log = logging.getLogger(__name__)

# What the worker says besides progress events: the job has moved on to evaluating and saving.
SAVING = "saving"


def save_trained_model(
    result: TrainResult,
    name: str,
    models_dir: Path = MODELS_DIR,
    command: str | None = None,
    shipped: bool = False,
    owner: str = "",
    owner_id: str = "",
    overwrite: bool = False,
    mnist=None,
):
    """Save `result.model` with its metadata and its accuracy on the 10k test set; returns the ModelInfo.

    The accuracy is the last epoch's validation accuracy when that was measured on the test set after the run's
    last batch (`measured_test_accuracy`); otherwise the model is evaluated on the test set here.
    """
    from mnist_core.store import ModelInfo, save_model

    test_accuracy = measured_test_accuracy(result)
    if test_accuracy is None:
        from mnist_core.data import load_mnist
        from mnist_core.evaluation import evaluate
        from mnist_core.keras_inference import KerasClassifier

        (_, _), (x_test, y_test) = mnist if mnist is not None else load_mnist()
        test_accuracy = evaluate(KerasClassifier(result.model), x_test, y_test).accuracy
    info = ModelInfo(
        name=name,
        architecture=result.config.architecture,
        config=result.config.to_dict(),
        test_accuracy=round(test_accuracy, 6),
        history=[asdict(event) for event in result.history],
        train_seconds=round(result.seconds, 2),
        command=command,
        shipped=shipped,
        stopped=result.stopped,
        owner=owner,
        owner_id=owner_id,
    )
    return save_model(result.model, info, models_dir, overwrite=overwrite)


def measured_test_accuracy(result: TrainResult) -> float | None:
    """The test accuracy training already measured: the last epoch's validation accuracy when the run validated on
    the test set, ended with that epoch complete and validated it in float32 (None otherwise).

    That validation ran on the weights the saved model holds, in its precision, so evaluating again would repeat
    it. After mixed-precision training the last epoch is validated by the float32 copy (training.train): a
    bfloat16 validation would read a test image or two differently, which the Models page would then contradict.
    """
    if result.config.validation != "test" or not result.validated_in_float32:
        return None
    if result.stopped or not result.history:
        return None
    last = result.history[-1]
    if not last.complete or last.epoch != result.config.epochs or last.val_accuracy is None:
        return None
    return float(last.val_accuracy)


def _save_under_a_free_name(result: TrainResult, spec: JobSpec, mnist) -> tuple[str, float]:
    """Save under the job's name or, if something took that name while training ran, the next free one."""
    from mnist_core.store import ModelExistsError, ProtectedModelError, unique_name

    models_dir = Path(spec.models_dir)
    name = spec.model_name
    for _ in range(5):  # another process may win a name again between our look and our save
        try:
            info = save_trained_model(result, name, models_dir, owner=spec.owner_name, owner_id=spec.owner_id,
                                      mnist=mnist)
            return info.name, info.test_accuracy
        except (ModelExistsError, ProtectedModelError):
            # Minutes of training must not be lost over a name: the scheduler checked it was free at the start.
            name = unique_name(spec.model_name, models_dir)
    raise RuntimeError(f"could not find a free name for {spec.model_name!r} to save under")


def train_and_save(spec: JobSpec, report: Callable[[object], None], stop_event: threading.Event,
                   mnist=None) -> JobOutcome:
    """The "train" work: train a fresh model as `spec.config` says, then evaluate and save it. The panel of test
    digits (panel.py) is watched: its answers travel with the progress events."""
    from mnist_core.panel import panel_digits

    watched, _ = panel_digits()
    result = train(spec.config, on_event=report, stop_event=stop_event, mnist=mnist,
                   watch=watched.astype(np.float32) / 255.0, reuse=True)
    if result.batches_trained == 0:
        return JobOutcome(JobStatus.STOPPED, error=M_("Stopped before the first batch: there was nothing to save."))
    report(SAVING)
    saved_name, test_accuracy = _save_under_a_free_name(result, spec, mnist)
    return JobOutcome(JobStatus.STOPPED if result.stopped else JobStatus.FINISHED, saved_name, test_accuracy)


# A worker's first job pays for what TensorFlow does once in a process (the code Keras' fit loads on first use, the
# tracing machinery, oneDNN's kernels for the network's shapes) and for tracing its model's steps. So a worker that is
# ready with nothing to do rehearses the default preset's training on a few batches, with the model compiled for the
# whole preset and kept (training.train's `reuse`): a default-preset job then restarts that model, its steps already
# traced. Measured 2026-11-30 (the fast preset's job in a fresh process, with and without): start-up 0.28-0.30 ->
# 0.15-0.17 s and first batch 1.03-1.07 -> 0.81-0.91 s when the rehearsal's model was thrown away; see BENCHMARKS.md
# ("sixth session") for the kept one. Rehearsing the save too (the LiteRT conversion) gained 0.07 s for 0.7 s.
REHEARSAL_IMAGES = 1_280


def rehearse(interrupted: threading.Event, mnist=None) -> bool:
    """The default preset's training on REHEARSAL_IMAGES training images (1 epoch, validated on one batch of the test
    set, the panel of test digits watched), the model kept for the next default-preset job and nothing else kept.
    `interrupted` (set when a real job comes) stops it at the next call into TensorFlow. Returns whether it ran to
    the end."""
    from mnist_core.panel import panel_digits
    from mnist_core.training import PRESETS

    watched, _ = panel_digits()
    result = train(PRESETS["fast"], stop_event=interrupted, mnist=mnist, watch=watched.astype(np.float32) / 255.0,
                   reuse=True, images=REHEARSAL_IMAGES)
    return not (interrupted.is_set() or result.stopped)


def import_uploaded(spec: JobSpec, report: Callable[[object], None], stop_event: threading.Event,
                    mnist=None) -> JobOutcome:
    """The "import" work: a visitor's uploaded .keras file (checked again here: model_upload), made into the app's
    shape, evaluated on the test set and saved with `uploaded=True`. The upload's temporary file is removed either
    way."""
    from mnist_core.data import load_mnist
    from mnist_core.evaluation import evaluate
    from mnist_core.keras_inference import KerasClassifier
    from mnist_core.model_upload import UploadRefused, as_app_model, load_uploaded_model
    from mnist_core.store import ModelExistsError, ModelInfo, ProtectedModelError, save_model, unique_name

    upload = Path(spec.extra_value("upload_path", ""))
    try:
        try:
            model, summary = load_uploaded_model(upload.read_bytes())
        except UploadRefused as refused:
            return JobOutcome(JobStatus.FAILED, error=message_of(refused))
        if stop_event.is_set():
            return JobOutcome(JobStatus.CANCELLED, error=M_("Cancelled before it was saved."))
        model = as_app_model(model, summary)
        report(SAVING)
        (_, _), (x_test, y_test) = mnist if mnist is not None else load_mnist()
        accuracy = round(evaluate(KerasClassifier(model, spec.model_name), x_test, y_test).accuracy, 6)
        name = spec.model_name
        for _ in range(5):
            info = ModelInfo(name=name, architecture="uploaded", config={}, test_accuracy=accuracy,
                             owner=spec.owner_name, owner_id=spec.owner_id, uploaded=True)
            try:
                saved = save_model(model, info, Path(spec.models_dir))
                return JobOutcome(JobStatus.FINISHED, saved.name, saved.test_accuracy)
            except (ModelExistsError, ProtectedModelError):
                name = unique_name(spec.model_name, Path(spec.models_dir))
        raise RuntimeError(f"could not find a free name for {spec.model_name!r} to save under")
    finally:
        upload.unlink(missing_ok=True)


# Kind of job -> its work: (spec, report, stop_event, mnist) -> JobOutcome. Adding a kind of job is adding an entry;
# the queue, the runners and the pages' snapshots treat every kind alike.
WORK: dict[str, Callable[..., JobOutcome]] = {"train": train_and_save, "import": import_uploaded,
                                              "finetune": finetune_and_save}


def run_job(
    spec: JobSpec,
    report: Callable[[object], None],
    stop_event: threading.Event,
    mnist=None,
) -> JobOutcome:
    """Do the work of `spec.kind` (training by default), reporting BatchEvent/EpochEvent (and SAVING) through
    `report`; the model is saved by the work.

    Setting `stop_event` ends training at the next batch and saves what was trained. Every failure is caught and
    returned as a FAILED outcome with a short message, an i18n Message rendered where it is shown (the traceback goes
    to the log).
    """
    try:
        work = WORK.get(spec.kind)
        if work is None:
            raise ValueError(f"no work of the kind {spec.kind!r}")
        return work(spec, report, stop_event, mnist)
    except Exception as error:  # the job is the boundary: everything is reported, nothing escapes
        log.error("training job %s (%s) failed:\n%s", spec.job_id, spec.model_name, traceback.format_exc())
        if isinstance(error, MemoryError):
            return JobOutcome(JobStatus.FAILED, error=M_(
                "MemoryError: {error} (training ran out of memory: fewer training images or a smaller batch need "
                "less).", error=message_of(error)))
        return JobOutcome(JobStatus.FAILED, error=M_("{kind}: {error}", kind=type(error).__name__,
                                                     error=message_of(error)))
