"""The command line: one entry, `python -m mnist_core <command>`, one function per command.

    python -m mnist_core train --arch cnn --epochs 3 --name my-cnn
    python -m mnist_core train --preset strong --name strong-cnn --shipped
    python -m mnist_core evaluate my-cnn
    python -m mnist_core export my-cnn --format tflite --quantize int8
    python -m mnist_core convert my-cnn --exports
    python -m mnist_core finetune --base cnn --collection "annas digits" --name cnn-anna

`python -m mnist_core <command> --help` lists each command's options. A command adds a `add_<command>_parser`
and a `run_<command>` below and one line in COMMANDS.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
from collections.abc import Callable

from mnist_core.architectures import ARCHITECTURES, PRECISIONS
from mnist_core.constants import CLASS_NAMES, MODELS_DIR
from mnist_core.hardware import default_precision
from mnist_core.i18n import M_, Message, message_of
from mnist_core.training import OPTIMIZERS, PRESETS, SCHEDULES, BatchEvent, EpochEvent, TrainConfig, with_overrides

PROG = "python -m mnist_core"
BAR_WIDTH = 30


# --- train -------------------------------------------------------------------------------------------------------


def add_train_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser("train", help="train a model and save it to the store",
                                 description="Train a model and save it to the store (models/ by default).")
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
    parser.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--precision", choices=PRECISIONS,
                        help=f"compute precision (default here: {default_precision()}; bfloat16 where the CPU has it)")
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    parser.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    parser.add_argument("--shipped", action="store_true", help="mark as shipped (protected in the app)")
    return parser


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
    """A progress bar redrawn in place for batches, one line per epoch (one line per epoch start/end off a tty)."""

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
            line = (f"epoch {event.epoch}/{event.epochs} done in {event.seconds:.1f}s: "
                    f"loss {event.loss:.4f} acc {event.accuracy:.4f}{validation}")
            self.stream.write(f"\r{line}\033[K\n" if self.interactive else f"{line}\n")
            self.stream.flush()


def run_train(args: argparse.Namespace, argv: list[str]) -> int:
    from mnist_core.jobs import save_trained_model
    from mnist_core.store import ModelExistsError, StoreError, check_can_save, validate_name
    from mnist_core.training import ConfigError, train

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
    try:
        info = save_trained_model(
            result, args.name, args.models_dir, command=recorded_command(argv), shipped=args.shipped,
            overwrite=args.overwrite,
        )
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"saved {info.name!r}: test accuracy {info.test_accuracy:.4f}, {info.parameters:,} parameters, "
        f"trained in {result.seconds:.1f}s"
    )
    return 0


# --- evaluate ----------------------------------------------------------------------------------------------------


def add_evaluate_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser("evaluate", help="evaluate a saved model on the 10,000 test images",
                                 description="Evaluate a saved model on the 10,000 test images: accuracy, "
                                             "per-digit accuracy and the confusion matrix.")
    parser.add_argument("name", help="model name in the store")
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    return parser


def format_confusion(confusion) -> str:
    header = "true\\pred " + " ".join(f"{name:>5}" for name in CLASS_NAMES)
    rows = [f"{CLASS_NAMES[row]:>9} " + " ".join(f"{count:>5}" for count in confusion[row]) for row in range(len(confusion))]
    return "\n".join([header, *rows])


def run_evaluate(args: argparse.Namespace, argv: list[str]) -> int:
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
    except StoreError as error:  # the evaluation above stands on its own; say why the recorded figure is missing
        print(f"(no recorded test accuracy: {error})", file=sys.stderr)
    else:
        if recorded is not None:
            print(f"recorded test accuracy {recorded:.4f}")
    print("per-digit accuracy: " + " ".join(f"{d}:{a:.3f}" for d, a in zip(CLASS_NAMES, result.per_class_accuracy)))
    print(format_confusion(result.confusion))
    return 0


# --- architectures -------------------------------------------------------------------------------------------------


def add_architectures_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser("architectures", help="list the architectures with their parameter counts",
                                 description="List the architectures of the registry with their parameter counts "
                                             "(as recorded for the app, which shows them without building a model).")
    parser.add_argument("--write", action="store_true",
                        help="build every architecture and record its summary (after adding or changing one)")
    return parser


def run_architectures(args: argparse.Namespace, argv: list[str]) -> int:
    from mnist_core.architectures import (
        ARCHITECTURES,
        SUMMARIES_PATH,
        MissingSummaryError,
        recorded_summary,
        write_summaries,
    )

    if args.write:
        write_summaries()
        print(f"recorded {len(ARCHITECTURES)} architectures in {SUMMARIES_PATH}", file=sys.stderr)
    for name, architecture in ARCHITECTURES.items():
        try:
            parameters = f"{recorded_summary(name).parameters:>9,}"
        except MissingSummaryError:
            parameters = "        ?"
        print(f"{name:<8} {parameters} parameters  {architecture.description}")
    return 0


# --- export ------------------------------------------------------------------------------------------------------


def add_export_parser(commands) -> argparse.ArgumentParser:
    from mnist_core.export import FORMATS, QUANTIZATIONS, QUANTIZATION_TITLES

    parser = commands.add_parser(
        "export", help="write a stored model as a .keras or .tflite file (quantized if asked)",
        description="Write a stored model as a .keras file or as a TensorFlow Lite (.tflite) file, quantized if "
                    "asked: " + "; ".join(f"{name} = {title}" for name, title in QUANTIZATION_TITLES.items()) + ". "
                    "Full-integer int8 calibrates on a few hundred training images and takes int8 input and output.",
    )
    parser.add_argument("name", help="model name in the store")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default="none", help="for --format tflite (default: none)")
    parser.add_argument("--output", help="file to write (default: NAME.keras or NAME-<quantize>.tflite here)")
    parser.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    return parser


def run_export(args: argparse.Namespace, argv: list[str]) -> int:
    from mnist_core.export import ExportError, export_model
    from mnist_core.store import BrokenModelError, StoreError

    try:
        written = export_model(args.name, args.format, args.quantize, args.output, args.models_dir,
                               overwrite=args.overwrite)
    except BrokenModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ExportError, StoreError) as error:  # a bad name, a missing model, a bad combination or output
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(written)
    return 0


# --- convert -----------------------------------------------------------------------------------------------------


def add_convert_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "convert", help="give stored models their LiteRT file (NAME.tflite), and measure the download formats",
        description="Write NAME.tflite beside NAME.keras in the store: the float32 LiteRT model the web server "
                    "predicts with (saving a model does this already; this is for models saved without one, and "
                    "to regenerate them). With --exports, also convert to every download format and measure each "
                    "on the 10,000 test images (cached for the Models page). The app runs this in a separate "
                    "process, so the web server never loads TensorFlow.",
    )
    parser.add_argument("names", nargs="+", metavar="NAME", help="model names in the store")
    parser.add_argument("--exports", action="store_true", help="also make and measure the download formats")
    parser.add_argument("--force", action="store_true", help="convert and measure again even if the files exist")
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    return parser


def format_export_report(report) -> str:
    lines = [f"{'format':<22} {'size':>10} {'accuracy':>9} {'vs Keras':>9} {'same answer':>12} {'latency':>10}"]
    keras_accuracy = report.keras_accuracy
    for row in report.rows:
        lines.append(
            f"{row.title:<22} {row.size_bytes / 1000:>8,.0f} KB {row.accuracy:>9.2%} "
            f"{(row.accuracy - keras_accuracy) * 100:>+8.2f}pp {row.agreement:>12.2%} {row.latency_ms:>7.3f} ms"
        )
    lines.append(f"measured {report.measured_at}, load average {report.load_average}")
    return "\n".join(lines)


def report_conversion_error(message) -> None:
    """An "error: ..." line for a person, then (for a Message) the same as JSON on a "message: ..." line, which the
    conversion worker's caller (conversion.py) reads to show it in each visitor's language."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    if isinstance(message, Message):
        from mnist_core.conversion import MESSAGE_PREFIX

        print(f"{MESSAGE_PREFIX}{message.to_json()}", file=sys.stderr)


