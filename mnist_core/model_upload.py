"""Check a `.keras` file someone uploads before Keras builds anything from it, then load it in safe mode.

A `.keras` file is a zip of `config.json` (the layers), `metadata.json` and `model.weights.h5`. Keras builds the
model from the config before it looks at the weights, so a 1.5 MB file whose Dense layer claims 400,000 units made
it allocate 8.4 GB and spend 26 s before refusing. `inspect_keras_file` reads the config itself (no TensorFlow, no
Keras) and works out the shape of every layer's output from the model's input, so the parameter count, the largest
activation and the multiply-adds per image are known before anything is allocated; only a model within the budget,
made of layers on the list below, reading 28 x 28 digits and giving 10 outputs, goes on to `load_uploaded_model`,
which loads it with Keras' safe mode (no Lambda layers, no code).

Nothing in a config is trusted: the shapes it records for each layer are ignored (they are recomputed), every
`module` it names must be Keras' own, and layers Keras would build differently from this module's arithmetic are
refused, not guessed at. Every refusal is an UploadRefused carrying an i18n Message for the person who sent the
file, rendered in their language where it is shown (also after a worker's second check); its `str()` is English.
"""

from __future__ import annotations

import io
import json
import logging
import math
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mnist_core.constants import IMAGE_SIZE, NUM_CLASSES
from mnist_core.i18n import M_

MAX_PARAMETERS = 3_000_000  # 20x the strong CNN (157,994); a few million weights are plenty for 28 x 28 digits
MAX_MULTIPLY_ADDS = 200_000_000  # per image; the strong CNN needs ~22 million
MAX_ACTIVATION_VALUES = 2_000_000  # values in one layer's output per image (8 MB in float32); the strong CNN: 25,088
MAX_ENTRIES = 8  # Keras writes three
MAX_CONFIG_BYTES = 1_000_000  # the strong CNN's config.json is 19 KB
MAX_METADATA_BYTES = 64_000
# Weights, plus the optimizer's slots Keras may save with them (Adam: two per weight), plus HDF5's own overhead.
MAX_WEIGHTS_BYTES = 3 * 4 * MAX_PARAMETERS + 4_000_000
MAX_FILE_BYTES = MAX_WEIGHTS_BYTES + MAX_CONFIG_BYTES + MAX_METADATA_BYTES + 1_000_000
MAX_LAYERS = 500
MAX_SIZE = 10**9  # any one number in a layer's config (units, filters, kernel side): the budgets above decide

ACCEPTED_INPUTS = ((IMAGE_SIZE, IMAGE_SIZE), (IMAGE_SIZE, IMAGE_SIZE, 1), (IMAGE_SIZE * IMAGE_SIZE,))
_ENTRY_LIMITS = {"config.json": MAX_CONFIG_BYTES, "metadata.json": MAX_METADATA_BYTES,
                 "model.weights.h5": MAX_WEIGHTS_BYTES, "model.weights.npz": MAX_WEIGHTS_BYTES}
_MODEL_CLASSES = {"Sequential", "Functional"}

_log = logging.getLogger(__name__)


class UploadRefused(ValueError):
    """The uploaded file is not a model this app accepts; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class KerasFileSummary:
    """What an uploaded .keras file's config describes, worked out without building it."""

    model_class: str  # "Sequential" or "Functional"
    layers: tuple[str, ...]  # the layers' class names, in order
    parameters: int  # as Keras' count_params() will count them (trainable and not)
    multiply_adds: int  # per image
    largest_activation: int  # values in the largest layer output, per image
    input_shape: tuple[int, ...]  # without the batch axis
    output_shape: tuple[int, ...]


