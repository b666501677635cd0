"""mnist_core.conversion: a model without a .tflite gets one from a separate process, once; failures are clear."""

import shutil
import zipfile

import numpy as np
import pytest

import mnist_core.conversion as conversion
from mnist_core.architectures import build_model
from mnist_core.inference import Classifier
from mnist_core.keras_inference import KerasClassifier
from mnist_core.store import BrokenModelError, ModelInfo, ModelNotFound, litert_path, load_model, save_model


@pytest.fixture
def worker_runs(monkeypatch):
    """The conversion workers started during a test (each still really runs)."""
    runs = []
    real = conversion.run_conversion_worker

    def counted(name, models_dir, exports=False):
        runs.append((name, exports))
        return real(name, models_dir, exports=exports)

    monkeypatch.setattr(conversion, "run_conversion_worker", counted)
    return runs


def test_a_model_without_a_litert_file_is_converted_once_in_a_worker(tmp_path, worker_runs, test_images):
    images, _ = test_images
    saved_elsewhere = tmp_path / "elsewhere"
    save_model(build_model("mlp"), ModelInfo("older", "mlp", {}, 0.1, versions={"keras": "test"}), saved_elsewhere)
    store = tmp_path / "store"
    store.mkdir()
    for suffix in (".keras", ".json"):  # as a model saved before LiteRT was: no .tflite
        shutil.copy2(saved_elsewhere / f"older{suffix}", store / f"older{suffix}")

    path = conversion.ensure_litert_model("older", store)
    assert path == litert_path("older", store) and path.exists()
    assert worker_runs == [("older", False)]
    np.testing.assert_allclose(Classifier(path.read_bytes()).predict_proba(images[:20]),
                               KerasClassifier(load_model("older", store)).predict_proba(images[:20]), atol=1e-5)
    assert conversion.ensure_litert_model("older", store) == path
    assert Classifier.load("older", store).predict_proba(images[0]).shape == (1, 10)
    assert worker_runs == [("older", False)]  # there now: no second worker


def test_a_model_that_cannot_be_loaded_is_a_clear_error_not_a_worker_per_page_run(tmp_path, worker_runs):
    store = tmp_path
    save_model(build_model("mlp"), ModelInfo("junk", "mlp", {}, 0.1, versions={"keras": "test"}), store)
    litert_path("junk", store).unlink()
    with zipfile.ZipFile(store / "junk.keras", "w") as archive:  # a zip, but no Keras model in it
        archive.writestr("hello.txt", "not a model")

    for _ in range(2):
        with pytest.raises(BrokenModelError) as raised:
            Classifier.load("junk", store)
        assert str(raised.value).startswith("The model 'junk' could not be loaded")
        # It came from the worker's stderr as template + values: each visitor reads it in their language.
        assert raised.value.args[0].render("zh_Hans").startswith("无法加载模型 'junk'")
    assert worker_runs == [("junk", False)]  # the same file fails the same way: asked once
    with zipfile.ZipFile(store / "junk.keras", "w") as archive:  # a new file: worth another try
        archive.writestr("hello.txt", "still not a model, but a different file")
    with pytest.raises(BrokenModelError):
        conversion.ensure_litert_model("junk", store)
    assert worker_runs == [("junk", False), ("junk", False)]
    assert not litert_path("junk", store).exists()


def test_a_missing_model_needs_no_worker(tmp_path, worker_runs):
    with pytest.raises(ModelNotFound):
        Classifier.load("ghost", tmp_path)
    assert worker_runs == []
