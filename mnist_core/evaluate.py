"""Command line: evaluate a saved model on the 10,000 test images.

    python -m mnist_core.evaluate NAME
"""

from __future__ import annotations

import argparse
import sys

from mnist_core.constants import CLASS_NAMES, MODELS_DIR


def format_confusion(confusion) -> str:
    header = "true\\pred " + " ".join(f"{name:>5}" for name in CLASS_NAMES)
    rows = [f"{CLASS_NAMES[row]:>9} " + " ".join(f"{count:>5}" for count in confusion[row]) for row in range(len(confusion))]
    return "\n".join([header, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_core.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="model name in the store")
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    from mnist_core.data import DatasetError, load_mnist
    from mnist_core.evaluation import evaluate
    from mnist_core.inference import Classifier
    from mnist_core.store import StoreError, read_info

    try:
        classifier = Classifier.load(args.name, args.models_dir)
        (_, _), (x_test, y_test) = load_mnist()
    except (StoreError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    result = evaluate(classifier, x_test, y_test)
    print(f"model {args.name!r}: test accuracy {result.accuracy:.4f} ({result.error_count} of {len(y_test)} wrong)")
    try:
        recorded = read_info(args.name, args.models_dir).test_accuracy
        if recorded is not None:
            print(f"recorded test accuracy {recorded:.4f}")
    except StoreError:
        pass  # the evaluation above stands on its own; the metadata is optional here
    print("per-digit accuracy: " + " ".join(f"{d}:{a:.3f}" for d, a in zip(CLASS_NAMES, result.per_class_accuracy)))
    print(format_confusion(result.confusion))
    return 0


if __name__ == "__main__":
    sys.exit(main())
