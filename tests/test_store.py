"""mnist_core.store: models survive a round trip, names are safe, damage is listed not raised, writes are atomic."""

import json
import random
import select
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from mnist_core.architectures import build_model
from mnist_core.constants import PROJECT_ROOT
from mnist_core.store import (
    BrokenModelError,
    InvalidModelName,
    ModelExistsError,
    ModelInfo,
    ModelNotFound,
    ProtectedModelError,
    delete_model,
    list_models,
    load_model,
    read_info,
    save_model,
    unique_name,
    validate_name,
)

PYTHON = sys.executable  # the project venv's interpreter


def info_for(name: str, shipped: bool = False, created: str = "", architecture: str = "mlp") -> ModelInfo:
    return ModelInfo(
        name=name,
        architecture=architecture,
        config={"architecture": architecture, "epochs": 1},
        test_accuracy=0.9,
        history=[{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.9}],
        shipped=shipped,
        created=created,
    )


@pytest.fixture(scope="module")
def mlp():
    return build_model("mlp")


def test_round_trip_gives_identical_predictions(tmp_path, mlp, test_images):
    images, _ = test_images
    saved = save_model(mlp, info_for("round-trip"), tmp_path)
    loaded = load_model("round-trip", tmp_path)
    np.testing.assert_array_equal(np.asarray(loaded(images[:50])), np.asarray(mlp(images[:50])))
    # The metadata is filled in and read back as written.
    assert saved.parameters == mlp.count_params()
    assert saved.created and {"keras", "tensorflow", "numpy"} <= set(saved.versions)
    assert read_info("round-trip", tmp_path) == saved


def test_listing_shows_metadata_shipped_first_then_newest(tmp_path, mlp):
    save_model(mlp, info_for("old-trained", created="2024-01-01T00:00:00+00:00"), tmp_path)
    save_model(mlp, info_for("zz-shipped", shipped=True, created="2023-01-01T00:00:00+00:00"), tmp_path)
    save_model(mlp, info_for("new-trained", created="2025-01-01T00:00:00+00:00"), tmp_path)
    entries = list_models(tmp_path)
    assert [entry.name for entry in entries] == ["zz-shipped", "new-trained", "old-trained"]
    assert entries[0].shipped and not entries[1].shipped
    assert all(not entry.broken for entry in entries)
    assert entries[1].info.test_accuracy == 0.9 and entries[1].info.architecture == "mlp"
    assert list_models(tmp_path / "nowhere") == []


@pytest.mark.parametrize(
    "name",
    [
        "../x", "a/b", "a\\b", "", ".hidden", "x" * 65, "\uff4dodel", "model\u2024keras", "a\u2215b", "con..x",
        "trailing.", "-dash-first", "with space", "new\nline", "model\n", "tab\t", "nul\x00", "caf\u00e9", None,
    ],
)
def test_bad_names_are_refused(name, tmp_path, mlp):
    with pytest.raises(InvalidModelName):
        validate_name(name)
    with pytest.raises(InvalidModelName):
        save_model(mlp, info_for(name), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["cnn", "strong-cnn", "my_model.v2", "A1", "x" * 64, "2024-05-01"])
def test_good_names_are_accepted(name):
    assert validate_name(name) == name


def test_invalid_name_message_says_what_is_allowed():
    with pytest.raises(InvalidModelName) as raised:
        validate_name("a/b")
    assert "letters, digits" in str(raised.value)


def test_an_existing_name_needs_overwrite(tmp_path, mlp):
    save_model(mlp, info_for("taken"), tmp_path)
    with pytest.raises(ModelExistsError) as raised:
        save_model(mlp, info_for("taken"), tmp_path)
    assert "taken" in str(raised.value)
    replacement = info_for("taken")
    replacement.test_accuracy = 0.5
    save_model(mlp, replacement, tmp_path, overwrite=True)
    assert read_info("taken", tmp_path).test_accuracy == 0.5