def run_convert(args: argparse.Namespace, argv: list[str]) -> int:
    from mnist_core.export import cached_report, litert_model, measure_exports
    from mnist_core.store import (InvalidModelName, ModelNotFound, StoreError, litert_path, load_model, model_path,
                                  save_litert_model, validate_name)

    try:
        for name in args.names:
            validate_name(name)
            if not model_path(name, args.models_dir).exists():
                raise ModelNotFound(f"There is no model named {name!r}.")
    except (InvalidModelName, ModelNotFound) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    status = 0
    for name in args.names:
        try:
            if args.force or not litert_path(name, args.models_dir).exists():
                keras_stat = model_path(name, args.models_dir).stat()
                content = litert_model(load_model(name, args.models_dir))
                print(save_litert_model(name, content, keras_stat, args.models_dir))
            if args.exports:
                report = None if args.force else cached_report(name, args.models_dir)
                report = report or measure_exports(name, args.models_dir)
                print(f"{name}:\n{format_export_report(report)}")
        except StoreError as error:
            report_conversion_error(message_of(error))
            status = 1
        except Exception as error:  # the converter's own errors: say which model, keep going with the others
            text = " ".join(str(error).split())[:500]  # one line: the conversion worker reads the last one
            report_conversion_error(M_("Converting {name} failed: {kind}: {error}", name=repr(name),
                                       kind=type(error).__name__, error=text))
            status = 1
    return status


