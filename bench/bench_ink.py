"""Ink hints (issue 20, item 7): how often mnist_core/ink.py says "this is not one digit", on real digits and junk.

Three sets, each through `preprocess.preprocess_steps` and `ink.ink_hints` as the Draw page does:
MNIST's test digits as the canvas would hold them (28x28 upscaled ten times to 280x280, bilinear, white on black);
scripted drawn digits (tests/drawn_digits.py: 49 styles, random hands, pens of 8-40 px); and junk
(tests/junk_strokes.py: dots, tiny scribbles, small digits drawn thick in a corner, zigzags and random scribbles
over the canvas, two digits side by side). Real digits should almost never get a hint, junk almost always.
With --model, also what that model answers to each set (its median confidence and how often it is 90% sure),
which is why the hints exist. Prints the spread of every feature too, to see where the thresholds sit.

Run from the project root (13 minutes on 2 cores at load 11-22, most of it the 10,000 MNIST digits):

    .venv/bin/python bench/bench_ink.py
    .venv/bin/python bench/bench_ink.py --mnist 1000 --per-kind 50 --model ""
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import sys
import time

import numpy as np

import benchlib
from benchlib import print_header, print_table

sys.path.insert(0, str(benchlib.PROJECT_ROOT / "tests"))

from drawn_digits import STYLES, drawn_digits  # noqa: E402  (tests/ must be on sys.path first)
from junk_strokes import KINDS, junk  # noqa: E402


def on_canvas(mnist_image: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(mnist_image).resize((280, 280), Image.Resampling.BILINEAR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist", type=int, default=10_000, help="MNIST test digits to check (of 10,000)")
    parser.add_argument("--drawn-per-style", type=int, default=20, help="drawn digits of each style")
    parser.add_argument("--per-kind", type=int, default=200, help="junk pictures of each kind")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--model", default="strong-cnn", help="also show this model's answers ('' for none)")
    parser.add_argument("--models-dir", default=str(benchlib.PROJECT_ROOT / "models"))
    args = parser.parse_args()

    from mnist_core import ink
    from mnist_core.data import load_mnist
    from mnist_core.preprocess import preprocess_steps

    print_header(f"Ink hints: {args.mnist} MNIST test digits, {len(STYLES)} x {args.drawn_per_style} drawn digits, "
                 f"{len(KINDS)} x {args.per_kind} junk pictures", with_tensorflow=bool(args.model))
    (_, _), (x_test, _) = load_mnist()
    sets: dict[str, list[np.ndarray]] = {"MNIST test digits on the canvas": [on_canvas(x) for x in x_test[:args.mnist]],
                                         "drawn digits": [s.picture for s in drawn_digits(args.drawn_per_style,
                                                                                           seed=args.seed)]}
    for sample in junk(args.per_kind, seed=args.seed):
        sets.setdefault(f"junk: {sample.kind}", []).append(sample.picture)

    classifier = None
    if args.model:
        from mnist_core.inference import Classifier

        classifier = Classifier.load(args.model, args.models_dir)

    rows, spreads, check_ms = [], {}, []
    for name, pictures in sets.items():
        kinds, hinted, features, images = collections.Counter(), 0, [], []
        for picture in pictures:
            steps = preprocess_steps(picture)
            started = time.perf_counter()
            hints = ink.ink_hints(steps)
            check_ms.append((time.perf_counter() - started) * 1000)
            hinted += bool(hints)
            kinds.update(hint.kind for hint in hints)
            features.append(ink.measure(steps))
            images.append(steps.centered)
        row = [name, len(pictures), f"{hinted / len(pictures):.2%}",
               ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()) or "-"]
        if classifier is not None:
            confidence = classifier.predict_proba(np.stack(images)).max(axis=1)
            row += [f"{np.median(confidence):.1%}", f"{(confidence >= 0.9).mean():.0%}"]
        rows.append(row)
        spreads[name] = features
        print(f"{name}: {row[2]} hinted", flush=True)
    print()
    print_table(["pictures", "count", "hinted", "hints given"]
                + ([f"{args.model}'s median confidence", "90% sure or more"] if classifier else []), rows)
    print(f"ink_hints: median {benchlib.median(check_ms):.1f} ms, 95th percentile "
          f"{benchlib.percentile(check_ms, 0.95):.1f} ms a picture (after preprocess_steps)")
    print()

    print("Spread of each feature (min / 1% / median / 99% / max); thresholds in mnist_core/ink.py")
    fields = [field.name for field in dataclasses.fields(ink.InkFeatures)]
    for field in fields:
        table = []
        for name, features in spreads.items():
            values = np.array([getattr(feature, field) for feature in features], dtype=float)
            table.append([name] + [f"{value:.3g}" for value in np.percentile(values, [0, 1, 50, 99, 100])])
        print(f"#### {field}")
        print_table(["pictures", "min", "1%", "median", "99%", "max"], table)
    print(f"load average at the end: {benchlib.load_average():.2f}")


if __name__ == "__main__":
    main()