def test_shipped_models_are_protected(tmp_path, mlp):
    save_model(mlp, info_for("cnn", shipped=True), tmp_path)
    with pytest.raises(ProtectedModelError):
        delete_model("cnn", tmp_path)
    with pytest.raises(ProtectedModelError):
        save_model(mlp, info_for("cnn"), tmp_path, overwrite=True)
    assert read_info("cnn", tmp_path).shipped
    # The maintainers' CLI may still replace a shipped model with another shipped one.
    save_model(mlp, info_for("cnn", shipped=True), tmp_path, overwrite=True)
    delete_model("cnn", tmp_path, allow_shipped=True)
    assert list_models(tmp_path) == []


def test_deleting_a_missing_model_says_so(tmp_path):
    with pytest.raises(ModelNotFound):
        delete_model("ghost", tmp_path)
    with pytest.raises(ModelNotFound):
        load_model("ghost", tmp_path)
    with pytest.raises(ModelNotFound):
        read_info("ghost", tmp_path)


def test_damaged_files_are_listed_as_broken_and_can_be_deleted(tmp_path, mlp):
    save_model(mlp, info_for("good"), tmp_path)
    save_model(mlp, info_for("garbage-weights"), tmp_path)
    (tmp_path / "garbage-weights.keras").write_bytes(b"\x00not a zip at all" * 100)
    save_model(mlp, info_for("bad-json"), tmp_path)
    (tmp_path / "bad-json.json").write_text('{"name": "bad-json", "architecture": ', encoding="utf-8")
    save_model(mlp, info_for("wrong-json"), tmp_path)
    (tmp_path / "wrong-json.json").write_text('{"name": "wrong-json", "config": []}', encoding="utf-8")
    save_model(mlp, info_for("text-shipped"), tmp_path)
    edited = json.loads((tmp_path / "text-shipped.json").read_text())
    (tmp_path / "text-shipped.json").write_text(json.dumps({**edited, "shipped": "false"}), encoding="utf-8")
    save_model(mlp, info_for("bad-history"), tmp_path)
    edited = json.loads((tmp_path / "bad-history.json").read_text())
    (tmp_path / "bad-history.json").write_text(json.dumps({**edited, "history": [1, 2]}), encoding="utf-8")
    save_model(mlp, info_for("no-weights"), tmp_path)
    (tmp_path / "no-weights.keras").unlink()
    save_model(mlp, info_for("no-json"), tmp_path)
    (tmp_path / "no-json.json").unlink()

    entries = {entry.name: entry for entry in list_models(tmp_path)}
    broken = ("garbage-weights", "bad-json", "wrong-json", "text-shipped", "bad-history", "no-weights", "no-json")
    assert set(entries) == {"good", *broken}
    assert not entries["good"].broken
    for name in broken:
        assert entries[name].broken, name
        assert entries[name].error
    assert "damaged" in entries["garbage-weights"].error
    assert "missing" in entries["no-weights"].error and "missing" in entries["no-json"].error
    assert [entry.name for entry in list_models(tmp_path)][0] == "good"  # working ones before broken ones

    with pytest.raises(BrokenModelError):
        load_model("garbage-weights", tmp_path)
    with pytest.raises(BrokenModelError):
        read_info("bad-json", tmp_path)

    for name in broken:
        delete_model(name, tmp_path)
    assert [entry.name for entry in list_models(tmp_path)] == ["good"]


def test_a_zip_that_is_not_a_keras_model_fails_to_load(tmp_path, mlp):
    save_model(mlp, info_for("fake-zip"), tmp_path)
    with zipfile.ZipFile(tmp_path / "fake-zip.keras", "w") as archive:
        archive.writestr("hello.txt", "not a model")
    with pytest.raises(BrokenModelError):
        load_model("fake-zip", tmp_path)