# --- finetune ----------------------------------------------------------------------------------------------------


def add_finetune_parser(commands) -> argparse.ArgumentParser:
    from mnist_core.finetune import DEFAULT_EPOCHS, DEFAULT_MNIST_IMAGES, EPOCH_CHOICES, MNIST_IMAGE_CHOICES

    parser = commands.add_parser(
        "finetune", help="teach a saved model a collection of drawings (the My digits page's fine-tuning)",
        description="Fine-tune a saved model on a collection of people's drawings plus MNIST, a quarter of the "
                    "drawings held out to measure the gain, and save it with the before/after accuracies (as the "
                    "My digits page does).")
    parser.add_argument("--base", required=True, help="the saved model to start from")
    drawings = parser.add_mutually_exclusive_group(required=True)
    drawings.add_argument("--collection", help="a collection's name in the drawings file of the data folder")
    drawings.add_argument("--file", help="an exported collection: a .npz (x, y) or the .zip My digits exports")
    parser.add_argument("--name", required=True, help="name to save the fine-tuned model under")
    parser.add_argument("--epochs", type=int, choices=EPOCH_CHOICES, default=DEFAULT_EPOCHS)
    parser.add_argument("--mnist-images", type=int, choices=MNIST_IMAGE_CHOICES, default=DEFAULT_MNIST_IMAGES,
                        help="MNIST training images mixed with the drawings")
    parser.add_argument("--seed", type=int, default=0, help="decides the held-out drawings and the MNIST images")
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    parser.add_argument("--data-dir", help="the folder of handwriting.sqlite3 (default: MNIST_LAB_DATA_DIR, else "
                                           "userdata/)")
    return parser


def _drawings_for_finetune(args: argparse.Namespace):
    """(collection name, x, y) from --collection or --file, through the same checks as the app."""
    from pathlib import Path

    from mnist_core.handwriting import FILE_NAME, MAX_IMPORT_BYTES, Handwriting, checked_import

    if args.file:
        with open(args.file, "rb") as file:
            imported = checked_import(file.read(MAX_IMPORT_BYTES + 1))
        return Path(args.file).stem, imported.x, imported.y
    store = Handwriting(Path(args.data_dir) / FILE_NAME if args.data_dir else None)
    collection = store.find(args.collection)
    x, y = store.arrays(collection.id)
    return collection.name, x, y


