"""The command line, `python -m mnist_core <command>`, run as a person would."""

import json
import subprocess
import sys

import numpy as np
import pytest

from mnist_core.constants import PROJECT_ROOT

PYTHON = sys.executable  # the project venv's interpreter

TIMEOUT = 300


def run(args, env):
    return subprocess.run(
        [PYTHON, "-m", "mnist_core", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


@pytest.fixture(scope="module")
def trained_by_cli(tmp_path_factory):
    """One real CLI training run, shared by the tests that read its output or its model."""
    import os

    models_dir = tmp_path_factory.mktemp("cli-models")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MNIST_LAB_MODELS_DIR": str(models_dir / "unused")}
    args = ["train", "--arch", "mlp", "--epochs", "1", "--train-size", "300", "--batch-size", "32",
            "--precision", "bfloat16", "--name", "cli-test", "--models-dir", str(models_dir)]
    return run(args, env), models_dir, env


def test_train_prints_progress_and_saves(trained_by_cli):
    completed, models_dir, _ = trained_by_cli
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "epoch 1/1 done" in completed.stderr and "val_acc" in completed.stderr
    assert "saved 'cli-test'" in completed.stdout and "test accuracy" in completed.stdout
    recorded = json.loads((models_dir / "cli-test.json").read_text())
    assert recorded["command"].startswith("python -m mnist_core train ")
    assert "--arch mlp" in recorded["command"] and "--train-size 300" in recorded["command"]
    assert recorded["config"]["architecture"] == "mlp" and recorded["config"]["train_size"] == 300
    assert recorded["config"]["precision"] == "bfloat16" and "--precision bfloat16" in recorded["command"]
    assert len(recorded["history"]) == 1 and recorded["shipped"] is False
    assert 0.3 < recorded["test_accuracy"] <= 1  # 300 images, 10 batches: well above chance (0.1)
    assert (models_dir / "cli-test.keras").exists()
    assert not (models_dir / "unused").exists()  # --models-dir wins over the environment


def test_evaluate_prints_accuracy_and_confusion_matrix(trained_by_cli):
    _, models_dir, env = trained_by_cli
    completed = run(["evaluate", "cli-test", "--models-dir", str(models_dir)], env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    recorded = json.loads((models_dir / "cli-test.json").read_text())["test_accuracy"]
    assert f"test accuracy {recorded:.4f}" in completed.stdout  # the same figure as at save time
    assert f"recorded test accuracy {recorded:.4f}" in completed.stdout
    lines = completed.stdout.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("true\\pred"))
    rows = [[int(cell) for cell in line.split()[1:]] for line in lines[header + 1 : header + 11]]
    assert len(rows) == 10 and all(len(row) == 10 for row in rows)
    assert sum(map(sum, rows)) == 10_000
    assert [sum(row) for row in rows] == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_training_into_a_taken_name_is_refused_before_training(trained_by_cli):
    _, models_dir, env = trained_by_cli
    completed = run(
        ["train", "--arch", "mlp", "--epochs", "1", "--train-size", "300", "--name", "cli-test",
         "--models-dir", str(models_dir)],
        env,
    )
    assert completed.returncode == 2
    assert "already exists" in completed.stderr and "--overwrite" in completed.stderr
    assert "epoch" not in completed.stderr  # it did not train first and fail at the end


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--name", "../escape"], "not a valid model name"),
        (["--name", "ok", "--epochs", "0"], "epochs must be"),
        (["--name", "ok", "--train-size", "5"], "training subset"),
        (["--name", "ok", "--lr", "nan"], "learning rate"),
        (["--name", "ok", "--precision", "float16"], "invalid choice: 'float16'"),
    ],
)
def test_train_rejects_bad_arguments_clearly(extra, message, tmp_path, subprocess_env):
    completed = run(["train", "--arch", "mlp", "--models-dir", str(tmp_path), *extra], subprocess_env)
    assert completed.returncode == 2
    assert "error:" in completed.stderr and message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert list(tmp_path.iterdir()) == []


def test_evaluate_of_a_missing_model_says_so(tmp_path, subprocess_env):
    completed = run(["evaluate", "ghost", "--models-dir", str(tmp_path)], subprocess_env)
    assert completed.returncode == 1
    assert "no model named 'ghost'" in completed.stderr
    assert "Traceback" not in completed.stderr


def run_in(folder, args, env):
    """The CLI run from another folder (where export writes by default), the project importable from there."""
    return subprocess.run(
        [PYTHON, "-m", "mnist_core", *args], cwd=folder, env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True, text=True, timeout=TIMEOUT,
    )