def test_a_broken_model_can_be_replaced_by_a_new_save(tmp_path, mlp):
    save_model(mlp, info_for("mended"), tmp_path)
    (tmp_path / "mended.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelExistsError):
        save_model(mlp, info_for("mended"), tmp_path)
    save_model(mlp, info_for("mended"), tmp_path, overwrite=True)
    assert not list_models(tmp_path)[0].broken


def test_a_model_with_a_lambda_layer_is_refused(tmp_path):
    import keras

    model = keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Lambda(lambda x: x * 2.0), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    save_model(model, info_for("sneaky"), tmp_path)
    with pytest.raises(BrokenModelError) as raised:
        load_model("sneaky", tmp_path)
    assert "sneaky" in str(raised.value)


def test_a_save_leaves_no_temporary_files(tmp_path, mlp):
    save_model(mlp, info_for("tidy"), tmp_path)
    save_model(mlp, info_for("tidy"), tmp_path, overwrite=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tidy.json", "tidy.keras", "tidy.tflite"]


def test_a_save_writes_the_litert_file_the_server_predicts_with(tmp_path, trained_cnn, test_images):
    from mnist_core.inference import Classifier
    from mnist_core.keras_inference import KerasClassifier
    from mnist_core.store import litert_path

    images, _ = test_images
    save_model(trained_cnn, info_for("served", architecture="cnn"), tmp_path)
    served = Classifier(litert_path("served", tmp_path).read_bytes())
    np.testing.assert_allclose(served.predict_proba(images[:200]), KerasClassifier(trained_cnn).predict_proba(images[:200]),
                               atol=1e-5)
    assert served.conv_layer_names == ["conv2d", "conv2d_1"]
    # Deleting the model deletes its LiteRT file too.
    delete_model("served", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_model_the_converter_fails_on_is_saved_all_the_same(tmp_path, mlp, monkeypatch, caplog):
    """Minutes of training are not lost over LiteRT: the model is saved without its .tflite, and the log says why
    (a conversion worker reports the failure again when somebody opens the model)."""
    import mnist_core.export

    def broken_converter(model):
        raise RuntimeError("converter exploded")

    save_model(mlp, info_for("unconverted"), tmp_path)  # an older file that would no longer match
    monkeypatch.setattr(mnist_core.export, "litert_model", broken_converter)
    with caplog.at_level("ERROR", logger="mnist_core.store"):
        save_model(mlp, info_for("unconverted"), tmp_path, overwrite=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["unconverted.json", "unconverted.keras"]
    assert "could not convert 'unconverted' to LiteRT" in caplog.text and "converter exploded" in caplog.text
    assert [entry.name for entry in list_models(tmp_path) if not entry.broken] == ["unconverted"]


def test_a_failed_save_leaves_no_files(tmp_path):
    class Unsavable:
        def count_params(self):
            return 1

        def save(self, path):
            raise OSError("disk full")

    info = info_for("half")
    info.versions = {"keras": "test"}
    with pytest.raises(OSError):
        save_model(Unsavable(), info, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unique_name_adds_a_suffix(tmp_path, mlp):
    assert unique_name("fresh", tmp_path) == "fresh"
    save_model(mlp, info_for("fresh"), tmp_path)
    assert unique_name("fresh", tmp_path) == "fresh-2"
    save_model(mlp, info_for("fresh-2"), tmp_path)
    assert unique_name("fresh", tmp_path) == "fresh-3"
    long = "y" * 64
    save_model(mlp, info_for(long), tmp_path)
    suffixed = unique_name(long, tmp_path)
    assert suffixed.endswith("-2") and validate_name(suffixed) == suffixed
    with pytest.raises(InvalidModelName):
        unique_name("../x", tmp_path)


SAVER = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
from pathlib import Path
from mnist_core.architectures import build_model
from mnist_core.store import ModelInfo, save_model

models_dir = Path(sys.argv[1])
model = build_model("cnn")
round_number = 0
while True:
    round_number += 1
    info = ModelInfo(name="victim", architecture="cnn", config={"round": round_number}, test_accuracy=0.5,
                     versions={"keras": "test"})
    save_model(model, info, models_dir, overwrite=True)
    if round_number == 1:
        print("ready", flush=True)
"""


def test_a_kill_during_saves_never_leaves_a_half_written_model(tmp_path):
    from mnist_core.inference import Classifier

    rng = random.Random(1)
    for _ in range(3):
        saver = subprocess.Popen(
            [PYTHON, "-c", SAVER, str(tmp_path)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
        )
        try:
            readable, _, _ = select.select([saver.stdout], [], [], 120)  # never hang on a saver that died early
            assert readable and saver.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 1.5))  # somewhere in the middle of a later save
        finally:
            saver.send_signal(signal.SIGKILL)
            saver.wait(30)
        assert saver.returncode == -signal.SIGKILL

        finals = sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith("."))
        assert finals == ["victim.json", "victim.keras", "victim.tflite"]
        assert zipfile.is_zipfile(tmp_path / "victim.keras")
        assert load_model("victim", tmp_path).count_params() > 0
        assert Classifier((tmp_path / "victim.tflite").read_bytes()).predict_proba(np.zeros((28, 28))).shape == (1, 10)
        assert json.loads((tmp_path / "victim.json").read_text())["config"]["round"] >= 1
        entries = list_models(tmp_path)
        assert [(entry.name, entry.broken) for entry in entries] == [("victim", False)]

    # Whatever the kills left behind is hidden; once stale it is cleared, and the model stays whole.
    from mnist_core.store import remove_stale_temporaries

    leftovers = sorted(path for path in tmp_path.iterdir() if path.name.startswith("."))
    assert all(".tmp." in path.name for path in leftovers)
    assert remove_stale_temporaries(tmp_path, older_than=0) == leftovers
    assert sorted(path.name for path in tmp_path.iterdir()) == ["victim.json", "victim.keras", "victim.tflite"]
    assert load_model("victim", tmp_path).count_params() > 0


def test_only_stale_temporaries_are_removed_and_a_new_registry_does_it(tmp_path, mlp):
    import os

    from mnist_core.jobs import JobRegistry
    from mnist_core.store import STALE_TEMPORARY_SECONDS, remove_stale_temporaries

    save_model(mlp, info_for("kept"), tmp_path)
    two_hours_ago = time.time() - 2 * STALE_TEMPORARY_SECONDS
    stale = [tmp_path / ".kept.abc123.tmp.keras", tmp_path / ".kept.def456.tmp.json"]
    fresh = tmp_path / ".other.ghi789.tmp.keras"  # a save in progress right now: not touched
    for path in [*stale, fresh]:
        path.write_bytes(b"partial")
    for path in stale:
        os.utime(path, (two_hours_ago, two_hours_ago))
    folder = tmp_path / ".not.a.tmp.file"  # matches the pattern but is a folder: left alone
    folder.mkdir()
    os.utime(folder, (two_hours_ago, two_hours_ago))

    JobRegistry(tmp_path)
    assert not any(path.exists() for path in stale)
    assert fresh.exists() and folder.is_dir()
    assert remove_stale_temporaries(tmp_path) == []
    assert [entry.name for entry in list_models(tmp_path)] == ["kept"]
    assert remove_stale_temporaries(tmp_path / "nowhere") == []


def test_check_can_save_answers_before_any_training(tmp_path, mlp):
    from mnist_core.store import check_can_save

    check_can_save("free", tmp_path)  # nothing there: fine
    save_model(mlp, info_for("kept", shipped=True), tmp_path)
    with pytest.raises(ModelExistsError):
        check_can_save("kept", tmp_path, shipped=True)
    with pytest.raises(ProtectedModelError):
        check_can_save("kept", tmp_path, overwrite=True)
    check_can_save("kept", tmp_path, overwrite=True, shipped=True)
    with pytest.raises(InvalidModelName):
        check_can_save("../kept", tmp_path)
