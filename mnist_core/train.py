"""Command line: train a model and save it to the store.

    python -m mnist_core.train --arch cnn --epochs 3 --name my-cnn
    python -m mnist_core.train --preset strong --name strong --shipped
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading

from mnist_core.architectures import ARCHITECTURES, PRECISIONS
from mnist_core.constants import MODELS_DIR
from mnist_core.hardware import default_precision
from mnist_core.training import OPTIMIZERS, PRESETS, BatchEvent, EpochEvent, TrainConfig, train, with_overrides

BAR_WIDTH = 30


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mnist_core.train", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="name to save the model under in models/")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="start from a ready-made config")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), help="architecture (default: cnn)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--train-size", type=int, help="number of training images (default: all 60000)")
    parser.add_argument("--validation", choices=("test", "split"))
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--schedule", choices=("constant", "cosine"), help="learning-rate schedule")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--precision", choices=PRECISIONS,
                        help=f"compute precision (default here: {default_precision()}; bfloat16 where the CPU has it)")
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    parser.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    parser.add_argument("--shipped", action="store_true", help="mark as shipped (protected in the app)")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    base = PRESETS[args.preset] if args.preset else TrainConfig()
    return with_overrides(
        base,
        architecture=args.arch,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        train_size=args.train_size,
        validation=args.validation,
        augment=args.augment,
        schedule=args.schedule,
        seed=args.seed,
        precision=args.precision,
    )


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}:{seconds:02d}"


class TerminalReporter:
    """A progress bar redrawn in place for batches, one line per epoch."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.interactive = stream.isatty()

    def __call__(self, event) -> None:
        if isinstance(event, BatchEvent):
            if not self.interactive and event.step not in (1, event.steps):
                return
            filled = int(BAR_WIDTH * event.step / event.steps)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self.stream.write(
                f"\repoch {event.epoch}/{event.epochs} [{bar}] {event.step}/{event.steps} "
                f"loss {event.loss:.4f} acc {event.accuracy:.4f} {event.images_per_second:,.0f} img/s "
                f"ETA {format_duration(event.eta_seconds)}"
            )
            if not self.interactive:
                self.stream.write("\n")
            self.stream.flush()
        elif isinstance(event, EpochEvent):
            validation = (
                f" val_loss {event.val_loss:.4f} val_acc {event.val_accuracy:.4f}" if event.val_loss is not None else ""
            )
            self.stream.write(
                f"\repoch {event.epoch}/{event.epochs} done in {event.seconds:.1f}s: "
                f"loss {event.loss:.4f} acc {event.accuracy:.4f}{validation}\033[K\n"
                if self.interactive
                else f"epoch {event.epoch}/{event.epochs} done in {event.seconds:.1f}s: "
                f"loss {event.loss:.4f} acc {event.accuracy:.4f}{validation}\n"
            )
            self.stream.flush()


def main(argv: list[str] | None = None) -> int:
    from mnist_core.jobs import save_trained_model
    from mnist_core.store import ModelExistsError, StoreError, check_can_save, validate_name
    from mnist_core.training import ConfigError

    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        validate_name(args.name)
        config = config_from_args(args)
        # Find out now, not after hours of training, that the result could not be saved under this name.
        check_can_save(args.name, args.models_dir, overwrite=args.overwrite, shipped=args.shipped)
    except ModelExistsError as error:
        print(f"error: {error} (or pass --overwrite to replace it)", file=sys.stderr)
        return 2
    except (ConfigError, StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    print(f"training {args.name!r}: {config}", file=sys.stderr)
    stop = threading.Event()
    try:
        result = train(config, on_event=TerminalReporter(), stop_event=stop)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing saved", file=sys.stderr)
        return 130
    command = "python -m mnist_core.train " + shlex.join(argv)
    try:
        info = save_trained_model(
            result, args.name, args.models_dir, command=command, shipped=args.shipped, overwrite=args.overwrite
        )
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"saved {info.name!r}: test accuracy {info.test_accuracy:.4f}, {info.parameters:,} parameters, "
        f"trained in {result.seconds:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