def inspect_keras_file(data: bytes) -> KerasFileSummary:
    """Check an uploaded .keras file's zip and config and work out its size, without TensorFlow or Keras.

    Raises UploadRefused when the file is not a zip of the three files Keras writes (entries and sizes capped, so a
    zip bomb is refused from its directory), when its config uses anything but Keras' own layers on this module's
    list, when it is over MAX_PARAMETERS, MAX_MULTIPLY_ADDS or MAX_ACTIVATION_VALUES, or when it does not read a
    28 x 28 digit (28 x 28, 28 x 28 x 1 or 784 values) and give 10 outputs.
    """
    config = _read_config(data)
    _check_modules(config)
    model_class = config.get("class_name")
    if model_class not in _MODEL_CLASSES or not isinstance(config.get("config"), dict):
        raise UploadRefused(M_("The file is not a Keras model this app accepts: only Sequential and functional "
                               "models."))
    layers = config["config"].get("layers")
    if not isinstance(layers, list) or not layers:
        raise UploadRefused(M_("The model has no layers."))
    if len(layers) > MAX_LAYERS:
        raise UploadRefused(M_("The model has {count:,} layers; the limit is {limit}.",
                               count=len(layers), limit=MAX_LAYERS))
    if model_class == "Sequential":
        shapes = _sequential_shapes(config, layers)
    else:
        shapes = _functional_shapes(config["config"], layers)
    input_shape, output_shape, totals = shapes
    if input_shape not in ACCEPTED_INPUTS:
        raise UploadRefused(M_("The model reads inputs of shape {shape}; it must read a 28 x 28 digit (28 x 28, "
                               "28 x 28 x 1 or 784 values).", shape=_shown(input_shape)))
    if output_shape != (NUM_CLASSES,):
        raise UploadRefused(M_("The model's output has shape {shape}; it must give {classes} values, one per "
                               "digit.", shape=_shown(output_shape), classes=NUM_CLASSES))
    return KerasFileSummary(
        model_class=model_class,
        layers=tuple(layer["class_name"] for layer in layers),
        parameters=totals.parameters,
        multiply_adds=totals.multiply_adds,
        largest_activation=totals.largest_activation,
        input_shape=input_shape,
        output_shape=output_shape,
    )


def load_uploaded_model(data: bytes):
    """(keras.Model, KerasFileSummary) for an uploaded .keras file: inspect_keras_file first, then Keras' safe mode.

    Keras' own errors (config dumps, temporary paths) go to the log; the UploadRefused says what it means.
    """
    summary = inspect_keras_file(data)
    import keras  # only now, for a file that passed every check

    with tempfile.TemporaryDirectory(prefix="mnist-lab-upload-") as folder:
        path = Path(folder) / "upload.keras"
        path.write_bytes(data)
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as error:
            _log.warning("an uploaded model passed the checks but Keras refused it: %s: %s", type(error).__name__,
                         error)
            raise UploadRefused(M_("The model could not be loaded: its weights do not match its layers, or the file "
                                   "is damaged.")) from None
    # The arithmetic above decided what was allowed to load; the loaded model must be what it described.
    built_input, built_output = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    if (model.count_params(), built_input, built_output) != (summary.parameters, summary.input_shape,
                                                             summary.output_shape):
        _log.warning("an uploaded model loaded as %s params %s -> %s, its config said %s", model.count_params(),
                     built_input, built_output, summary)
        raise UploadRefused(M_("The model could not be loaded: it is not what its config describes."))
    return model, summary


# --- The zip and its config -------------------------------------------------------------------------------------


