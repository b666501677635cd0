"""Fine-tuning on a stand-in hand: how much a model gains on a person's style, and what it costs on MNIST.

Nobody's real drawings ship with the project, so the "hand" is MNIST transformed (the house rule allows MNIST
transformed any way): training digits 55,000-59,999 slanted by 22 degrees, sheared, drawn with a thick pen, then
normalised by the app's own preprocessing, as a drawing on the canvas would be. The shipped cnn reads ~80% of them.
A collection of PER_DIGIT drawings of each digit is fine-tuned on (a quarter held out, as the app does); a further
200 drawings of the same hand, never in the collection, measure the gain with less noise than the held-out few.

    python bench/bench_finetune.py [--base cnn] [--epochs 2] [--mnist-images 10000] [--per-digit 4] [--repeat 1]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

import benchlib  # noqa: F401  (puts the project on sys.path)
from mnist_core.constants import PROJECT_ROOT

HAND_START = 55_000  # the hand's source digits: the end of MNIST's training set


def slanted_thick(image: np.ndarray, angle: float = 22, pen: int = 5) -> np.ndarray:
    """One MNIST digit as a slanted writer with a thick pen would draw it, through the app's preprocessing."""
    from mnist_core.preprocess import to_mnist

    big = Image.fromarray(image).resize((112, 112), Image.Resampling.BILINEAR)
    big = big.rotate(-angle, resample=Image.Resampling.BILINEAR, fillcolor=0)
    big = big.transform(big.size, Image.Transform.AFFINE, (1, 0.35, -20, 0, 1, 0), resample=Image.Resampling.BILINEAR)
    big = big.filter(ImageFilter.MaxFilter(pen))
    return np.clip(np.rint(to_mnist(np.asarray(big)) * 255), 0, 255).astype(np.uint8)


def hand(x: np.ndarray, y: np.ndarray, per_digit: int, seed: int, exclude=()) -> tuple[np.ndarray, np.ndarray, list]:
    rng = np.random.default_rng(seed)
    chosen = []
    for digit in range(10):
        where = [i for i in HAND_START + np.flatnonzero(y[HAND_START:] == digit) if i not in exclude]
        chosen += rng.choice(where, per_digit, replace=False).tolist()
    return np.stack([slanted_thick(x[i]) for i in chosen]), y[chosen].astype(np.uint8), chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="cnn")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--mnist-images", type=int, default=10_000)
    parser.add_argument("--per-digit", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="runs with seeds 0, 1, ...")
    parser.add_argument("--lr", type=float, help="learning rate instead of finetune.LEARNING_RATE")
    args = parser.parse_args()
    if args.lr is not None:
        import mnist_core.finetune

        mnist_core.finetune.LEARNING_RATE = args.lr

    from mnist_core.data import load_mnist
    from mnist_core.evaluation import evaluate
    from mnist_core.finetune import finetune_config, finetune_extra, finetune_and_save
    from mnist_core.inference import Classifier
    from mnist_core.jobs import JobSpec
    from mnist_core.store import read_info

    mnist = load_mnist()
    (x_train, y_train), _ = mnist
    benchlib.print_header("Fine-tuning on a stand-in hand", with_tensorflow=True)
    for seed in range(args.repeat):
        x_hand, y_hand, used = hand(x_train, y_train, args.per_digit, seed)
        x_test_hand, y_test_hand, _ = hand(x_train, y_train, 20, seed + 100, exclude=set(used))
        with tempfile.TemporaryDirectory() as folder:
            models = Path(folder)
            for suffix in (".keras", ".json"):
                shutil.copy2(PROJECT_ROOT / "models" / f"{args.base}{suffix}", models)
            architecture = read_info(args.base, models).architecture
            spec = JobSpec(finetune_config(architecture, args.epochs, args.mnist_images, seed=seed), "tuned",
                           str(models), kind="finetune",
                           extra=finetune_extra(args.base, "bench-hand", x_hand, y_hand))
            load = benchlib.load_average()
            started = time.perf_counter()
            outcome = finetune_and_save(spec, lambda event: None, threading.Event(), mnist=mnist)
            seconds = time.perf_counter() - started
            record = read_info(outcome.saved_name, models).finetune
            before = evaluate(Classifier.load(args.base, models), x_test_hand, y_test_hand).accuracy
            after = evaluate(Classifier.load(outcome.saved_name, models), x_test_hand, y_test_hand).accuracy
        held, on_mnist = record["held_out_accuracy"], record["mnist_test_accuracy"]
        print(f"seed {seed}: {args.base}, {len(y_hand)} drawings ({record['held_out']} held out), {args.epochs} "
              f"epoch(s), lr {spec.config.learning_rate:g}, {args.mnist_images:,} MNIST images + {record['trained_on']} x {record['repeats']}: "
              f"held-out {held['before']:.1%} -> {held['after']:.1%}; 200 more of the hand {before:.1%} -> "
              f"{after:.1%}; MNIST test {on_mnist['before']:.2%} -> {on_mnist['after']:.2%} "
              f"(drop {on_mnist['drop_points']:+.2f} points); {seconds:.0f} s (load {load:.1f})", flush=True)


if __name__ == "__main__":
    main()
