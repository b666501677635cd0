"""mnist_core.store: models survive a round trip, names are safe, damage is listed not raised, writes are atomic."""

import json
import os
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
    assert "damaged" in str(entries["garbage-weights"].error)
    assert "missing" in str(entries["no-weights"].error) and "missing" in str(entries["no-json"].error)
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
    assert str(raised.value) == (
        "The model 'sneaky' could not be loaded: it contains Python code (a Lambda layer), which this app never runs."
    )


def test_load_errors_say_why_in_a_sentence_and_leave_keras_details_to_the_log(tmp_path, mlp, caplog):
    save_model(mlp, info_for("fake-zip"), tmp_path)
    with zipfile.ZipFile(tmp_path / "fake-zip.keras", "w") as archive:
        archive.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": "nonsense"}}')

    with caplog.at_level("WARNING", logger="mnist_core.store"):
        with pytest.raises(BrokenModelError) as raised:
            load_model("fake-zip", tmp_path)

    message = str(raised.value)
    assert message == "The model 'fake-zip' could not be loaded: its file is damaged or not a Keras model this app can read."
    assert str(tmp_path) not in message
    assert any(str(tmp_path) in record.getMessage() and "fake-zip" in record.getMessage() for record in caplog.records)


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


def test_only_stale_temporaries_are_removed_and_a_new_training_queue_does_it(tmp_path, mlp):
    import os

    from mnist_core.jobs import LocalRunner, Scheduler
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

    Scheduler(LocalRunner(), tmp_path)  # as a server starting up makes its queue (no worker starts yet)
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


# --- Saves across processes (issue 17, part 5) ------------------------------------------------------------------

RACING_SAVER = """
import sys, zipfile
from pathlib import Path
import mnist_core.store as store
from mnist_core.store import ModelExistsError, ModelInfo, save_model

class SignedModel:  # a small zip that says who saved it; the store asks nothing else of a model
    def __init__(self, who): self.who = who
    def count_params(self): return 1
    def save(self, path):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("who.txt", self.who)

models_dir, who = Path(sys.argv[1]), sys.argv[2]
real_write = store._atomic_write

def write_when_told(writes):  # the name check has passed; the files are not in place yet
    print("checked", flush=True)
    sys.stdin.readline()
    real_write(writes)

print("ready", flush=True)
for line in sys.stdin:
    how, name = line.split()
    store._atomic_write = write_when_told if how == "held" else real_write
    info = ModelInfo(name=name, architecture="mlp", config={}, test_accuracy=0.5, owner=who, versions={"keras": "test"})
    try:
        save_model(SignedModel(who), info, models_dir)
        print("won", flush=True)
    except ModelExistsError as error:
        print("taken", error, flush=True)
"""


class RacingSaver:
    """Another process (the CLI, a second server) saving models into the same store, one line command at a time."""

    def __init__(self, models_dir, who: str):
        self.who = who
        self.process = subprocess.Popen(
            [PYTHON, "-c", RACING_SAVER, str(models_dir), who], cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.read() == "ready"

    def send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def ready_to_read(self, timeout: float) -> bool:
        return bool(select.select([self.process.stdout], [], [], timeout)[0])

    def read(self) -> str:
        assert self.ready_to_read(120), f"{self.who} said nothing"  # never hang on a saver that died
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


def waiting_for_a_file_lock(pid: int) -> bool:
    """True while process `pid` waits for an flock (Linux lists waiters in /proc/locks as '-> FLOCK ... PID')."""
    return any("->" in line and "FLOCK" in line and f" {pid} " in line
               for line in open("/proc/locks", encoding="ascii").read().splitlines())


def signed_by(models_dir, name: str) -> tuple[str, str]:
    """(who the metadata says saved `name`, who its .keras says saved it): equal when one save won whole."""
    with zipfile.ZipFile(models_dir / f"{name}.keras") as archive:
        return read_info(name, models_dir).owner, archive.read("who.txt").decode()


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="needs Linux's /proc/locks to see a process wait")
def test_two_processes_saving_the_same_new_name_exactly_one_wins(tmp_path):
    first, second = RacingSaver(tmp_path, "first"), RacingSaver(tmp_path, "second")
    try:
        first.send("held same")  # first passes the name check and stops just before its files go in place...
        assert first.read() == "checked"
        second.send("now same")  # ...while second saves the same name: it must wait, not pass the check too
        deadline = time.monotonic() + 120
        while not waiting_for_a_file_lock(second.process.pid):
            assert not second.ready_to_read(0.01), f"second did not wait for first: {second.read()!r}"
            assert time.monotonic() < deadline, "second neither waited nor saved"
        first.send("go on")
        assert first.read() == "won"
        assert second.read() == "taken A model named 'same' already exists: pick another name."
        assert signed_by(tmp_path, "same") == ("first", "first")

        for round_number in range(5):  # and saving at the same moment, whoever gets there first
            name = f"race-{round_number}"
            first.send(f"now {name}")
            second.send(f"now {name}")
            answers = sorted([first.read().split()[0], second.read().split()[0]])
            assert answers == ["taken", "won"], (name, answers)
            owner, signature = signed_by(tmp_path, name)
            assert owner == signature
    finally:
        first.close()
        second.close()
    assert [entry.broken for entry in list_models(tmp_path)] == [False] * 6