def run_finetune(args: argparse.Namespace, argv: list[str]) -> int:
    from mnist_core.finetune import FinetuneError, finetune_and_save, finetune_config, finetune_extra
    from mnist_core.handwriting import HandwritingError
    from mnist_core.jobs import JobSpec, JobStatus
    from mnist_core.store import StoreError, check_can_save, read_info, validate_name
    from mnist_core.training import ConfigError

    try:
        validate_name(args.name)
        config = finetune_config(read_info(args.base, args.models_dir).architecture, args.epochs, args.mnist_images,
                                 seed=args.seed)
        collection, x, y = _drawings_for_finetune(args)
        extra = finetune_extra(args.base, collection, x, y) + (("command", recorded_command(argv)),)
        check_can_save(args.name, args.models_dir)
    except (ConfigError, StoreError, HandwritingError, FinetuneError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    print(f"fine-tuning {args.base!r} on {len(y)} drawings of {collection!r} into {args.name!r}: {config}",
          file=sys.stderr)
    spec = JobSpec(config, args.name, str(args.models_dir), kind="finetune", extra=extra)
    try:
        outcome = finetune_and_save(spec, TerminalReporter(), threading.Event())
    except KeyboardInterrupt:
        print("\ninterrupted: nothing saved", file=sys.stderr)
        return 130
    if outcome.status not in (JobStatus.FINISHED, JobStatus.STOPPED):
        print(f"error: {outcome.error}", file=sys.stderr)
        return 1
    record = read_info(outcome.saved_name, args.models_dir).finetune
    held, mnist = record["held_out_accuracy"], record["mnist_test_accuracy"]
    print(f"saved {outcome.saved_name!r}: held-out drawings ({record['held_out']}) {held['before']:.1%} -> "
          f"{held['after']:.1%}; MNIST test {mnist['before']:.2%} -> {mnist['after']:.2%} "
          + (f"(down {mnist['drop_points']:.2f} points" if mnist["drop_points"] >= 0
             else f"(up {-mnist['drop_points']:.2f} points")
          + ("" if mnist["within_limit"] else f", MORE than the {mnist['limit_points']} allowed") + ")")
    return 0


def add_catalog_parser(commands) -> argparse.ArgumentParser:
    return commands.add_parser(
        "catalog", help="update the Chinese translation catalog from the code (issue 21)",
        description="Extract every visible string (babel.cfg) and update locales/zh_Hans/LC_MESSAGES/messages.po: "
                    "new strings get an empty translation, changed ones are marked fuzzy, gone ones are removed. "
                    "Then translate the empty and fuzzy entries; tests/test_i18n.py fails until they are done.")


def run_catalog(args: argparse.Namespace, argv: list[str]) -> int:
    from mnist_core import catalog

    updated = catalog.update()
    todo = [message for message in updated if message.id and (not message.string or message.fuzzy)]
    print(f"{sum(1 for message in updated if message.id)} strings; {len(todo)} to translate or check (empty or fuzzy) in "
          f"{catalog.catalog_path(catalog.CHINESE)}")
    return 0


# --- the entry -----------------------------------------------------------------------------------------------------

Command = tuple[Callable, Callable[[argparse.Namespace, list[str]], int]]
COMMANDS: dict[str, Command] = {
    "train": (add_train_parser, run_train),
    "evaluate": (add_evaluate_parser, run_evaluate),
    "architectures": (add_architectures_parser, run_architectures),
    "export": (add_export_parser, run_export),
    "convert": (add_convert_parser, run_convert),
    "finetune": (add_finetune_parser, run_finetune),
    "catalog": (add_catalog_parser, run_catalog),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="MNIST Lab's core from the command line.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser, _ in COMMANDS.values():
        add_parser(commands)
    return parser


def recorded_command(argv: list[str]) -> str:
    """The command line as a person would type it again, for the model's metadata."""
    return f"{PROG} {shlex.join(argv)}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    _, run = COMMANDS[args.command]
    return run(args, argv)
