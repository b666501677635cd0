"""The pretrained models in models/: the README promises them, and their recorded figures must be true."""

import json

import numpy as np
import pytest

from mnist_core.constants import PROJECT_ROOT

SHIPPED_DIR = PROJECT_ROOT / "models"
# The accuracy each shipped architecture must reach on the 10,000 test images.
REQUIRED_ACCURACY = {"cnn": 0.992, "strong": 0.994}
TOLERANCE = 0.0005  # recorded vs measured: 0.05 points, room for a different CPU's rounding only


def shipped_metadata() -> dict[str, dict]:
    found = {}
    for path in sorted(SHIPPED_DIR.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            values = {"shipped": True, "unreadable": True}  # a damaged shipped file must fail, not vanish
        if isinstance(values, dict) and values.get("shipped") is True:
            found[path.stem] = values
    return found


SHIPPED = shipped_metadata()


def test_at_least_two_models_are_shipped():
    assert len(SHIPPED) >= 2, f"the README promises a CNN and a strong CNN in models/, found {sorted(SHIPPED)}"
    architectures = {values.get("architecture") for values in SHIPPED.values()}
    assert {"cnn", "strong"} <= architectures


@pytest.fixture(scope="module")
def full_test_set(mnist):
    (_, _), (x_test, y_test) = mnist
    return x_test, y_test


@pytest.mark.parametrize("name", sorted(SHIPPED) or [pytest.param(None, id="no-shipped-models")])
def test_shipped_model_is_as_good_as_it_says(name, full_test_set):
    from mnist_core.evaluation import evaluate
    from mnist_core.keras_inference import KerasClassifier
    from mnist_core.store import list_models, load_model, read_info

    assert name is not None, "no shipped model found in models/"
    recorded = SHIPPED[name]
    assert "unreadable" not in recorded, f"models/{name}.json is not valid JSON"
    info = read_info(name, SHIPPED_DIR)
    entry = next(entry for entry in list_models(SHIPPED_DIR) if entry.name == name)
    assert not entry.broken, entry.error

    model = load_model(name, SHIPPED_DIR)
    x_test, y_test = full_test_set
    measured = evaluate(KerasClassifier(model, name), x_test, y_test).accuracy
    assert info.test_accuracy == pytest.approx(measured, abs=TOLERANCE)
    required = REQUIRED_ACCURACY.get(info.architecture)
    if required is not None:
        assert measured >= required, f"{name} ({info.architecture}) reaches {measured:.4f}, needs {required}"

    # The metadata tells how it was made, so anybody can make it again.
    assert info.command and info.command.startswith("python -m mnist_core train ")
    assert "--shipped" in info.command
    assert len(info.history) == info.config["epochs"], "one history entry per epoch"
    assert [entry["epoch"] for entry in info.history] == list(range(1, info.config["epochs"] + 1))
    assert not info.stopped
    assert info.train_seconds > 0
    assert info.parameters == model.count_params()
    assert info.created and {"keras", "tensorflow", "numpy"} <= set(info.versions)
    assert info.name == name and info.architecture == info.config["architecture"]


@pytest.mark.parametrize("name", sorted(SHIPPED) or [pytest.param(None, id="no-shipped-models")])
def test_recorded_command_reproduces_the_recorded_config(name):
    """Running the recorded command today would train with the same settings (no preset drifted since)."""
    import shlex

    from mnist_core.store import read_info
    from mnist_core.cli import PROG, build_parser, config_from_args
    from mnist_core.training import TrainConfig

    assert name is not None, "no shipped model found in models/"
    info = read_info(name, SHIPPED_DIR)
    prefix = f"{PROG} "
    assert info.command and info.command.startswith(prefix)
    args = build_parser().parse_args(shlex.split(info.command[len(prefix) :]))
    assert args.command == "train" and args.name == name and args.shipped
    # Saved before the precision setting existed, the configs read as float32, as the presets still train.
    assert config_from_args(args) == TrainConfig.from_dict(info.config)
    assert {key: value for key, value in config_from_args(args).to_dict().items() if key in info.config} == info.config


@pytest.mark.parametrize("name", sorted(SHIPPED) or [pytest.param(None, id="no-shipped-models")])
def test_shipped_litert_file_gives_the_keras_models_answers(name, full_test_set):
    """The server predicts with models/NAME.tflite: it must be the .keras model, to float rounding, on every test
    image. After re-shipping a model: `python -m mnist_core convert NAME --force` (training writes it already)."""
    from mnist_core.evaluation import evaluate
    from mnist_core.inference import Classifier
    from mnist_core.keras_inference import KerasClassifier
    from mnist_core.store import litert_path, load_model

    assert name is not None, "no shipped model found in models/"
    path = litert_path(name, SHIPPED_DIR)
    assert path.exists(), f"models/{name}.tflite is missing: python -m mnist_core convert {name}"
    x_test, y_test = full_test_set
    served = evaluate(Classifier(path.read_bytes(), name), x_test, y_test)
    keras = evaluate(KerasClassifier(load_model(name, SHIPPED_DIR), name), x_test, y_test)
    np.testing.assert_allclose(served.probabilities, keras.probabilities, atol=1e-4)
    assert (served.predictions == keras.predictions).all(), "the .tflite answers differently from the .keras"
    assert served.accuracy == keras.accuracy
