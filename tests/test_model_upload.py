"""mnist_core.model_upload: an uploaded .keras file is checked from its zip and config before Keras builds anything.

The hostile files are crafted from real ones: a model saved by Keras, then its config.json edited (a Dense layer
claiming 400,000 units keeps its small weights file: the 1.5 MB upload that cost Keras 26 s and 8.4 GB), or zips
written by hand (bombs, stray files).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from mnist_core.architectures import build_model
from mnist_core.constants import PROJECT_ROOT
from mnist_core.model_upload import (
    MAX_ACTIVATION_VALUES,
    MAX_MULTIPLY_ADDS,
    MAX_PARAMETERS,
    UploadRefused,
    inspect_keras_file,
    load_uploaded_model,
)


def keras_bytes(model, tmp_path) -> bytes:
    path = tmp_path / "upload.keras"
    model.save(path)
    return path.read_bytes()


def rezipped(data: bytes, config=None, extra: dict | None = None, drop: tuple = ()) -> bytes:
    """The .keras file `data` with its config.json replaced (a dict, or raw text), files added or dropped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for entry in source.infolist():
            if entry.filename in drop:
                continue
            content = source.read(entry.filename)
            if entry.filename == "config.json" and config is not None:
                content = config.encode() if isinstance(config, str) else json.dumps(config).encode()
            target.writestr(entry.filename, content)
        for name, content in (extra or {}).items():
            target.writestr(name, content)
    return buffer.getvalue()


def config_of(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("config.json"))


def layers_of(config: dict) -> list[dict]:
    return config["config"]["layers"]


def layer(config: dict, class_name: str, index: int = 0) -> dict:
    return [item for item in layers_of(config) if item["class_name"] == class_name][index]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    """Real .keras files of the app's own architectures, and of a functional model with a branch."""
    import keras

    folder = tmp_path_factory.mktemp("keras-files")
    found = {name: keras_bytes(build_model(name), folder) for name in ("mlp", "cnn", "strong")}
    image = keras.Input((28, 28))
    grid = keras.layers.Reshape((28, 28, 1))(image)
    branch = keras.layers.Add()([keras.layers.Conv2D(8, 3, padding="same")(grid), keras.layers.Conv2D(8, 1)(grid)])
    logits = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(branch))
    found["functional"] = keras_bytes(keras.Model(image, logits), folder)
    return found


def refused(data: bytes, message: str) -> str:
    with pytest.raises(UploadRefused, match=message) as raised:
        inspect_keras_file(data)
    return str(raised.value)


# --- What is accepted ---------------------------------------------------------------------------------------------


def test_the_shipped_models_and_every_architecture_are_accepted_with_their_exact_parameter_count(files):
    for name in ("cnn", "strong-cnn"):
        shipped = (PROJECT_ROOT / "models" / f"{name}.keras").read_bytes()
        recorded = json.loads((PROJECT_ROOT / "models" / f"{name}.json").read_text())["parameters"]
        assert inspect_keras_file(shipped).parameters == recorded
    for name in ("mlp", "cnn", "strong"):
        summary = inspect_keras_file(files[name])
        assert summary.parameters == build_model(name).count_params()
        assert summary.input_shape == (28, 28) and summary.output_shape == (10,)
    assert inspect_keras_file(files["strong"]).layers[:3] == ("InputLayer", "Reshape", "Conv2D")


def test_a_functional_model_with_a_branch_is_accepted(files):
    summary = inspect_keras_file(files["functional"])
    assert summary.model_class == "Functional"
    assert summary.parameters == 3 * 3 * 8 + 8 + 8 + 8 + 8 * 10 + 10


def test_an_accepted_file_loads_in_safe_mode_and_predicts_like_the_model_it_holds(files, tmp_path, test_images):
    import keras

    images, _ = test_images
    model, summary = load_uploaded_model(files["cnn"])
    (tmp_path / "direct.keras").write_bytes(files["cnn"])
    direct = keras.saving.load_model(tmp_path / "direct.keras", compile=False)
    assert summary.parameters == model.count_params() == direct.count_params()
    np.testing.assert_array_equal(np.asarray(model(images[:20])), np.asarray(direct(images[:20])))


def test_inspecting_never_imports_keras_or_tensorflow(files, tmp_path):
    path = tmp_path / "big.keras"
    claims_400k_units = config_of(files["mlp"])
    layer(claims_400k_units, "Dense")["config"]["units"] = 400_000
    path.write_bytes(rezipped(files["mlp"], claims_400k_units))
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mnist_core.model_upload import UploadRefused, inspect_keras_file\n"
        "for name in ('good', 'big'):\n"
        "    try:\n"
        "        print(name, inspect_keras_file(Path(sys.argv[1] + '/' + name + '.keras').read_bytes()).parameters)\n"
        "    except UploadRefused as error:\n"
        "        print(name, 'refused')\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('keras', 'tensorflow')))\n"
    )
    (tmp_path / "good.keras").write_bytes(files["mlp"])
    output = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    assert output == ["good 101770", "big refused", "[]"]


