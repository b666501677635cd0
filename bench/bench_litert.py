"""LiteRT: the export table of the shipped models, the 10,000-image evaluation, and what a save's conversion costs.

1. Export table (issue 14): each shipped model converted to every download format (export.measure_exports, on
   a scratch copy of models/): size, test accuracy, difference to Keras, same answers as Keras; single-image
   latency as the median of ROUNDS interleaved rounds of 200 calls each (one thread).
2. The Models page's evaluation on the 10,000 test images: LiteRT in batches of inference.BATCH_SIZE (the server's
   path), timed first, before anything imports TensorFlow; then the Keras graph it replaced, ROUNDS rounds each.
3. The conversion every save now does (export.litert_model: the served .tflite with its two signatures).

Run from the project root (a few minutes on 2 cores):

    .venv/bin/python bench/bench_litert.py
    .venv/bin/python bench/bench_litert.py --rounds 5
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import median, print_header, print_table

from mnist_core.data import load_mnist
from mnist_core.evaluation import evaluate
from mnist_core.export import export_path, litert_model, measure_exports, single_image_latency_ms
from mnist_core.inference import BATCH_SIZE, Classifier
from mnist_core.keras_inference import KerasClassifier
from mnist_core.store import load_model

MODELS = ("cnn", "strong-cnn")


def spread(values: list[float], digits: int = 3) -> str:
    return f"{median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print_header("bench_litert")
    mnist = load_mnist()
    (_, _), (x_test, y_test) = mnist
    scratch = Path(tempfile.mkdtemp(prefix="mnist-lab-bench-"))
    try:
        for name in MODELS:
            for suffix in (".keras", ".json"):
                shutil.copy2(benchlib.PROJECT_ROOT / "models" / f"{name}{suffix}", scratch)

        # 2 first: LiteRT timed before anything imports TensorFlow (the server has none; TensorFlow's threads in
        # the same process slowed LiteRT's 10k evaluation of strong-cnn from ~4.7 s to ~9 s here).
        served = {name: Classifier.load(name, benchlib.PROJECT_ROOT / "models") for name in MODELS}
        litert_seconds = {name: [] for name in MODELS}
        accuracy = {}
        for _ in range(args.rounds):
            for name in MODELS:
                started = time.perf_counter()
                accuracy[name] = evaluate(served[name], x_test, y_test).accuracy
                litert_seconds[name].append(time.perf_counter() - started)
        assert not any(module.split(".")[0] in ("tensorflow", "keras") for module in sys.modules)
        keras_seconds = {name: [] for name in MODELS}
        keras = {name: KerasClassifier(load_model(name, benchlib.PROJECT_ROOT / "models"), name) for name in MODELS}
        for name in MODELS:
            keras[name].predict_proba(x_test[:10])  # traces the graph once, outside the clock
        for _ in range(args.rounds):
            for name in MODELS:
                started = time.perf_counter()
                keras_accuracy = evaluate(keras[name], x_test, y_test).accuracy
                keras_seconds[name].append(time.perf_counter() - started)
                assert keras_accuracy == accuracy[name], f"{name}: LiteRT and Keras disagree on the accuracy"
        evaluation_rows = [[name, f"{accuracy[name]:.2%}", spread(litert_seconds[name], 2),
                            spread(keras_seconds[name], 2)] for name in MODELS]

        print(f"## 1. Export table: the 10,000 test images, latency median of {args.rounds} rounds (range)\n")
        for name in MODELS:
            started = time.perf_counter()
            report = measure_exports(name, scratch, mnist=mnist)
            seconds = time.perf_counter() - started
            classifiers = {"keras": KerasClassifier(load_model(name, scratch), name)}
            for row in report.rows[1:]:
                classifiers[row.format] = Classifier(export_path(name, row.format, scratch).read_bytes(), name)
            latencies = {key: [] for key in classifiers}
            for _ in range(args.rounds):
                for key, classifier in classifiers.items():
                    latencies[key].append(single_image_latency_ms(classifier, x_test[0]))
            print(f"### {name} (conversions and measurements took {seconds:.0f} s)\n")
            print_table(
                ["format", "file", "size (KB)", "test accuracy", "vs Keras (points)", "same answer as Keras",
                 "latency (ms)"],
                [[row.title, row.file_name, f"{row.size_bytes / 1000:,.0f}", f"{row.accuracy:.2%}",
                  f"{(row.accuracy - report.keras_accuracy) * 100:+.2f}", f"{row.agreement:.2%}",
                  spread(latencies[row.format])] for row in report.rows],
            )

        print(f"## 2. Evaluation on the 10,000 test images (s), {args.rounds} rounds\n")
        print_table(["model", "accuracy", f"LiteRT, batches of {BATCH_SIZE} (the server; no TensorFlow loaded yet)",
                     "Keras tf.function graph"], evaluation_rows)

        print(f"## 3. The conversion each save adds (export.litert_model), {args.rounds} rounds (s)\n")
        rows = []
        for name in MODELS:
            model = load_model(name, benchlib.PROJECT_ROOT / "models")
            seconds = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                content = litert_model(model)
                seconds.append(time.perf_counter() - started)
            rows.append([name, f"{len(content) / 1000:,.0f} KB", spread(seconds, 2)])
        print_table(["model", ".tflite (two signatures)", "conversion"], rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average at the end: {benchlib.load_average():.2f}")


if __name__ == "__main__":
    main()
