"""What a saliency map costs per drawing (issue 13): in the explainer's worker, and on the server's drawing loop.

For each shipped model, through the real Explainer (its worker process, as the Draw page uses it):
- worker: the time from asking about a new drawing to having both maps for all ten digits (integrated gradients,
  32 steps, and Grad-CAM), over `--runs` different test digits, after a first drawing that traces the graphs;
- first: that first drawing of a model (loading it and tracing its graphs; for the first model, cnn, also the
  worker's start: TensorFlow's import);
- server: what one run of the Draw page's fragment spends on it: the non-blocking `explanation()` lookup (an
  image hash and a dictionary) plus drawing the overlay (plots.saliency_overlay), once the answer is there.

Run from the project root (a minute or two):

    .venv/bin/python bench/bench_saliency.py
    .venv/bin/python bench/bench_saliency.py --runs 40
"""

from __future__ import annotations

import argparse
import time

import benchlib
from benchlib import median, percentile, print_header, print_table

import numpy as np

from mnist_core import plots
from mnist_core.data import load_test_split
from mnist_core.explainer import Explainer, Failed, Pending

MODELS = ("cnn", "strong-cnn")
WAIT_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="different test digits per model")
    arguments = parser.parse_args()

    print_header("bench_saliency.py", with_tensorflow=True)
    x_test, _ = load_test_split()
    images = x_test[: arguments.runs + 1].astype(np.float32) / 255.0
    models_dir = benchlib.PROJECT_ROOT / "models"
    explainer = Explainer(idle_seconds=600)
    try:
        rows = []
        for name in MODELS:
            first_started = time.perf_counter()
            first = explainer.explanation(name, models_dir, images[0], wait=WAIT_S)
            first_s = time.perf_counter() - first_started
            if isinstance(first, (Pending, Failed)):
                raise SystemExit(f"{name}: no explanation ({first})")
            round_trips, in_worker, server = [], [], []
            for image in images[1:]:
                asked = time.perf_counter()
                result = explainer.explanation(name, models_dir, image, wait=WAIT_S)
                round_trips.append((time.perf_counter() - asked) * 1000)
                if isinstance(result, (Pending, Failed)):
                    raise SystemExit(f"{name}: no explanation ({result})")
                in_worker.append(result.seconds * 1000)
                looked_up = time.perf_counter()
                again = explainer.explanation(name, models_dir, image)  # what a page run does, answer known
                plots.saliency_overlay(image, again.integrated_gradients[int(again.probabilities.argmax())],
                                       signed=True, side=224)
                server.append((time.perf_counter() - looked_up) * 1000)
            rows.append([name, f"{first_s:.2f}", f"{median(in_worker):.0f}", f"{percentile(in_worker, 0.95):.0f}",
                         f"{median(round_trips):.0f}", f"{percentile(round_trips, 0.95):.0f}",
                         f"{median(server):.2f}", f"{percentile(server, 0.95):.2f}"])
        print(f"\n#### Saliency per drawing, {arguments.runs} test digits per model (both methods, all ten digits)\n")
        print_table(["model", "first drawing (s)", "worker p50 (ms)", "worker p95 (ms)", "round trip p50 (ms)",
                     "round trip p95 (ms)", "server p50 (ms)", "server p95 (ms)"], rows)
        print("\n(worker = computing both maps in the explainer process; round trip = asking until the answer is "
              "there, pipe and pickling included;\n server = the page's lookup and overlay once it is known: what the "
              "drawing loop itself spends)")
        print(f"load average at the end: {benchlib.load_average():.2f}")
    finally:
        explainer.shutdown()


if __name__ == "__main__":
    main()
