"""The command line, `python -m mnist_core <command>`, run as a person would."""

import json
import subprocess
import sys

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


def test_help_lists_every_command_and_each_command_has_its_own(subprocess_env):
    overview = run(["--help"], subprocess_env)
    assert overview.returncode == 0 and "train" in overview.stdout and "evaluate" in overview.stdout
    for command, option in [("train", "--preset"), ("evaluate", "--models-dir")]:
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