def _read_config(data: bytes) -> dict:
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise UploadRefused(M_("The file is empty."))
    if len(data) > MAX_FILE_BYTES:
        raise UploadRefused(M_("The file is too large ({size:.1f} MB); the limit is {limit:.0f} MB.",
                               size=len(data) / 1e6, limit=MAX_FILE_BYTES / 1e6))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise UploadRefused(M_("The file is not a .keras model: it is not a zip archive.")) from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise UploadRefused(M_("The file is not a .keras model: it holds {count:,} files.",
                                   count=len(entries)))
        names = [entry.filename for entry in entries]
        unexpected = sorted(set(names) - set(_ENTRY_LIMITS))
        if unexpected or len(set(names)) != len(names):
            if unexpected:
                raise UploadRefused(M_("The file is not a .keras model this app accepts: it holds {entry}.",
                                       entry=_shown(unexpected[0])))
            raise UploadRefused(M_("The file is not a .keras model this app accepts: it holds the same file twice."))
        if "config.json" not in names or not {"model.weights.h5", "model.weights.npz"} & set(names):
            raise UploadRefused(M_("The file is not a .keras model: it lacks its config or its weights."))
        for entry in entries:
            # The sizes the zip's directory declares, before anything is decompressed: a zip bomb stops here.
            if entry.file_size > _ENTRY_LIMITS[entry.filename]:
                raise UploadRefused(M_("The file's {entry} is too large ({size:,} bytes; at most {limit:,}).",
                                       entry=entry.filename, size=entry.file_size,
                                       limit=_ENTRY_LIMITS[entry.filename]))
            if entry.flag_bits & 0x1:
                raise UploadRefused(M_("The file is not a .keras model: it is encrypted."))
        try:
            with archive.open("config.json") as member:
                text = member.read(MAX_CONFIG_BYTES + 1)  # bounded even if the directory lied about the size
        except Exception as error:  # zlib.error, BadZipFile (CRC), NotImplementedError (compression), OSError
            _log.warning("could not read an uploaded model's config.json: %s: %s", type(error).__name__, error)
            raise UploadRefused(M_("The file is damaged: its config could not be read.")) from None
    if len(text) > MAX_CONFIG_BYTES:
        raise UploadRefused(M_("The file's config.json is too large (more than {limit:,} bytes).",
                               limit=MAX_CONFIG_BYTES))
    try:
        config = json.loads(text.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise UploadRefused(M_("The file's config is nested too deeply.")) from None
    except (UnicodeDecodeError, ValueError):
        raise UploadRefused(M_("The file is damaged: its config is not valid JSON.")) from None
    if not isinstance(config, dict):
        raise UploadRefused(M_("The file is damaged: its config is not a JSON object."))
    return config


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _check_modules(config: dict) -> None:
    """Refuse any object the config would have Keras import from outside Keras, and any serialized Python code."""
    pending = [config]
    while pending:  # a loop, not recursion: json.loads already bounded the depth, not the width
        value = pending.pop()
        if isinstance(value, dict):
            module = value.get("module")
            if module is not None and (not isinstance(module, str) or not (module == "keras" or
                                                                           module.startswith("keras."))):
                raise UploadRefused(M_("The model uses code from outside Keras ({module}); this app loads "
                                       "Keras' own layers only.",
                                       module=_shown(module)))
            if value.get("class_name") in ("__lambda__", "Lambda", "TFOpLambda"):
                raise UploadRefused(M_("The model contains Python code (a Lambda layer), which this app never "
                                       "runs."))
            registered = value.get("registered_name")
            if isinstance(registered, str) and ">" in registered:
                raise UploadRefused(M_("The model uses a custom object ({name}); this app loads Keras' own "
                                       "layers only.",
                                       name=_shown(registered)))
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


# --- Shapes, parameters and multiply-adds, layer by layer --------------------------------------------------------


@dataclass
class _Totals:
    parameters: int = 0
    multiply_adds: int = 0
    largest_activation: int = 0

    def add(self, layer: str, parameters: int, multiply_adds: int, output: tuple[int, ...]) -> None:
        self.parameters += parameters
        self.multiply_adds += multiply_adds
        self.largest_activation = max(self.largest_activation, math.prod(output))
        if self.parameters > MAX_PARAMETERS:
            raise UploadRefused(M_("The model has more than {limit:,} parameters (at least {count:,} by its "
                                   "{layer} layer); the limit is {limit:,}.",
                                   limit=MAX_PARAMETERS, count=self.parameters, layer=layer))
        if self.multiply_adds > MAX_MULTIPLY_ADDS:
            raise UploadRefused(M_("The model needs more than {limit:,} multiply-adds per image (by its {layer}"
                                   " layer); the limit is {limit:,}.",
                                   limit=MAX_MULTIPLY_ADDS, layer=layer))
        if math.prod(output) > MAX_ACTIVATION_VALUES:
            raise UploadRefused(M_("The model's {layer} layer outputs {count:,} values per image; the limit is "
                                   "{limit:,}.",
                                   layer=layer, count=math.prod(output), limit=MAX_ACTIVATION_VALUES))


def _sequential_shapes(config: dict, layers: list) -> tuple[tuple, tuple, _Totals]:
    first = layers[0]
    if isinstance(first, dict) and first.get("class_name") == "InputLayer":
        shape = _input_layer_shape(first)
        layers = layers[1:]
    else:  # saved without keras.Input: the model's own build_config has the input shape
        shape = _batch_shape((config.get("build_config") or {}).get("input_shape"), M_("the model"))
    input_shape, totals = shape, _Totals()
    for layer in layers:
        shape = _layer_output(layer, [shape], totals)
    return input_shape, shape, totals


def _functional_shapes(config: dict, layers: list) -> tuple[tuple, tuple, _Totals]:
    shapes: dict[str, tuple[int, ...]] = {}
    totals = _Totals()
    input_names = _layer_refs(config.get("input_layers"))
    output_names = _layer_refs(config.get("output_layers"))
    if len(input_names) != 1 or len(output_names) != 1:
        raise UploadRefused(M_("The model must have one input and one output."))
    for layer in layers:
        name = layer.get("name") if isinstance(layer, dict) else None
        if not isinstance(name, str) or name in shapes:
            raise UploadRefused(M_("The file is damaged: its layers have no names, or the same name twice."))
        if layer.get("class_name") == "InputLayer":
            shapes[name] = _input_layer_shape(layer)
            continue
        nodes = layer.get("inbound_nodes")
        if not isinstance(nodes, list) or len(nodes) != 1:
            raise UploadRefused(M_("The model must use each layer once (no shared layers)."))
        sources = _node_sources(nodes[0])
        missing = [source for source in sources if source not in shapes]
        if missing:
            raise UploadRefused(M_("The file is damaged: a layer takes its input from one that comes after it."))
        shapes[name] = _layer_output(layer, [shapes[source] for source in sources], totals)
    if input_names[0] not in shapes or output_names[0] not in shapes:
        raise UploadRefused(M_("The file is damaged: its input or output layer is missing."))
    return shapes[input_names[0]], shapes[output_names[0]], totals


def _layer_refs(value) -> list[str]:
    """Layer names from input_layers/output_layers: ['name', 0, 0] or [['name', 0, 0], ...]."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(ref, list) and ref and isinstance(ref[0], str)
                                              for ref in value):
        raise UploadRefused(M_("The file is damaged: its inputs or outputs are not described."))
    return [ref[0] for ref in value]


def _node_sources(node) -> list[str]:
    """The layers whose outputs one inbound node takes (Keras 3: args holds a tensor, or a list of them)."""
    if not isinstance(node, dict) or not isinstance(node.get("args"), list) or len(node["args"]) != 1:
        raise UploadRefused(M_("The model must be built from layers that each take one input (or a list of "
                               "them)."))
    tensors = node["args"][0]
    tensors = tensors if isinstance(tensors, list) else [tensors]
    sources = []
    for tensor in tensors:
        history = tensor.get("config", {}).get("keras_history") if isinstance(tensor, dict) else None
        if (not isinstance(history, list) or len(history) != 3 or not isinstance(history[0], str)
                or history[1:] != [0, 0]):
            raise UploadRefused(M_("The file is damaged: a layer's input is not described."))
        sources.append(history[0])
    if "__keras_tensor__" in json.dumps(node.get("kwargs", {})):
        raise UploadRefused(M_("The model must pass tensors to its layers as their inputs only."))
    return sources


def _input_layer_shape(layer: dict) -> tuple[int, ...]:
    config = layer.get("config") or {}
    return _batch_shape(config.get("batch_shape", config.get("batch_input_shape")), M_("its input layer"))


def _batch_shape(value, where) -> tuple[int, ...]:
    """A (batch, ...) shape from a config, without the batch axis; every other size a positive whole number."""
    if not isinstance(value, list) or len(value) < 2 or not all(_is_size(size) for size in value[1:]):
        raise UploadRefused(M_("The model does not say what it reads: {where} has no usable input shape.",
                               where=where))
    return tuple(value[1:])


def _is_size(value) -> bool:
    """A positive whole number no larger than any layer output this app accepts."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ACTIVATION_VALUES


def _layer_output(layer, inputs: list[tuple[int, ...]], totals: _Totals) -> tuple[int, ...]:
    """The output shape of one layer (without the batch axis), adding its parameters and multiply-adds."""
    if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
        raise UploadRefused(M_("The file is damaged: a layer is not described."))
    kind, config = layer.get("class_name"), layer["config"]
    rule = _LAYERS.get(kind)
    if rule is None:
        raise UploadRefused(M_("The model uses a layer this app does not accept: {layer}. Accepted: {accepted}.",
                               layer=_shown(kind), accepted=', '.join(sorted(_LAYERS))))
    if kind not in _MERGES and len(inputs) != 1:
        raise UploadRefused(M_("The model's {layer} layer takes {count} inputs; it takes one.",
                               layer=kind, count=len(inputs)))
    if config.get("data_format") not in (None, "channels_last"):
        raise UploadRefused(M_("The model's {layer} layer uses {value}; this app reads channels_last only.",
                               layer=kind, value=_shown(config['data_format'])))
    output, parameters, multiply_adds = rule(config, inputs if kind in _MERGES else inputs[0])
    if not output or not all(_is_size(size) for size in output):
        raise UploadRefused(M_("The model's {layer} layer gives an output of shape {shape}, which cannot be.",
                               layer=kind, shape=_shown(output)))
    totals.add(kind, parameters, multiply_adds, output)
    return output


def _whole(config: dict, key: str, default=None, low: int = 1) -> int:
    value = config.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_SIZE:
        raise UploadRefused(M_("The model has a layer whose {key} is {value}, which this app does not accept.",
                               key=key, value=_shown(value)))
    return value


def _pair(config: dict, key: str, default=None) -> tuple[int, int]:
    value = config.get(key, default)
    if isinstance(value, int):
        value = [value, value]
    if not isinstance(value, list) or len(value) != 2:
        raise UploadRefused(M_("The model has a layer whose {key} is {value}, which this app does not accept.",
                               key=key, value=_shown(value)))
    return _whole({key: value[0]}, key), _whole({key: value[1]}, key)


def _flag(config: dict, key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise UploadRefused(M_("The model has a layer whose {key} is {value}, not true or false.",
                               key=key, value=_shown(value)))
    return value


def _spatial(shape: tuple[int, ...], kind) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise UploadRefused(M_("The model's {layer} layer gets an input of shape {shape}; it needs height x "
                               "width x channels.",
                               layer=kind, shape=_shown(shape)))
    return shape


def _window_output(size: int, window: int, stride: int, dilation: int, padding) -> int:
    if padding == "same":
        return -(-size // stride)
    if padding != "valid":
        raise UploadRefused(M_("The model has a layer with padding {value}; 'valid' and 'same' are accepted.",
                               value=_shown(padding)))
    reach = (window - 1) * dilation + 1
    if reach > size:
        raise UploadRefused(M_("The model has a layer whose window ({window}) is larger than its input "
                               "({size}).", window=reach, size=size))
    return (size - reach) // stride + 1


def _dense(config, shape):
    units, bias = _whole(config, "units"), _flag(config, "use_bias", True)
    positions = math.prod(shape[:-1])
    return shape[:-1] + (units,), shape[-1] * units + units * bias, positions * shape[-1] * units


def _conv2d(config, shape):
    height, width, channels = _spatial(shape, "Conv2D")
    filters, groups, bias = _whole(config, "filters"), _whole(config, "groups", 1), _flag(config, "use_bias", True)
    (kernel_h, kernel_w), (stride_h, stride_w) = _pair(config, "kernel_size"), _pair(config, "strides", 1)
    dilation_h, dilation_w = _pair(config, "dilation_rate", 1)
    if channels % groups or filters % groups:
        raise UploadRefused(M_("The model has a Conv2D layer whose groups do not divide its channels."))
    out_h = _window_output(height, kernel_h, stride_h, dilation_h, config.get("padding", "valid"))
    out_w = _window_output(width, kernel_w, stride_w, dilation_w, config.get("padding", "valid"))
    weights = kernel_h * kernel_w * (channels // groups) * filters
    return (out_h, out_w, filters), weights + filters * bias, out_h * out_w * weights


def _pooling(config, shape):
    height, width, channels = _spatial(shape, M_("pooling"))
    pool_h, pool_w = _pair(config, "pool_size", 2)
    stride_h, stride_w = (pool_h, pool_w) if config.get("strides") is None else _pair(config, "strides")
    out_h = _window_output(height, pool_h, stride_h, 1, config.get("padding", "valid"))
    out_w = _window_output(width, pool_w, stride_w, 1, config.get("padding", "valid"))
    return (out_h, out_w, channels), 0, out_h * out_w * channels * pool_h * pool_w


def _global_pooling(config, shape):
    height, width, channels = _spatial(shape, M_("global pooling"))
    if _flag(config, "keepdims", False):
        return (1, 1, channels), 0, height * width * channels
    return (channels,), 0, height * width * channels


def _batch_normalization(config, shape):
    axis = config.get("axis", -1)
    if axis not in (-1, [-1], len(shape), [len(shape)]):
        raise UploadRefused(M_("The model has a BatchNormalization layer over another axis than the last."))
    scale, center = _flag(config, "scale", True), _flag(config, "center", True)
    channels = shape[-1]
    # Keras counts the moving mean and variance too (count_params counts every weight).
    return shape, channels * (2 + scale + center), math.prod(shape)


def _flatten(config, shape):
    return (math.prod(shape),), 0, 0


def _reshape(config, shape):
    target = config.get("target_shape")
    if not isinstance(target, list) or not target or target.count(-1) > 1:
        raise UploadRefused(M_("The model has a Reshape layer to {target}, which this app does not accept.",
                               target=_shown(target)))
    known = [size for size in target if size != -1]
    if not all(_is_size(size) for size in known):
        raise UploadRefused(M_("The model has a Reshape layer to {target}, which this app does not accept.",
                               target=_shown(target)))
    total, rest = math.prod(shape), math.prod(known)
    if -1 in target:
        if total % rest:
            raise UploadRefused(M_("The model's Reshape to {target} does not fit its input {shape}.",
                                   target=_shown(target), shape=_shown(shape)))
        target = [total // rest if size == -1 else size for size in target]
    if math.prod(target) != total:
        raise UploadRefused(M_("The model's Reshape to {target} does not fit its input {shape}.",
                               target=_shown(target), shape=_shown(shape)))
    return tuple(target), 0, 0


def _same_shape(config, shape):
    return shape, 0, math.prod(shape)


def _merge(config, shapes):
    if len(shapes) < 2 or len(set(shapes)) != 1:
        raise UploadRefused(M_("The model merges layer outputs of different shapes."))
    return shapes[0], 0, math.prod(shapes[0]) * (len(shapes) - 1)


def _concatenate(config, shapes):
    axis = config.get("axis", -1)
    if len(shapes) < 2 or axis not in (-1, len(shapes[0])) or len({shape[:-1] for shape in shapes}) != 1:
        raise UploadRefused(M_("The model concatenates layer outputs of shapes that do not fit, or not on the "
                               "last axis."))
    return shapes[0][:-1] + (sum(shape[-1] for shape in shapes),), 0, 0


_MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}
_LAYERS = {
    "Dense": _dense,
    "Conv2D": _conv2d,
    "MaxPooling2D": _pooling,
    "AveragePooling2D": _pooling,
    "GlobalAveragePooling2D": _global_pooling,
    "GlobalMaxPooling2D": _global_pooling,
    "BatchNormalization": _batch_normalization,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Concatenate": _concatenate,
    **{name: _merge for name in _MERGES - {"Concatenate"}},
    **{name: _same_shape for name in ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout",
                                      "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "Rescaling")},
}


def _shown(value) -> str:
    """A value from the file, as a message shows it: short, and never more than a line."""
    text = repr(tuple(value) if isinstance(value, list) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def stage_upload(data: bytes, models_dir: Path) -> Path:
    """Keep an uploaded file that passed `inspect_keras_file` where a worker will read it: a hidden temporary file in
    the store (never listed; the import job removes it, and a stale one is cleared like a killed save's)."""
    handle, name = tempfile.mkstemp(prefix=".upload.", suffix=".tmp.keras", dir=models_dir)
    with open(handle, "wb") as file:
        file.write(data)
    return Path(name)


def as_app_model(model, summary: KerasFileSummary):
    """The uploaded model in the shape every model of this app has: (n, 28, 28) float32 in, (n, 10) logits out.

    A 784 or 28 x 28 x 1 input gets a Reshape in front; a softmax at the end is taken off (the app applies softmax
    itself): a final Softmax or Activation("softmax") layer is dropped, a softmax activation of the last layer set to
    linear. A Sequential model stays one flat Sequential of Keras' own layers (copies with the same weights), so the
    stored model loads in safe mode and passes these checks again if it is downloaded and uploaded once more; a
    functional model is wrapped as it is. Needs TensorFlow (a worker process).
    """
    import keras

    def is_softmax(layer) -> bool:
        kind = type(layer).__name__
        return kind == "Softmax" or (kind == "Activation" and layer.get_config().get("activation") == "softmax")

    reshape = [] if summary.input_shape == (IMAGE_SIZE, IMAGE_SIZE) else [
        keras.layers.Reshape(summary.input_shape, name="to_the_models_input")]
    if type(model).__name__ == "Sequential":
        originals = list(model.layers)
        if originals and is_softmax(originals[-1]):
            originals = originals[:-1]
        copies = []
        for index, layer in enumerate(originals):
            config = layer.get_config()
            if index == len(originals) - 1 and config.get("activation") == "softmax":
                config["activation"] = "linear"
            copies.append(type(layer).from_config(config))
        flat = keras.Sequential([keras.Input((IMAGE_SIZE, IMAGE_SIZE), name="image"), *reshape, *copies],
                                name="uploaded")
        for copy, original in zip(copies, originals):
            copy.set_weights(original.get_weights())
        return flat
    last = model.layers[-1]
    if is_softmax(last):
        model = keras.Model(model.inputs, model.layers[-2].output, name=model.name)
    elif getattr(getattr(last, "activation", None), "__name__", "") == "softmax":
        last.activation = keras.activations.linear
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE), name="image")
    shaped = reshape[0](inputs) if reshape else inputs
    return keras.Model(inputs, model(shaped), name="uploaded")
