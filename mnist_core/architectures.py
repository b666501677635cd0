"""The registry of network architectures: a name -> a builder and a one-line description.

Every model takes (batch, 28, 28) float32 images in [0, 1] and returns (batch, 10) logits, so the trainer,
the classifier and the pages treat all architectures alike. Adding an architecture is adding an entry.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from mnist_core.constants import IMAGE_SIZE, NUM_CLASSES
from mnist_core.i18n import N_


@dataclass(frozen=True)
class Architecture:
    name: str
    title: str  # title, description and source in English, marked for the catalog: pages show _(them)
    description: str
    source: str  # where the design comes from
    build_layers: Callable[[], list]


def _mlp() -> list:
    from keras import layers

    return [
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(NUM_CLASSES),
    ]


def _cnn() -> list:
    from keras import layers

    return [
        layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1)),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(NUM_CLASSES),
    ]


def _cnn3() -> list:
    from keras import layers

    return [
        layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1)),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(NUM_CLASSES),
    ]


def _lenet5() -> list:
    from keras import layers

    # LeCun et al. 1998, with ReLU and max pooling as is usual today; "same" padding on the first
    # convolution stands in for the original 32x32 input.
    return [
        layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1)),
        layers.Conv2D(6, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 5, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dense(84, activation="relu"),
        layers.Dense(NUM_CLASSES),
    ]


def _quick() -> list:
    from keras import layers

    # Built for the "fast" preset on a CPU: the first convolution strides by 2, so every later layer works on 12x12
    # and smaller maps, and there is no batch norm (on this 2-core CPU a batch-norm layer at 28x28 costs more than
    # the convolution before it) and no hidden dense layer. Per image it takes 0.55x the seed CNN's CPU time to train.
    return [
        layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1)),
        layers.Conv2D(32, 5, strides=2, activation="relu"),
        layers.Conv2D(48, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(NUM_CLASSES),
    ]


def _strong() -> list:
    from keras import layers

    # Batch-norm momentum 0.9, not Keras' 0.99: the moving statistics then settle within ~50 batches, so
    # validation is meaningful after the first epoch and after short runs on small subsets in the app.

    def conv_block(filters: int) -> list:
        # conv -> batch norm -> relu, twice, then pool and drop: the usual VGG-style stage
        return [
            layers.Conv2D(filters, 3, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.9),
            layers.Activation("relu"),
            layers.Conv2D(filters, 3, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.9),
            layers.Activation("relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
        ]

    return [
        layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1)),
        *conv_block(32),
        *conv_block(64),
        layers.Conv2D(128, 3, padding="same", use_bias=False),
        layers.BatchNormalization(momentum=0.9),
        layers.Activation("relu"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(128, use_bias=False),
        layers.BatchNormalization(momentum=0.9),
        layers.Activation("relu"),
        layers.Dropout(0.4),
        layers.Dense(NUM_CLASSES),
    ]


ARCHITECTURES: dict[str, Architecture] = {
    architecture.name: architecture
    for architecture in (
        Architecture(
            "mlp",
            N_("MLP"),
            N_("Flatten, one hidden layer of 128 ReLU units, 10 outputs: the classic first network (about 97.7%)."),
            N_("seeds 001 and 004"),
            _mlp,
        ),
        Architecture(
            "cnn",
            N_("Simple CNN"),
            N_("Two conv+pool stages (32, 64 filters) then Dense 64: small and quick, about 99.2%."),
            N_("seed 000"),
            _cnn,
        ),
        Architecture(
            "quick",
            N_("Quick CNN"),
            N_("Conv 32 (5x5, stride 2), conv 48, pool, 10 outputs: about half the seed CNN's work per image; "
               "99.1-99.2% after 2 epochs."),
            N_("issue 10: the fast preset's network"),
            _quick,
        ),
        Architecture(
            "cnn3",
            N_("Three-conv CNN"),
            N_("Conv 32-pool-conv 64-pool-conv 64, then Dense 64: one more convolution than the simple CNN."),
            N_("seed 003"),
            _cnn3,
        ),
        Architecture(
            "lenet5",
            N_("LeNet-5"),
            N_("LeCun's 1998 design: conv 6 and conv 16 with 5x5 kernels, then Dense 120 and 84."),
            N_("LeCun et al. 1998, mentioned in seed 003"),
            _lenet5,
        ),
        Architecture(
            "strong",
            N_("Strong CNN"),
            N_("VGG-style: two double-conv stages with batch norm and dropout, global pooling; >= 99.5% with augmentation."),
            N_("modern practice (batch norm, dropout, augmentation)"),
            _strong,
        ),
    )
}


class UnknownArchitectureError(ValueError):
    pass


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(ARCHITECTURES)
        raise UnknownArchitectureError(f"Unknown architecture {name!r}; choose one of: {known}.") from None


def _snake_case(class_name: str) -> str:
    """MaxPooling2D -> max_pooling2d, as Keras names layers."""
    spaced = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", spaced).lower()


PRECISIONS = ("float32", "bfloat16")


def build_model(name: str, precision: str = "float32"):
    """A fresh, built keras.Sequential for the architecture `name`: (batch, 28, 28) float32 -> (batch, 10) logits.

    precision "bfloat16" is Keras' mixed precision: the layers compute in bfloat16 and keep float32 weights; the
    output layer stays float32, so the logits, the loss and anything reading the model see float32.
    """
    import keras

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    architecture = get_architecture(name)
    layers = architecture.build_layers()
    if precision == "bfloat16":
        for layer in layers[:-1]:
            layer.dtype_policy = "mixed_bfloat16"
    # Keras numbers automatic names per thread ("dense_7" in the seventh model a thread builds); name the layers
    # by their place in this model instead, so every model reads conv2d, conv2d_1, dense, dense_1, ... wherever
    # and however often it is built.
    counts: dict[str, int] = {}
    for layer in layers:
        kind = _snake_case(type(layer).__name__)
        layer.name = kind if kind not in counts else f"{kind}_{counts[kind]}"
        counts[kind] = counts.get(kind, 0) + 1
    return keras.Sequential([keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), name="image"), *layers], name=name)


def is_float32(model) -> bool:
    """Whether every layer of `model` computes in float32 (not mixed precision)."""
    return all(layer.dtype_policy.name == "float32" for layer in model.layers)


def parameter_count(model) -> int:
    return int(model.count_params())


def summary_text(model) -> str:
    """Keras' layer table (layer, output shape, parameters) as plain text."""
    buffer = io.StringIO()
    model.summary(print_fn=lambda line, **_: buffer.write(line + "\n"), line_length=80)
    return buffer.getvalue()


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: str
    parameters: int