def test_export_writes_the_file_asked_for_and_prints_its_path(trained_by_cli, tmp_path, test_images):
    from mnist_core.inference import Classifier

    _, models_dir, env = trained_by_cli
    images, _ = test_images
    store = ["--models-dir", str(models_dir)]
    completed = run_in(tmp_path, ["export", "cli-test", "--format", "keras", *store], env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "cli-test.keras"
    assert (tmp_path / "cli-test.keras").read_bytes() == (models_dir / "cli-test.keras").read_bytes()

    completed = run_in(tmp_path, ["export", "cli-test", "--format", "tflite", "--quantize", "int8", *store], env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "cli-test-int8.tflite"
    int8 = Classifier((tmp_path / "cli-test-int8.tflite").read_bytes())
    served = Classifier((models_dir / "cli-test.tflite").read_bytes())  # written by the training's save
    agreement = (int8.predict(images[:500]) == served.predict(images[:500])).mean()
    assert agreement >= 0.97  # an MLP trained on 300 images has many close calls; the real check is test_export.py

    target = tmp_path / "elsewhere.tflite"
    completed = run_in(tmp_path, ["export", "cli-test", "--format", "tflite", "--output", str(target), *store], env)
    assert completed.returncode == 0 and completed.stdout.strip() == str(target)
    np.testing.assert_allclose(Classifier(target.read_bytes()).predict_proba(images[:50]),
                               served.predict_proba(images[:50]), atol=1e-5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["ghost", "--format", "tflite"], "There is no model named 'ghost'"),
        (["../etc/passwd", "--format", "tflite"], "is not a valid model name"),
        (["cli-test", "--format", "onnx"], "argument --format: invalid choice: 'onnx'"),
        (["cli-test", "--format", "tflite", "--quantize", "int4"], "argument --quantize: invalid choice: 'int4'"),
        (["cli-test", "--format", "keras", "--quantize", "int8"], "--quantize applies to --format tflite only"),
        (["cli-test"], "the following arguments are required: --format"),
        (["cli-test", "--format", "keras", "--output", "no-such-folder/x.keras"], "does not exist"),
    ],
)
def test_export_refuses_bad_names_and_formats_clearly(args, message, trained_by_cli, tmp_path):
    _, models_dir, env = trained_by_cli
    completed = run_in(tmp_path, ["export", *args, "--models-dir", str(models_dir)], env)
    assert completed.returncode == 2, completed.stderr
    assert "error:" in completed.stderr and message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert list(tmp_path.iterdir()) == []


def test_export_keeps_an_existing_file_unless_told(trained_by_cli, tmp_path):
    _, models_dir, env = trained_by_cli
    (tmp_path / "cli-test.keras").write_bytes(b"my own work")
    completed = run_in(tmp_path, ["export", "cli-test", "--format", "keras", "--models-dir", str(models_dir)], env)
    assert completed.returncode == 2 and "already exists" in completed.stderr and "--overwrite" in completed.stderr
    assert (tmp_path / "cli-test.keras").read_bytes() == b"my own work"


def test_convert_gives_a_model_without_one_its_litert_file(trained_by_cli, tmp_path, test_images):
    import shutil

    from mnist_core.inference import Classifier
    from mnist_core.keras_inference import KerasClassifier
    from mnist_core.store import load_model

    _, models_dir, env = trained_by_cli
    images, _ = test_images
    for suffix in (".keras", ".json"):  # a copy as an older save left it: no .tflite
        shutil.copy2(models_dir / f"cli-test{suffix}", tmp_path / f"older{suffix}")
    completed = run(["convert", "older", "--models-dir", str(tmp_path)], env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == str(tmp_path / "older.tflite")
    np.testing.assert_allclose(Classifier((tmp_path / "older.tflite").read_bytes()).predict_proba(images[:50]),
                               KerasClassifier(load_model("older", tmp_path)).predict_proba(images[:50]), atol=1e-5)

    missing = run(["convert", "ghost", "--models-dir", str(tmp_path)], env)
    assert missing.returncode == 2 and "There is no model named 'ghost'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_help_lists_every_command_and_each_command_has_its_own(subprocess_env):
    overview = run(["--help"], subprocess_env)
    assert overview.returncode == 0 and "train" in overview.stdout and "evaluate" in overview.stdout
    assert "export" in overview.stdout and "convert" in overview.stdout
    for command, option in [("train", "--preset"), ("evaluate", "--models-dir"), ("export", "--quantize"),
                            ("convert", "--exports")]:
        completed = run([command, "--help"], subprocess_env)
        assert completed.returncode == 0 and option in completed.stdout, command


def test_no_command_or_an_unknown_one_is_a_usage_error(subprocess_env):
    for args in ([], ["fly"]):
        completed = run(args, subprocess_env)
        assert completed.returncode == 2 and "usage: python -m mnist_core" in completed.stderr
        assert "Traceback" not in completed.stderr


def test_the_old_module_entries_are_gone():
    from mnist_core.constants import PROJECT_ROOT

    assert not (PROJECT_ROOT / "mnist_core" / "train.py").exists()
    assert not (PROJECT_ROOT / "mnist_core" / "evaluate.py").exists()


def test_architectures_lists_every_architecture_with_its_parameters(subprocess_env):
    from mnist_core.architectures import ARCHITECTURES, recorded_summary

    completed = run(["architectures"], subprocess_env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    for name in ARCHITECTURES:
        assert any(line.split()[:2] == [name, f"{recorded_summary(name).parameters:,}"]
                   for line in completed.stdout.splitlines()), name
