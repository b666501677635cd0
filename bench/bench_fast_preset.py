"""Where the seconds of a preset's training go ("fast" by default, or "demo"), as a worker runs it: from the job's
start to the saved model.

Each run is a fresh process that first does what a warm training worker has done before the click (imports
TensorFlow, builds the architecture, loads MNIST), then runs the job's work (jobs.work.train_and_save) as a worker does,
and times: the job's start-up (data, model, compile, pipelines) until Keras starts fitting, the first batch
(tracing), each epoch (with its validation), the float32 copy, the evaluation (when the saved accuracy cannot reuse
the last epoch's) and the save. bench_train_click.py measures the same run from the browser, click to message.

Run from the project root:

    .venv/bin/python bench/bench_fast_preset.py                      # 3 runs in each precision
    .venv/bin/python bench/bench_fast_preset.py --runs 5 --precision bfloat16
    .venv/bin/python bench/bench_fast_preset.py --preset demo --precision float32
    .venv/bin/python bench/bench_fast_preset.py --cold                # without the idle worker's rehearsal first
    taskset -c 0 .venv/bin/python bench/bench_fast_preset.py         # on one core
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import median, print_header, print_table


def child(precision: str, preset: str, rehearse: bool = True) -> dict:
    """One run in this process; returns the timeline in seconds since the job's start. With `rehearse`, the process
    first rehearses as an idle worker does (work.rehearse: the default preset on a few batches, its model kept)."""
    import keras  # noqa: F401  (the Train page has TensorFlow loaded before anyone clicks)

    import threading
    from pathlib import Path

    import mnist_core.evaluation as evaluation
    import mnist_core.jobs.work as work
    from mnist_core.architectures import build_model
    from mnist_core.jobs.job import JobSpec
    from mnist_core.data import load_mnist
    from mnist_core.training import PRESETS, BatchEvent, EpochEvent, with_overrides

    config = with_overrides(PRESETS[preset], precision=precision)
    build_model(config.architecture)  # the page's architecture summary
    mnist = load_mnist()
    if rehearse:
        work.rehearse(threading.Event(), mnist=mnist)
    marks: dict[str, float] = {}
    epochs: list[dict] = []
    real_train, real_save, real_evaluate = work.train, work.save_trained_model, evaluation.evaluate

    def record(event):
        now = time.perf_counter()
        if isinstance(event, BatchEvent) and "first_batch" not in marks:
            marks["first_batch"] = now
            marks["fit_start"] = now - event.elapsed_seconds
        elif isinstance(event, EpochEvent):
            epochs.append({"end": now, "seconds": event.seconds, "val_accuracy": event.val_accuracy})

    def train(config, on_event=None, **options):
        def both(event):
            record(event)
            if on_event is not None:
                on_event(event)

        result = real_train(config, on_event=both, **options)
        marks["train_returned"] = time.perf_counter()
        return result

    def save(*args, **kwargs):
        marks["save_start"] = time.perf_counter()
        info = real_save(*args, **kwargs)
        marks["save_end"] = time.perf_counter()
        return info

    def evaluate(*args, **kwargs):
        started = time.perf_counter()
        result = real_evaluate(*args, **kwargs)
        marks["evaluation"] = marks.get("evaluation", 0.0) + time.perf_counter() - started
        return result

    work.train, work.save_trained_model, evaluation.evaluate = train, save, evaluate
    with tempfile.TemporaryDirectory(prefix="bench-fast-") as store:
        spec = JobSpec(config=config, model_name=preset, models_dir=store)
        cpu_started = time.process_time()
        started = time.perf_counter()
        outcome = work.train_and_save(spec, lambda event: None, threading.Event(), mnist=mnist)
        ended = time.perf_counter()
        if outcome.saved_name is None:
            raise SystemExit(outcome.error)
        info = json.loads((Path(store) / f"{outcome.saved_name}.json").read_text())
    return {
        "precision": precision,
        "total": ended - started,
        "cores": (time.process_time() - cpu_started) / (ended - started),
        "startup": marks["fit_start"] - started,
        "first_batch": marks["first_batch"] - marks["fit_start"],
        "epochs": [epoch["seconds"] for epoch in epochs],
        "val_accuracy": [epoch["val_accuracy"] for epoch in epochs],
        "after_fit": marks["train_returned"] - epochs[-1]["end"],
        "evaluation": marks.get("evaluation", 0.0),
        "save": marks["save_end"] - marks["save_start"] - marks.get("evaluation", 0.0),
        "to_finished": ended - marks["save_end"],
        "test_accuracy": info["test_accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--precision", choices=("float32", "bfloat16"), action="append",
                        help="(repeatable) default: both")
    parser.add_argument("--preset", default="fast", help="a preset of mnist_core.training.PRESETS (default: fast)")
    parser.add_argument("--cold", action="store_true",
                        help="no rehearsal first (a worker that got its job before it could rehearse)")
    parser.add_argument("--child", choices=("float32", "bfloat16"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.preset, rehearse=not args.cold)))
        return

    from mnist_core.training import PRESETS

    print_header(f"The {args.preset!r} preset as a worker runs it: where the seconds go", with_tensorflow=True)
    print(f"preset: {PRESETS[args.preset]}")
    precisions = args.precision or ["bfloat16", "float32"]
    rows, totals = [], {precision: [] for precision in precisions}
    for run in range(1, args.runs + 1):
        for precision in precisions:  # interleaved, so a change in the machine's load hits both alike
            load = benchlib.load_average()
            command = [sys.executable, __file__, "--child", precision, "--preset", args.preset,
                       *(["--cold"] if args.cold else [])]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            timeline = json.loads(output.strip().splitlines()[-1])
            totals[precision].append(timeline["total"])
            epochs = timeline["epochs"]
            accounted = (timeline["startup"] + sum(epochs) + timeline["after_fit"] + timeline["evaluation"]
                         + timeline["save"] + timeline["to_finished"])
            rows.append([
                run, precision, f"{timeline['startup']:.2f}", f"{timeline['first_batch']:.2f}",
                " + ".join(f"{seconds:.2f}" for seconds in epochs), f"{timeline['after_fit']:.2f}",
                f"{timeline['evaluation']:.2f}", f"{timeline['save']:.2f}", f"{timeline['to_finished']:.2f}",
                f"{timeline['total']:.2f}", f"{timeline['total'] - accounted:+.2f}", f"{timeline['cores']:.2f}",
                " / ".join(f"{accuracy:.4f}" for accuracy in timeline["val_accuracy"]),
                f"{timeline['test_accuracy']:.4f}", f"{load:.1f}",
            ])
            print(f"run {run} {precision}: {timeline['total']:.2f} s", flush=True)
    print()
    print("seconds since the job started; 'first batch' is part of epoch 1; 'rest' = total - the parts")
    print_table(["run", "precision", "start-up", "first batch", "epochs (with validation)", "float32 copy",
                 "evaluation", "save", "job ends", "total", "rest", "cores used", "val. accuracy per epoch",
                 "saved test accuracy", "load"], rows)
    for precision, values in totals.items():
        print(f"{precision}: job start -> saved, median {median(values):.2f} s over {len(values)} runs")
    print(f"load average at the end: {benchlib.load_average():.2f}")


if __name__ == "__main__":
    main()
