"""Drawn digit -> probabilities: `to_mnist` on a 280x280 RGBA canvas, then `Classifier.predict_proba` on the one
image, as the Draw page does on every stroke; 200 timed runs per shipped model, after a few warm-up calls.

Run from the project root (well under a minute):

    .venv/bin/python bench/bench_predict.py
    .venv/bin/python bench/bench_predict.py --runs 500

The canvas is what the Draw page's canvas sends: opaque black RGBA with a white, anti-aliased stroke 20 px
wide (a "7"). The models are interleaved run by run, so a slow moment of the machine hits both alike.
"""

from __future__ import annotations

import argparse
import time

import benchlib
from benchlib import median, percentile, print_header, print_table, verdict

import numpy as np
from PIL import Image, ImageDraw

from mnist_core.constants import CANVAS_SIZE
from mnist_core.inference import Classifier
from mnist_core.preprocess import to_mnist

TARGET_P50_MS = 10.0
TARGET_P95_MS = 25.0
MODELS = ("cnn", "strong-cnn")
WARM_UP = 5


def drawn_seven(stroke_width: int = 20) -> np.ndarray:
    """A (280, 280, 4) uint8 canvas like the Draw page's canvas sends (white strokes on opaque black)."""
    canvas = Image.new("RGBA", (CANVAS_SIZE, CANVAS_SIZE), (0, 0, 0, 255))
    pen = ImageDraw.Draw(canvas)
    stroke = [(80, 70), (200, 70), (150, 150), (120, 230)]
    pen.line(stroke, fill=(255, 255, 255, 255), width=stroke_width, joint="curve")
    for x, y in (stroke[0], stroke[-1]):  # round pen ends, as a browser stroke has
        pen.ellipse((x - stroke_width / 2, y - stroke_width / 2, x + stroke_width / 2, y + stroke_width / 2),
                    fill=(255, 255, 255, 255))
    return np.asarray(canvas).copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    print_header("bench_predict", with_tensorflow=True)
    canvas = drawn_seven()
    models_dir = benchlib.PROJECT_ROOT / "models"
    classifiers = {}
    first_call_ms = {}
    for name in MODELS:
        classifiers[name] = Classifier.load(name, models_dir)
        started = time.perf_counter()
        classifiers[name].predict_proba(to_mnist(canvas))
        first_call_ms[name] = (time.perf_counter() - started) * 1000
        for _ in range(WARM_UP):
            classifiers[name].predict_proba(to_mnist(canvas))

    total = {name: [] for name in MODELS}
    preprocess = {name: [] for name in MODELS}
    eager = {name: [] for name in MODELS}
    predicted = {}
    for _ in range(args.runs):
        for name, classifier in classifiers.items():
            started = time.perf_counter()
            image = to_mnist(canvas)
            prepared = time.perf_counter()
            probabilities = classifier.predict_proba(image)
            finished = time.perf_counter()
            preprocess[name].append((prepared - started) * 1000)
            total[name].append((finished - started) * 1000)
            predicted[name] = int(probabilities[0].argmax())
            # For comparison, what the Classifier did before it compiled the call: an eager model(x).
            started = time.perf_counter()
            np.asarray(classifier.model(image[np.newaxis], training=False))
            eager[name].append((time.perf_counter() - started) * 1000)

    print(f"## Drawn digit -> probabilities, {args.runs} runs per model (ms)\n")
    rows, met = [], True
    for name in MODELS:
        classify = [whole - prep for whole, prep in zip(total[name], preprocess[name])]
        p50, p95 = median(total[name]), percentile(total[name], 0.95)
        met = met and p50 <= TARGET_P50_MS and p95 <= TARGET_P95_MS
        rows.append([
            name, predicted[name], f"{median(preprocess[name]):.2f}", f"{median(classify):.2f}",
            f"{p50:.2f}", f"{p95:.2f}", f"{max(total[name]):.2f}", f"{first_call_ms[name]:.0f}",
            f"{median(eager[name]):.2f}", f"{percentile(eager[name], 0.95):.2f}",
        ])
    print_table(
        ["model", "predicted", "to_mnist p50", "classify p50", "total p50", "total p95", "total max", "first call",
         "eager model(x) p50", "eager p95"],
        rows,
    )
    print(f"targets: p50 <= {TARGET_P50_MS:.0f} ms, p95 <= {TARGET_P95_MS:.0f} ms: {verdict(met)}")
    print("(first call = the first prediction after loading the model, which traces the compiled graph once;")
    print(" eager model(x) = the classify step as it was before this benchmark: a plain eager Keras call)")
    print(f"load average at the end: {benchlib.load_average():.2f}")


if __name__ == "__main__":
    main()