# --- Over the budget, refused before Keras builds anything --------------------------------------------------------


@pytest.fixture
def keras_must_not_load(monkeypatch):
    import keras

    def no_loading(*args, **kwargs):
        raise AssertionError("Keras was asked to build a model that the checks should have refused")

    monkeypatch.setattr(keras.saving, "load_model", no_loading)


def test_a_dense_layer_claiming_400000_units_is_refused_from_its_config(files, keras_must_not_load):
    claims = config_of(files["mlp"])
    layer(claims, "Dense")["config"]["units"] = 400_000
    data = rezipped(files["mlp"], claims)
    assert len(data) < 2_000_000  # the weights file is still the small one: only the config lies

    with pytest.raises(UploadRefused) as raised:
        load_uploaded_model(data)

    assert str(raised.value) == (
        f"The model has more than {MAX_PARAMETERS:,} parameters (at least 314,000,000 by its Dense layer); "
        f"the limit is {MAX_PARAMETERS:,}."
    )


def test_a_layer_with_an_enormous_output_is_refused(files, keras_must_not_load):
    wide = config_of(files["cnn"])
    layer(wide, "Conv2D")["config"].update(filters=5000, kernel_size=[1, 1])  # 5,000 params, 3.9 M values an image
    message = refused(rezipped(files["cnn"], wide), "Conv2D layer outputs 3,920,000 values per image")
    assert f"the limit is {MAX_ACTIVATION_VALUES:,}" in message


def test_a_model_needing_too_many_multiply_adds_is_refused(files, keras_must_not_load):
    slow = config_of(files["cnn"])
    layer(slow, "Conv2D", 0)["config"].update(filters=300, padding="same")
    layer(slow, "Conv2D", 1)["config"].update(filters=1000)  # 2.7 M params, 389 M multiply-adds an image
    refused(rezipped(files["cnn"], slow), f"more than {MAX_MULTIPLY_ADDS:,} multiply-adds per image")


# --- Not a model this app reads -----------------------------------------------------------------------------------


def test_a_lambda_layer_is_refused_and_its_code_never_runs(tmp_path, keras_must_not_load):
    import keras

    marker = tmp_path / "lambda-ran"
    leaves_a_trace = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Lambda(leaves_a_trace), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    data = keras_bytes(model, tmp_path)
    marker.unlink()  # building the model above ran it once

    assert refused(data, "Lambda") == "The model contains Python code (a Lambda layer), which this app never runs."
    assert not marker.exists()


@pytest.mark.parametrize(
    ("batch_shape", "message"),
    [
        ([None, 32, 32, 3], r"reads inputs of shape \(32, 32, 3\); it must read a 28 x 28 digit"),
        ([None, 28, 28, 3], r"reads inputs of shape \(28, 28, 3\)"),
        ([None, 28], r"reads inputs of shape \(28,\)"),
    ],
)
def test_a_model_that_does_not_read_28_by_28_digits_is_refused(files, batch_shape, message, keras_must_not_load):
    other_input = config_of(files["mlp"])
    layers_of(other_input)[0]["config"]["batch_shape"] = batch_shape
    refused(rezipped(files["mlp"], other_input), message)


def test_the_other_accepted_inputs_are_28_by_28_by_1_and_784(files):
    for batch_shape in ([None, 28, 28, 1], [None, 784]):
        reads = config_of(files["mlp"])
        layers_of(reads)[0]["config"]["batch_shape"] = batch_shape
        assert inspect_keras_file(rezipped(files["mlp"], reads)).input_shape == tuple(batch_shape[1:])


def test_a_model_without_ten_outputs_is_refused(files, keras_must_not_load):
    five = config_of(files["mlp"])
    layer(five, "Dense", 1)["config"]["units"] = 5
    refused(rezipped(files["mlp"], five), r"output has shape \(5,\); it must give 10 values, one per digit")