def layer_table(model) -> list[LayerRow]:
    """One row per layer, for showing the architecture as a table."""
    return [
        LayerRow(
            name=layer.name,
            kind=type(layer).__name__,
            output_shape=str(tuple(layer.output.shape)).replace("None", "batch"),
            parameters=int(layer.count_params()),
        )
        for layer in model.layers
    ]


# --- summaries known without building a model ---------------------------------------------------------------------

# Parameter counts and layer tables of every architecture, recorded by `python -m mnist_core architectures --write`.
# The pages read them instead of building a Keras model on the request path (importing TensorFlow and building took
# 4.6 s before the Train page's first view on a fresh server); tests/test_architectures.py checks them against the
# real models, so an architecture changed without re-recording fails the suite.
SUMMARIES_PATH = Path(__file__).with_name("architecture_summaries.json")


@dataclass(frozen=True)
class ArchitectureSummary:
    parameters: int
    layers: tuple[LayerRow, ...]


def measure_summary(name: str) -> ArchitectureSummary:
    """Build the architecture (imports TensorFlow) and read its parameter count and layer table."""
    model = build_model(name)
    return ArchitectureSummary(parameter_count(model), tuple(layer_table(model)))


def write_summaries(path: Path = SUMMARIES_PATH) -> dict[str, ArchitectureSummary]:
    """Measure every architecture in the registry and record the summaries in `path`."""
    summaries = {name: measure_summary(name) for name in ARCHITECTURES}
    recorded = {
        name: {"parameters": summary.parameters, "layers": [asdict(row) for row in summary.layers]}
        for name, summary in summaries.items()
    }
    path.write_text(json.dumps(recorded, indent=1) + "\n", encoding="utf-8")
    return summaries


class MissingSummaryError(LookupError):
    """An architecture of the registry has no recorded summary: run `python -m mnist_core architectures --write`."""


_recorded: dict[str, ArchitectureSummary] | None = None


def recorded_summary(name: str) -> ArchitectureSummary:
    """The recorded parameter count and layer table of architecture `name`, without TensorFlow."""
    global _recorded
    if _recorded is None:
        raw = json.loads(SUMMARIES_PATH.read_text(encoding="utf-8"))
        _recorded = {
            key: ArchitectureSummary(value["parameters"], tuple(LayerRow(**row) for row in value["layers"]))
            for key, value in raw.items()
        }
    get_architecture(name)
    if name not in _recorded:
        raise MissingSummaryError(
            f"No recorded summary for the architecture {name!r}: run `python -m mnist_core architectures --write`."
        )
    return _recorded[name]
