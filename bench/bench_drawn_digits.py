"""Drawn digits: how often the models read digits drawn the way a mouse or a finger draws them.

The pictures come from tests/drawn_digits.py: scripted pen paths of 46 styles (a 1 with a flag and a foot, open
and closed 4s, 7s with and without a bar, ...), each drawn by many random "hands" (slant, turn, proportions,
wobble), at random sizes and places on the 280 x 280 canvas with one pen width per digit (8-40 px), anti-aliased,
as white on black or in the alpha channel. They go through `mnist_core.preprocess.to_mnist` and the models, as a
drawing on the Draw page does. A test set only: no model ever learns from these.

Run from the project root (about a minute for 100 drawings per style):

    .venv/bin/python bench/bench_drawn_digits.py                            # the shipped models
    .venv/bin/python bench/bench_drawn_digits.py --models cnn --per-style 40
    .venv/bin/python bench/bench_drawn_digits.py --models-dir /tmp/models --models a,b --mnist
    .venv/bin/python bench/bench_drawn_digits.py --no-pen                   # without the pen-width step
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

import numpy as np

import benchlib
from benchlib import print_header, print_table

sys.path.insert(0, str(benchlib.PROJECT_ROOT / "tests"))

from drawn_digits import STYLES, drawn_digits  # noqa: E402  (tests/ must be on sys.path first)

GOALS = {"strong-cnn": 0.985, "cnn": 0.975}  # issue 10, on its own hidden test of drawn digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="cnn,strong-cnn", help="comma-separated model names")
    parser.add_argument("--models-dir", default=str(benchlib.PROJECT_ROOT / "models"))
    parser.add_argument("--per-style", type=int, default=100, help="drawings of each of the styles")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mnist", action="store_true", help="also the accuracy on MNIST's 10,000 test images")
    parser.add_argument("--no-pen", action="store_true", help="skip the pen-width step of the preprocessing")
    args = parser.parse_args()

    from mnist_core import preprocess
    from mnist_core.inference import Classifier

    if args.no_pen:
        preprocess.PEN_RANGE = (0.0, float("inf"))  # every width is in range: the step changes nothing

    print_header(f"Drawn digits: {len(STYLES)} styles x {args.per_style} hands, through preprocess.to_mnist",
                 with_tensorflow=True)
    started = time.perf_counter()
    samples = list(drawn_digits(args.per_style, seed=args.seed))
    drawn_seconds = time.perf_counter() - started
    started = time.perf_counter()
    images = np.stack([preprocess.to_mnist(sample.picture) for sample in samples])
    prepare_ms = (time.perf_counter() - started) / len(samples) * 1000
    labels = np.array([sample.label for sample in samples])
    print(f"{len(samples)} drawings made in {drawn_seconds:.1f} s; to_mnist {prepare_ms:.2f} ms each"
          f"{' (pen-width step off)' if args.no_pen else ''}")
    print()

    summary = []
    for name in args.models.split(","):
        classifier = Classifier.load(name, args.models_dir)
        predicted = classifier.predict(images)
        right = predicted == labels
        row = [name, f"{right.mean():.2%}", f"{int((~right).sum())} of {len(right)}"]
        if name in GOALS:
            row.append(f">= {GOALS[name]:.1%}")
        else:
            row.append("-")
        if args.mnist:
            from mnist_core.data import load_mnist

            (_, _), (x_test, y_test) = load_mnist()
            row.append(f"{(classifier.predict(x_test) == y_test).mean():.2%}")
        summary.append(row)
        report_model(name, samples, predicted, right)
    print("#### Summary")
    print_table(["model", "drawn digits", "wrong", "issue 10's goal (its hidden test)"]
                + (["MNIST test"] if args.mnist else []), summary)
    print(f"load average at the end: {benchlib.load_average():.2f}")


def report_model(name: str, samples, predicted: np.ndarray, right: np.ndarray) -> None:
    print(f"#### {name}: {right.mean():.2%} of {len(right)} drawn digits")
    per_digit = [[digit, f"{right[[s.label == digit for s in samples]].mean():.1%}"] for digit in range(10)]
    print_table(["digit", "read right"], per_digit)

    hard = collections.defaultdict(list)
    for sample, ok in zip(samples, right):
        if sample.style.hard:
            hard[sample.style.hard].append(ok)
    print_table(["known hard case", "drawings", "read right"],
                [[case, len(oks), f"{np.mean(oks):.1%}"] for case, oks in sorted(hard.items())])

    confusions = collections.Counter(
        (sample.label, int(guess)) for sample, guess, ok in zip(samples, predicted, right) if not ok
    )
    print("most frequent mistakes (drawn -> read): "
          + (", ".join(f"{true} -> {guess}: {count}" for (true, guess), count in confusions.most_common(8)) or "none"))
    styles = collections.defaultdict(list)
    for sample, ok in zip(samples, right):
        styles[(sample.label, sample.style.name)].append(ok)
    worst = sorted(styles.items(), key=lambda item: np.mean(item[1]))[:6]
    print("weakest styles: " + ", ".join(f"{digit} {style} {np.mean(oks):.0%}" for (digit, style), oks in worst))
    print()


if __name__ == "__main__":
    main()