@pytest.mark.parametrize(
    ("kind", "edit", "message"),
    [
        ("a layer off the list", lambda c: layer(c, "Flatten").update(class_name="UpSampling2D"),
         "a layer this app does not accept: 'UpSampling2D'"),
        ("code from another module", lambda c: layer(c, "Dense").update(module="os"), r"code from outside Keras \('os'\)"),
        ("an activation from builtins", lambda c: layer(c, "Dense")["config"].update(
            activation={"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "function"}),
         r"code from outside Keras \('builtins'\)"),
        ("a custom registered layer", lambda c: layer(c, "Dense").update(registered_name="evil>Backdoor"),
         "a custom object"),
        ("a serialized lambda", lambda c: layer(c, "Dense")["config"].update(
            activation={"class_name": "__lambda__", "config": {"code": "..."}}), "Python code"),
        ("channels first", lambda c: layer(c, "Conv2D")["config"].update(data_format="channels_first"),
         "channels_last only"),
        ("a nested model", lambda c: layers_of(c).insert(1, {"module": "keras", "class_name": "Sequential",
                                                             "config": {"layers": []}}),
         "a layer this app does not accept: 'Sequential'"),
        ("not a model", lambda c: c.update(class_name="Dense"), "only Sequential and functional models"),
        ("no layers", lambda c: c["config"].update(layers=[]), "The model has no layers"),
        ("a reshape that does not fit", lambda c: layer(c, "Reshape")["config"].update(target_shape=[27, 27, 1]),
         "Reshape to"),
    ],
)
def test_configs_this_app_does_not_read_are_refused_with_a_reason(files, kind, edit, message, keras_must_not_load):
    config = config_of(files["cnn"])
    edit(config)
    refused(rezipped(files["cnn"], config), message)


def test_a_functional_model_with_a_shared_layer_or_two_inputs_is_refused(files, keras_must_not_load):
    shared = config_of(files["functional"])
    conv = layer(shared, "Conv2D")
    conv["inbound_nodes"] = conv["inbound_nodes"] * 2
    refused(rezipped(files["functional"], shared), "use each layer once")
    two_inputs = config_of(files["functional"])
    two_inputs["config"]["input_layers"] = [two_inputs["config"]["input_layers"]] * 2
    refused(rezipped(files["functional"], two_inputs), "one input and one output")


# --- Not even a .keras file ---------------------------------------------------------------------------------------


def zip_of(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("empty", b"", "The file is empty."),
        ("text", b"not a model\n" * 100, "it is not a zip archive"),
        ("a PNG", b"\x89PNG\r\n\x1a\n" + bytes(200), "it is not a zip archive"),
        ("an empty zip", zip_of({}), "it lacks its config or its weights"),
        ("no weights", zip_of({"config.json": b"{}"}), "it lacks its config or its weights"),
        ("a stray file", zip_of({"config.json": b"{}", "model.weights.h5": b"", "assets/run.py": b"print()"}),
         r"it holds 'assets/run.py'"),
        ("a thousand files", zip_of({f"f{index}": b"" for index in range(1000)}), "it holds 1,000 files"),
        ("config of NaN", zip_of({"config.json": b'{"a": NaN}', "model.weights.h5": b""}), "not valid JSON"),
        ("config nested deep", zip_of({"config.json": b"[" * 100_000 + b"]" * 100_000, "model.weights.h5": b""}),
         "nested too deeply"),
        ("config a list", zip_of({"config.json": b"[1]", "model.weights.h5": b""}), "not a JSON object"),
    ],
)
def test_files_that_are_not_keras_models_are_refused(kind, data, message):
    refused(data, message)


def test_zip_bombs_are_refused_from_the_zip_directory_before_decompressing():
    config_bomb = zip_of({"config.json": b" " * 50_000_000, "model.weights.h5": b""})
    weights_bomb = zip_of({"config.json": b"{}", "model.weights.h5": bytes(200_000_000)})
    assert len(config_bomb) < 100_000 and len(weights_bomb) < 300_000  # what the visitor uploads

    refused(config_bomb, r"config.json is too large \(50,000,000 bytes; at most 1,000,000\)")
    refused(weights_bomb, r"model.weights.h5 is too large \(200,000,000 bytes")


def test_a_zip_whose_directory_understates_a_size_is_still_read_no_further_than_the_cap():
    honest = zip_of({"config.json": b" " * 3_000_000, "model.weights.h5": b""})
    # Rewrite the declared uncompressed size of config.json (local header and central directory) to 100 bytes.
    declared = (3_000_000).to_bytes(4, "little")
    lying = honest.replace(declared, (100).to_bytes(4, "little"))
    assert lying != honest
    refused(lying, "The file is damaged|too large")


def test_weights_that_do_not_match_the_config_are_a_short_message_and_the_details_go_to_the_log(files, caplog):
    narrower = config_of(files["cnn"])
    layer(narrower, "Dense", 0)["config"]["units"] = 32  # within every budget; the saved weights are for 64

    with caplog.at_level("WARNING", logger="mnist_core.model_upload"):
        with pytest.raises(UploadRefused) as raised:
            load_uploaded_model(rezipped(files["cnn"], narrower))

    assert str(raised.value) == (
        "The model could not be loaded: its weights do not match its layers, or the file is damaged."
    )
    assert "mnist-lab-upload-" not in str(raised.value)
    assert any("Keras refused it" in record.getMessage() for record in caplog.records)
