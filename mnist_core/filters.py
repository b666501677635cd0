"""A stored model's first convolution kernels, read from its `.keras` file without TensorFlow or Keras.

A `.keras` file is a zip of `config.json` (the layers, in order, with their names) and `model.weights.h5` (each
layer's weights under `layers/<class in snake case, numbered>/vars/<i>`, a nested model's under
`layers/functional/layers/...`). The config gives the first Conv2D's place; h5py reads its kernel as Keras saved it.
The `.tflite` beside it holds the same numbers, but as constant tensors named by the converter
("functional_8_1/conv2d_1/convolution" held the layer conv2d's kernel, reordered to filters-first), so finding the
first convolution there would be a guess.
h5py comes with Keras; importing it costs the server ~12 MiB, only once somebody looks at filters.

The store's files are the app's own (a trained or an imported model saved by Keras), but they are read with bounds
all the same: entry sizes, and a kernel shape a first layer of a digit classifier can have.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core.constants import MODELS_DIR
from mnist_core.i18n import M_

MAX_CONFIG_BYTES = 1_000_000
MAX_WEIGHTS_BYTES = 60_000_000  # the strong CNN's weights file: 2 MB; model_upload caps uploads below this
MAX_KERNEL_SIDE = 15
MAX_FILTERS = 1024


class FiltersError(ValueError):
    """The model's file could not be read for its filters; the message says why, for a person."""


@dataclass(frozen=True)
class FirstLayerFilters:
    """The first Conv2D layer's kernels: (kernel height, kernel width, filters) float32 for its first input
    channel (a digit has one, so that is all of them), and the layer's name (shown_layer_name: safe to print)."""

    layer_name: str
    kernels: np.ndarray
    input_channels: int


PLAIN_LAYER_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def shown_layer_name(name: str | None) -> str:
    """A layer's name fit to print in a chart title or caption: Keras' own names ("conv2d_1") as they are, anything
    else (an uploaded model's layer may be named "<a href=...>" or "**bold**") as "its convolution"."""
    return name if isinstance(name, str) and PLAIN_LAYER_NAME.fullmatch(name) else "its convolution"


def _snake_case(class_name: str) -> str:
    """Keras' naming.to_snake_case: "Conv2D" -> "conv2d", "InputLayer" -> "input_layer"."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _conv_paths(config: dict, prefix: str = "layers") -> list[tuple[str, str]]:
    """(layer name, weights group) of every Conv2D in the config, in layer order, nested models included.

    Keras saves a layer's weights not under its name but under its class in snake case, numbered within its
    container ("conv2d", "conv2d_1", a nested model "functional"): saving_lib._save_container_state.
    """
    found = []
    used: dict[str, int] = {}
    layers = config.get("config", {}).get("layers", []) if isinstance(config, dict) else []
    for layer in layers if isinstance(layers, list) else []:
        if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
            continue
        class_name = layer["class_name"]
        path_name = _snake_case(class_name)
        if path_name in used:
            used[path_name] += 1
            path_name = f"{path_name}_{used[path_name]}"
        else:
            used[path_name] = 0
        name = layer.get("config", {}).get("name") if isinstance(layer.get("config"), dict) else None
        if not isinstance(name, str):
            name = path_name
        if class_name == "Conv2D":
            found.append((name, f"{prefix}/{path_name}"))
        elif class_name in ("Sequential", "Functional"):
            found.extend(_conv_paths(layer, f"{prefix}/{path_name}/layers"))
    return found


def _read_entry(archive: zipfile.ZipFile, entry: str, limit: int) -> bytes:
    try:
        info = archive.getinfo(entry)
    except KeyError:
        raise FiltersError(M_("the model file has no {entry}", entry=entry)) from None
    if info.file_size > limit:
        raise FiltersError(M_("the model file's {entry} is larger than a model of this app ({size:,} bytes)",
                                  entry=entry, size=info.file_size))
    return archive.read(entry)


def first_layer_filters(name: str, models_dir: Path = MODELS_DIR) -> FirstLayerFilters | None:
    """The first Conv2D layer's kernels of the stored model `name`, or None for a model without convolutions.

    FiltersError when the file cannot be read as a Keras model; store.StoreError for a bad or unknown name.
    """
    import h5py

    from mnist_core.store import ModelNotFound, model_path

    path = model_path(name, Path(models_dir))  # checks the name
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(_read_entry(archive, "config.json", MAX_CONFIG_BYTES))
            convolutions = _conv_paths(config)
            if not convolutions:
                return None
            weights = _read_entry(archive, "model.weights.h5", MAX_WEIGHTS_BYTES)
    except FileNotFoundError:
        raise ModelNotFound(M_("There is no model named {name}.", name=repr(name))) from None
    except (zipfile.BadZipFile, OSError, ValueError) as error:  # ValueError: JSONDecodeError
        if isinstance(error, FiltersError):
            raise
        raise FiltersError(M_("the file of {name} is not a readable Keras model ({kind})", name=repr(name),
                                 kind=type(error).__name__)) from None
    layer_name, group = convolutions[0]
    try:
        with h5py.File(io.BytesIO(weights), "r") as weights_file:
            dataset = weights_file.get(f"{group}/vars/0")
            if not isinstance(dataset, h5py.Dataset):
                raise FiltersError(M_("the weights of {layer} are not in the file of {name}", layer=repr(layer_name),
                                         name=repr(name)))
            shape = dataset.shape
            if (len(shape) != 4 or not 1 <= shape[0] <= MAX_KERNEL_SIDE or not 1 <= shape[1] <= MAX_KERNEL_SIDE
                    or not 1 <= shape[3] <= MAX_FILTERS or shape[2] < 1):
                raise FiltersError(M_("the kernel of {layer} has the shape {shape}, not one of a first layer",
                                         layer=repr(layer_name), shape=str(shape)))
            kernel = np.asarray(dataset[:, :, 0, :], dtype=np.float32)
    except OSError as error:  # h5py's word for a file it cannot parse
        raise FiltersError(M_("the weights of {name} could not be read ({error})", name=repr(name),
                                 error=str(error))) from None
    if not np.all(np.isfinite(kernel)):
        raise FiltersError(M_("the kernel of {layer} holds NaN or infinite weights", layer=repr(layer_name)))
    return FirstLayerFilters(layer_name=shown_layer_name(layer_name), kernels=kernel, input_channels=int(shape[2]))
