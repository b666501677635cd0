"""mnist_core.limits: defaults, secrets, the environment (which wins), and a clear error for a bad value."""

import pytest

from mnist_core.limits import Limits, LimitsError


def test_defaults_suit_a_classroom_on_one_small_container():
    limits = Limits.from_sources({}, {})
    assert limits == Limits()
    assert (limits.max_epochs, limits.max_train_size, limits.max_jobs_per_visitor) == (50, 60_000, 1)
    assert limits.training_slots == 1 and limits.worker_memory_mb == 0


def test_secrets_set_limits_and_the_environment_wins():
    secrets = {"limits": {"max_queue": 12, "trainings_per_hour": "4", "worker_idle_s": 30}}
    environ = {"MNIST_LAB_MAX_QUEUE": "40", "MNIST_LAB_STORE_MAX_MB": "250", "UNRELATED": "x"}
    limits = Limits.from_sources(secrets, environ)
    assert limits.max_queue == 40 and limits.trainings_per_hour == 4 and limits.store_max_mb == 250
    assert limits.worker_idle_s == 30.0 and isinstance(limits.worker_idle_s, float)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MNIST_LAB_MAX_EPOCHS": "100"}, "max_epochs must be between 1 and 50"),
        ({"MNIST_LAB_MAX_QUEUE": "lots"}, "max_queue must be a whole number"),
        ({"MNIST_LAB_MAX_QUEUE": "2.5"}, "max_queue must be a whole number"),
        ({"MNIST_LAB_WORKER_IDLE_S": "nan"}, "worker_idle_s must be between"),
        ({"MNIST_LAB_TRAINING_SLOTS": "0"}, "training_slots must be between 1 and 64"),
        ({"MNIST_LAB_MAX_TRAIN_SIZE": "-5"}, "max_train_size must be between 100 and 60000"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_setting(environ, message):
    with pytest.raises(LimitsError, match=message):
        Limits.from_sources({}, environ)


def test_a_bad_secret_is_refused_too():
    with pytest.raises(LimitsError, match="models_per_visitor must be a whole number"):
        Limits.from_sources({"limits": {"models_per_visitor": True}}, {})