# --- Hostile files in the store (issue 17, part 6) --------------------------------------------------------------


def listed_within(models_dir, seconds: float = 60) -> dict:
    """list_models in a thread, so a listing that blocks (on a FIFO, say) fails the test instead of hanging it."""
    import threading

    listing = {}
    worker = threading.Thread(target=lambda: listing.update(entries=list_models(models_dir)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "listing the store blocked"
    return {entry.name: entry for entry in listing["entries"]}


def test_fifos_links_and_folders_in_the_store_are_broken_entries_that_never_block(tmp_path, mlp):
    save_model(mlp, info_for("good"), tmp_path)
    save_model(mlp, info_for("fifo-json"), tmp_path)
    (tmp_path / "fifo-json.json").unlink()
    os.mkfifo(tmp_path / "fifo-json.json")  # opening it for reading would wait for a writer forever
    save_model(mlp, info_for("fifo-keras"), tmp_path)
    (tmp_path / "fifo-keras.keras").unlink()
    os.mkfifo(tmp_path / "fifo-keras.keras")
    save_model(mlp, info_for("linked"), tmp_path)
    (tmp_path / "linked.json").unlink()
    (tmp_path / "linked.json").symlink_to(tmp_path / "good.json")  # a link can point at any file on the server
    save_model(mlp, info_for("folder"), tmp_path)
    (tmp_path / "folder.json").unlink()
    (tmp_path / "folder.json").mkdir()

    entries = listed_within(tmp_path)

    assert not entries["good"].broken
    assert str(entries["fifo-json"].error) == "The metadata of 'fifo-json' is damaged: it is a FIFO, not a regular file."
    assert str(entries["fifo-keras"].error) == "its weights file (.keras) is a FIFO, not a regular file"
    assert str(entries["linked"].error) == "The metadata of 'linked' is damaged: it is a symbolic link, not a regular file."
    assert str(entries["folder"].error) == "The metadata of 'folder' is damaged: it is a folder, not a regular file."
    with pytest.raises(BrokenModelError, match="its file is a FIFO"):
        load_model("fifo-keras", tmp_path)  # Keras would have waited on it forever
    for name in ("fifo-json", "fifo-keras", "linked"):
        delete_model(name, tmp_path)  # broken entries can be deleted: the FIFO and the link, not what it points at
    assert (tmp_path / "good.json").is_file()
    assert set(listed_within(tmp_path)) == {"good", "folder"}


@pytest.mark.parametrize(
    ("kind", "content", "reason"),
    [
        ("nested 400,000 deep", "[" * 400_000 + "]" * 400_000, "it is nested too deeply"),
        ("over the size cap", '{"name": "' + "x" * 1_000_001 + '"}', "it is larger than 1,000,000 bytes"),
        ("not UTF-8", b'{"name": "\xff\xfe"}', "it is not UTF-8 text"),
        ("not JSON", "{'name': 'x'}", "it is not valid JSON (Expecting property name enclosed in double quotes"),
    ],
)
def test_metadata_that_is_too_deep_too_large_or_not_json_is_a_broken_entry(tmp_path, mlp, kind, content, reason):
    save_model(mlp, info_for("good"), tmp_path)
    save_model(mlp, info_for("hostile"), tmp_path)
    path = tmp_path / "hostile.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())

    entries = listed_within(tmp_path)

    assert not entries["good"].broken
    assert str(entries["hostile"].error).startswith(f"The metadata of 'hostile' is damaged: {reason}"), entries["hostile"].error
    with pytest.raises(BrokenModelError):
        read_info("hostile", tmp_path)


def test_running_out_of_memory_while_reading_metadata_is_a_broken_entry(tmp_path, mlp, monkeypatch):
    import mnist_core.store as store

    save_model(mlp, info_for("huge"), tmp_path)

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(store.json, "loads", out_of_memory)
    assert str(listed_within(tmp_path)["huge"].error) == "The metadata of 'huge' is damaged: it is too large to read."


@pytest.mark.parametrize(
    ("field", "text", "reason"),
    [
        ("train_seconds", "NaN", "a NaN or infinite number in train_seconds"),
        ("test_accuracy", "Infinity", "a NaN or infinite number in test_accuracy"),
        ("parameters", "-Infinity", "a malformed train_seconds or parameters"),  # not even a whole number
        ("history", '[{"epoch": 1, "loss": NaN}]', "a NaN or infinite number in history[0].loss"),
        ("config", '{"learning_rate": 1e999}', "a NaN or infinite number in config.learning_rate"),  # inf as a float
    ],
)
def test_nan_and_infinite_numbers_make_metadata_a_broken_entry(tmp_path, mlp, field, text, reason):
    """Such a train_seconds crashed the Home page (ui.format_duration); JSON itself has no NaN or infinity."""
    save_model(mlp, info_for("odd"), tmp_path)
    path = tmp_path / "odd.json"
    values = json.loads(path.read_text())
    values[field] = "PLACEHOLDER"
    path.write_text(json.dumps(values).replace('"PLACEHOLDER"', text))

    entry = listed_within(tmp_path)["odd"]

    assert str(entry.error) == f"The metadata of 'odd' is damaged: metadata has {reason}."


def test_model_info_refuses_nan_infinite_and_out_of_range_numbers():
    good = json.loads(info_for("x").to_json())
    ModelInfo.from_dict(good)
    for change, message in [
        ({"train_seconds": float("nan")}, "NaN or infinite number in train_seconds"),
        ({"test_accuracy": float("inf")}, "NaN or infinite number in test_accuracy"),
        ({"history": [{"epoch": 1, "val_loss": float("-inf")}]}, r"NaN or infinite number in history\[0\].val_loss"),
        ({"versions": {"keras": float("nan")}}, "NaN or infinite number in versions.keras"),
        ({"test_accuracy": 1.5}, "test accuracy outside 0-1"),
        ({"train_seconds": -3.0}, "negative train_seconds"),
        ({"parameters": -1}, "negative train_seconds or parameters"),
    ]:
        with pytest.raises(ValueError, match=message):
            ModelInfo.from_dict({**good, **change})


def test_a_diverged_training_saves_its_nan_losses_as_null_and_stays_usable(tmp_path, mlp):
    info = info_for("diverged")
    info.history = [{"epoch": 1, "loss": float("nan"), "accuracy": 0.1, "val_loss": float("inf"), "val_accuracy": 0.1}]
    info.train_seconds = float("nan")

    save_model(mlp, info, tmp_path)

    text = (tmp_path / "diverged.json").read_text()
    assert "NaN" not in text and "Infinity" not in text  # standard JSON, readable by any tool
    read_back = read_info("diverged", tmp_path)
    assert read_back.history[0]["loss"] is None and read_back.history[0]["val_loss"] is None
    assert read_back.train_seconds == 0.0
    assert not listed_within(tmp_path)["diverged"].broken


def test_the_lock_and_the_listing_cope_with_a_store_folder_that_does_not_exist(tmp_path):
    with pytest.raises(ModelNotFound):
        delete_model("ghost", tmp_path / "nowhere")
    assert list_models(tmp_path / "nowhere") == []
    (tmp_path / "a-file").write_text("not a folder")
    assert list_models(tmp_path / "a-file") == []


# --- The listing, kept until the folder changes (issue 17, part 4) -----------------------------------------------


class CountingReads:
    """Counts the store's folder scans and the models whose files it reads while listing."""

    def __init__(self, monkeypatch):
        import mnist_core.store as store

        self.scans, self.read = 0, []
        real_scan, real_entry = store._file_signatures, store._entry

        def scan(models_dir):
            self.scans += 1
            return real_scan(models_dir)

        def entry(name, models_dir):
            self.read.append(name)
            return real_entry(name, models_dir)

        monkeypatch.setattr(store, "_file_signatures", scan)
        monkeypatch.setattr(store, "_entry", entry)


def settle(folder) -> None:
    """Date the folder an hour back, as a store nobody changed for a while (a fresh change may share its mtime)."""
    an_hour_ago = time.time() - 3600
    os.utime(folder, (an_hour_ago, an_hour_ago))


def test_the_listing_is_kept_until_the_folder_changes_and_only_changed_models_are_read_again(tmp_path, mlp, monkeypatch):
    # The same creation time (newest first would otherwise depend on whether a second ticked between the saves).
    save_model(mlp, info_for("first", created="2026-01-01T00:00:00+00:00"), tmp_path)
    save_model(mlp, info_for("second", created="2026-01-01T00:00:00+00:00"), tmp_path)
    settle(tmp_path)
    reads = CountingReads(monkeypatch)

    assert [entry.name for entry in list_models(tmp_path)] == ["first", "second"]
    assert sorted(reads.read) == ["first", "second"]
    for _ in range(5):  # every page run lists the store: no scan, no read while the folder is unchanged
        listed = list_models(tmp_path)
        listed.clear()  # what a caller does with its list does not touch the kept one
    assert reads.scans == 1 and len(reads.read) == 2

    other = tmp_path / "elsewhere"  # another process (the CLI) saved a model, or files were copied in
    other.mkdir()
    save_model(mlp, info_for("third", created="2030-01-01T00:00:00+00:00"), other)
    for suffix in (".keras", ".json"):
        (other / f"third{suffix}").rename(tmp_path / f"third{suffix}")

    assert [entry.name for entry in list_models(tmp_path)][0] == "third"
    assert sorted(reads.read) == ["first", "second", "third"]  # the two unchanged models were not read again


def test_saves_and_deletes_in_this_process_show_in_the_next_listing(tmp_path, mlp):
    save_model(mlp, info_for("kept"), tmp_path)
    assert [entry.name for entry in list_models(tmp_path)] == ["kept"]
    save_model(mlp, info_for("added", created="2030-01-01T00:00:00+00:00"), tmp_path)
    assert [entry.name for entry in list_models(tmp_path)] == ["added", "kept"]
    replacement = info_for("kept")
    replacement.test_accuracy = 0.25
    save_model(mlp, replacement, tmp_path, overwrite=True)
    assert {entry.name: entry.info.test_accuracy for entry in list_models(tmp_path)} == {"added": 0.9, "kept": 0.25}
    delete_model("added", tmp_path)
    assert [entry.name for entry in list_models(tmp_path)] == ["kept"]


def test_a_file_edited_in_place_shows_after_the_recheck_interval(tmp_path, mlp, monkeypatch):
    """An editor that rewrites a file in place changes the file's mtime, not the folder's."""
    import mnist_core.store as store

    monkeypatch.setattr(store, "LISTING_RECHECK_SECONDS", 0.0)  # every listing stats the files again
    save_model(mlp, info_for("edited"), tmp_path)
    settle(tmp_path)
    folder_mtime = tmp_path.stat().st_mtime_ns
    assert list_models(tmp_path)[0].info.test_accuracy == 0.9
    path = tmp_path / "edited.json"
    path.write_text(path.read_text().replace('"test_accuracy": 0.9', '"test_accuracy": 0.5'))  # same inode and size
    os.utime(tmp_path, ns=(folder_mtime, folder_mtime))
    assert tmp_path.stat().st_mtime_ns == folder_mtime  # the folder looks unchanged

    assert list_models(tmp_path)[0].info.test_accuracy == 0.5


def test_a_model_saved_elsewhere_is_saved_from_its_files_bytes(tmp_path, mlp):
    """What a Ray worker sends back (its store's files as bytes) becomes a model of this store, through the same
    checks: the name is validated, a taken name refused, and the model loads and is listed."""
    from mnist_core.store import save_model_files

    elsewhere = tmp_path / "worker"
    save_model(mlp, info_for("remote"), elsewhere)
    files = {suffix: (elsewhere / f"remote{suffix}").read_bytes() for suffix in (".keras",)}
    info = read_info("remote", elsewhere)
    info.name = "arrived"
    here = tmp_path / "server"
    save_model_files(info, files, here)
    assert [entry.name for entry in list_models(here)] == ["arrived"]
    assert read_info("arrived", here).parameters == mlp.count_params()
    assert load_model("arrived", here).count_params() == mlp.count_params()

    with pytest.raises(ModelExistsError):
        save_model_files(info, files, here)
    info.name = "../escape"
    with pytest.raises(InvalidModelName):
        save_model_files(info, files, here)
    info.name = "no-keras"
    with pytest.raises(ValueError, match="a .keras and optionally a .tflite"):
        save_model_files(info, {".exe": b"MZ"}, here)
    assert sorted(path.name for path in here.iterdir()) == ["arrived.json", "arrived.keras"]
