"""mnist_core.training: config validation, progress events, repeatability, and stopping."""

import math
import threading

import numpy as np
import pytest

from mnist_core.training import (
    BATCHES_PER_CALL,
    LONG_EPOCH_STEPS,
    PRESETS,
    BatchEvent,
    ConfigError,
    EpochEvent,
    TrainConfig,
    batches_per_call,
    split_data,
    train,
    with_overrides,
)


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("architecture", "resnet", "architecture"),
        ("epochs", 0, "epochs"),
        ("epochs", 2.5, "epochs"),
        ("epochs", True, "epochs"),
        ("batch_size", 0, "batch size"),
        ("optimizer", "foo", "optimizer"),
        ("learning_rate", 0, "learning rate"),
        ("learning_rate", float("nan"), "learning rate"),
        ("learning_rate", float("inf"), "learning rate"),
        ("train_size", 5, "training subset"),
        ("validation", "x", "validation"),
        ("validation_split", 0.9, "validation split"),
        ("schedule", "x", "schedule"),
        ("augment", "no", "augment"),
        ("seed", -1, "seed"),
        ("precision", "float16", "precision"),
    ],
)
def test_config_rejects_each_bad_field_by_name(field, value, named):
    with pytest.raises(ConfigError) as raised:
        TrainConfig(**{field: value})
    message = str(raised.value)
    assert message.startswith(named)
    assert repr(value) in message  # says what it got


FIELDS = list(TrainConfig.__dataclass_fields__)
WRONG_TYPES = [["cnn"], {"cnn": 1}, {"cnn"}, None, b"cnn", 3.5, True, object()]


@pytest.mark.parametrize("value", WRONG_TYPES, ids=lambda value: type(value).__name__)
@pytest.mark.parametrize("field", FIELDS)
def test_config_answers_unhashable_and_wrongly_typed_values_with_a_config_error(field, value):
    """A settings file or a tampered request can hold anything; before, an unhashable architecture raised TypeError."""
    if field == "augment" and value is True:
        return  # a valid value there
    with pytest.raises(ConfigError) as raised:
        TrainConfig(**{field: value})
    assert str(raised.value).startswith(field.replace("_", " ").replace("train size", "training subset"))


@pytest.mark.parametrize("values", [None, [], "cnn", 3, [("epochs", 3)]], ids=repr)
def test_a_saved_config_that_is_not_a_mapping_is_a_config_error(values):
    with pytest.raises(ConfigError, match="a training config is a mapping of settings"):
        TrainConfig.from_dict(values)


def test_a_saved_config_with_unhashable_values_is_a_config_error():
    with pytest.raises(ConfigError, match="architecture"):
        TrainConfig.from_dict({**PRESETS["fast"].to_dict(), "architecture": {"name": "cnn"}})


def test_presets_and_overrides_are_valid():
    for preset in PRESETS.values():
        preset.validate()
    changed = with_overrides(PRESETS["fast"], epochs=1, optimizer=None)
    assert changed.epochs == 1 and changed.optimizer == PRESETS["fast"].optimizer
    with pytest.raises(ConfigError):
        with_overrides(PRESETS["fast"], epochs=0)
    assert TrainConfig.from_dict({**PRESETS["strong"].to_dict(), "unknown": 1}) == PRESETS["strong"]


def test_precision_defaults_to_what_the_cpu_does_best_and_old_configs_read_as_float32():
    from mnist_core.hardware import default_precision

    assert TrainConfig().precision == default_precision()
    assert PRESETS["fast"].precision == default_precision()
    # The seed's script, and the presets the shipped models were trained with, stay float32.
    assert {PRESETS[name].precision for name in ("seed", "shipped-cnn", "strong")} == {"float32"}
    saved_before_precision = {key: value for key, value in PRESETS["fast"].to_dict().items() if key != "precision"}
    assert TrainConfig.from_dict(saved_before_precision).precision == "float32"
    assert TrainConfig.from_dict(PRESETS["fast"].to_dict()) == PRESETS["fast"]


def test_bfloat16_training_learns_and_returns_a_float32_model(small_mnist):
    from mnist_core.evaluation import evaluate
    from mnist_core.keras_inference import KerasClassifier

    config = TrainConfig(architecture="cnn", epochs=1, batch_size=32, train_size=1000, precision="bfloat16")
    (_, _), (x_val, y_val) = split_data(config, small_mnist)
    result = train(config, mnist=small_mnist)
    assert {layer.dtype_policy.name for layer in result.model.layers} == {"float32"}
    assert {variable.dtype for variable in result.model.weights} == {"float32"}
    (epoch,) = result.history
    assert 0.5 < epoch.val_accuracy <= 1.0
    # The float32 copy scores what the bfloat16 model scored during validation, to bfloat16's rounding.
    report = evaluate(KerasClassifier(result.model), x_val, y_val)
    assert abs(report.accuracy - epoch.val_accuracy) <= 0.02


def test_split_data_holds_out_a_split_and_keeps_uint8_pixels(small_mnist):
    config = TrainConfig(train_size=1000, validation="split", validation_split=0.2)
    (x_train, y_train), (x_val, y_val) = split_data(config, small_mnist)
    assert x_train.shape == (800, 28, 28) and x_val.shape == (200, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int32  # scaled per batch in the tf.data pipeline
    (_, y_train), (_, y_val) = split_data(with_overrides(config, validation="test"), small_mnist)
    assert len(y_train) == 1000 and len(y_val) == 500


def test_one_epoch_learns_and_streams_consistent_events(small_mnist):
    config = TrainConfig(architecture="cnn", epochs=1, batch_size=32, train_size=1000)
    events = []
    result = train(config, on_event=events.append, mnist=small_mnist)

    batches = [event for event in events if isinstance(event, BatchEvent)]
    epochs = [event for event in events if isinstance(event, EpochEvent)]
    steps = math.ceil(1000 / 32)
    assert [event.step for event in batches] == list(range(1, steps + 1))
    assert all(event.epoch == 1 and event.epochs == 1 and event.steps == steps for event in batches)
    elapsed = [event.elapsed_seconds for event in batches]
    assert elapsed == sorted(elapsed)
    etas = [event.eta_seconds for event in batches]
    assert etas[0] > 0 and etas[-1] == 0 and all(eta >= 0 for eta in etas)
    assert all(event.images_per_second > 0 for event in batches[1:])
    assert events[-1] is epochs[-1]  # the epoch summary comes after its batches

    (epoch,) = epochs
    assert epoch.epoch == 1 and epoch.complete
    assert epoch.val_loss is not None and 0.5 < epoch.val_accuracy <= 1.0
    assert math.isfinite(epoch.loss) and 0 <= epoch.accuracy <= 1
    assert batches[0].loss > epoch.loss  # it learned
    assert result.history == epochs and result.batches_trained == steps
    assert not result.stopped and result.seconds > 0


def test_a_long_epoch_runs_several_batches_a_call_and_counts_each_once(small_mnist):
    # 117 batches an epoch: 8 a call into TensorFlow (BATCHES_PER_CALL), the last call only 5, which Keras still
    # numbers as a whole call.
    config = TrainConfig(architecture="mlp", epochs=2, batch_size=16, train_size=1870)
    steps = math.ceil(1870 / 16)
    assert batches_per_call(steps) == BATCHES_PER_CALL > 1
    events = []
    result = train(config, on_event=events.append, mnist=small_mnist)
    for epoch in (1, 2):
        steps_seen = [event.step for event in events if isinstance(event, BatchEvent) and event.epoch == epoch]
        assert steps_seen == [*range(BATCHES_PER_CALL, steps, BATCHES_PER_CALL), steps]
    assert result.batches_trained == 2 * steps and all(epoch.complete for epoch in result.history)
    assert batches_per_call(LONG_EPOCH_STEPS - 1) == 1  # short runs (the tests above) report every batch


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_same_config_and_seed_give_the_same_curves(small_mnist, precision):
    config = TrainConfig(architecture="cnn", epochs=2, batch_size=64, train_size=300, seed=7, precision=precision)

    def curves():
        events = []
        result = train(config, on_event=events.append, mnist=small_mnist)
        batch_losses = [event.loss for event in events if isinstance(event, BatchEvent)]
        epoch_metrics = [(e.epoch, e.loss, e.accuracy, e.val_loss, e.val_accuracy) for e in result.history]
        return batch_losses, epoch_metrics

    first, second = curves(), curves()
    assert [metrics[0] for metrics in first[1]] == [1, 2]
    assert first == second


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_kept_model_restarted_for_the_next_job_trains_as_a_new_model_would(small_mnist, precision, monkeypatch):
    """train(reuse=True) keeps the model it compiled (its steps traced) for the next such call with the same compiled
    settings, which restarts it from the seed's new weights and the optimizer's first state: the same curves as a
    model built for that call. A constant learning rate (an optimizer variable) and dropout (a seed state) included."""
    from mnist_core import training

    monkeypatch.setattr(training, "_ready", [])  # what other tests kept stays out of this one
    config = TrainConfig(architecture="cnn", epochs=2, batch_size=64, train_size=300, seed=7, precision=precision,
                         schedule="constant")

    def curves(config, **options):
        events = []
        result = train(config, on_event=events.append, mnist=small_mnist, **options)
        return ([event.loss for event in events if isinstance(event, BatchEvent)],
                [(e.epoch, e.loss, e.accuracy, e.val_loss, e.val_accuracy) for e in result.history])

    new = curves(config)
    assert training._ready == []  # without reuse nothing is kept
    assert curves(config, reuse=True) == new
    [kept] = training._ready
    assert curves(config, reuse=True) == new  # the kept model, restarted
    assert training._ready == [kept]
    other_seed = with_overrides(config, seed=8)  # not a compiled setting: the same model, other starting weights
    assert curves(other_seed, reuse=True) == curves(other_seed)
    assert training._ready == [kept]
    faster = with_overrides(config, learning_rate=0.01)  # compiled into the optimizer: a model of its own
    assert curves(faster, reuse=True) == curves(faster)
    assert [ready.model for ready in training._ready] != [kept.model]


def test_a_warm_up_trains_a_few_images_of_a_model_compiled_for_the_whole_config(small_mnist, monkeypatch):
    from mnist_core import training

    monkeypatch.setattr(training, "_ready", [])
    config = TrainConfig(architecture="quick", epochs=2, batch_size=16, train_size=2000, seed=1, precision="bfloat16")
    result = train(config, mnist=small_mnist, reuse=True, images=64)
    assert result.batches_trained == 4 and len(result.history) == 1 and not result.stopped  # 64 images, one epoch
    [kept] = training._ready
    assert kept.settings == training._compiled_settings(config, 125)  # 2,000 images: 125 an epoch
    assert kept.model.steps_per_execution == BATCHES_PER_CALL
    # What the real job would trace otherwise: the training step, Keras' validation (epoch 1 of 2) and the float32
    # copy's graph (the last epoch's validation).
    assert kept.model.train_function is not None and kept.model.test_function is not None
    assert kept.twin is not None and kept.twin.classifier._compiled is not None


def _train_and_stop_after(batch: int, small_mnist, config: TrainConfig):
    """Train, asking to stop from another thread once `batch` batches ran; return events, result, stop index."""
    stop = threading.Event()
    events = []
    stop_seen_at = []

    def on_event(event):
        if stop.is_set() and not stop_seen_at:
            stop_seen_at.append(len(events))
        events.append(event)
        if isinstance(event, BatchEvent) and event.step == batch:
            threading.Thread(target=stop.set).start()  # as a page's Stop button does, from its own thread

    result = train(config, on_event=on_event, stop_event=stop, mnist=small_mnist)
    return events, result, stop_seen_at[0] if stop_seen_at else len(events)


@pytest.mark.parametrize("train_size", [1000, 2000], ids=["a batch a call", "8 batches a call"])
def test_stop_from_another_thread_ends_within_a_few_batches(small_mnist, train_size):
    config = TrainConfig(architecture="mlp", epochs=3, batch_size=16, train_size=train_size)
    per_call = batches_per_call(math.ceil(train_size / 16))
    asked_at = 3 * per_call
    events, result, stop_index = _train_and_stop_after(asked_at, small_mnist, config)
    batches_after_stop = [event for event in events[stop_index:] if isinstance(event, BatchEvent)]
    assert len(batches_after_stop) <= 3
    assert result.stopped
    assert result.batches_trained <= asked_at + 3 * per_call
    # The cut-short epoch is reported as incomplete, without a validation figure from a cut-short pass.
    assert len(result.history) == 1 and not result.history[0].complete
    assert result.history[0].val_accuracy is None


def test_stop_before_start_trains_nothing(small_mnist):
    stop = threading.Event()
    stop.set()
    events = []
    config = TrainConfig(architecture="mlp", epochs=2, batch_size=32, train_size=500)
    result = train(config, on_event=events.append, stop_event=stop, mnist=small_mnist)
    assert result.stopped
    assert result.batches_trained == 0
    assert result.history == [] and events == []


def test_validation_split_and_sgd(small_mnist):
    config = TrainConfig(
        architecture="mlp", epochs=1, batch_size=32, train_size=600, validation="split", optimizer="sgd",
        learning_rate=0.05,
    )
    result = train(config, mnist=small_mnist)
    (epoch,) = result.history
    assert epoch.val_loss is not None and 0.3 < epoch.val_accuracy <= 1.0
    assert result.batches_trained == math.ceil(540 / 32)


def test_augmentation_and_cosine_schedule_run(small_mnist):
    config = TrainConfig(
        architecture="lenet5", epochs=2, batch_size=64, train_size=500, augment=True, schedule="cosine",
        optimizer="rmsprop", precision="float32",  # float32: the result is the trained model, optimizer and all
    )
    result = train(config, mnist=small_mnist)
    assert [epoch.epoch for epoch in result.history] == [1, 2]
    assert all(math.isfinite(epoch.loss) and epoch.val_accuracy is not None for epoch in result.history)
    # The cosine schedule decays the learning rate to zero by the end of the run.
    assert float(result.model.optimizer.learning_rate) < 1e-5
    assert result.history[-1].val_accuracy > 0.2


# --- the recipe for drawn digits (issue 10) ----------------------------------------------------------------------


def test_onecycle_schedule_warms_up_then_anneals():
    from mnist_core.training import WARMUP_SHARE, make_optimizer

    config = TrainConfig(epochs=2, learning_rate=0.01, schedule="onecycle")
    rate = make_optimizer(config, steps_per_epoch=50)._learning_rate  # the schedule itself: step -> rate
    peak_step = round(100 * WARMUP_SHARE)
    assert float(rate(0)) == pytest.approx(0.001)
    assert float(rate(peak_step)) == pytest.approx(0.01)
    assert float(rate(peak_step // 2)) < 0.01
    assert float(rate(100)) < 1e-6


def _flagged_one(flag: bool) -> np.ndarray:
    """A 28x28 uint8 '1': a stem down column 15, and (if `flag`) a stroke from its top down to the left."""
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 14:17] = 255
    if flag:
        for step in range(7):
            image[4 + step, 13 - step : 15 - step] = 255
    return image


def test_flagged_ones_are_found_and_repeated():
    from mnist_core.training import FLAGGED_ONE_REPEATS, flagged_ones, with_flagged_ones_repeated

    seven = np.zeros((28, 28), np.uint8)
    seven[4:7, 6:22] = 255
    for row in range(7, 24):
        seven[row, 20 - (row - 7) // 2 : 23 - (row - 7) // 2] = 255
    images = np.stack([_flagged_one(True), _flagged_one(False), seven])
    labels = np.array([1, 1, 7])
    assert flagged_ones(images, labels).tolist() == [0]  # a 7 is never a flagged 1, whatever its shape
    more_images, more_labels = with_flagged_ones_repeated(images, labels)
    assert len(more_labels) == 3 + FLAGGED_ONE_REPEATS
    assert (more_labels[3:] == 1).all() and (more_images[3:] == images[0]).all()


def test_mnist_has_a_few_flagged_ones(mnist):
    from mnist_core.training import flagged_ones

    (x_train, y_train), _ = mnist
    found = flagged_ones(x_train, y_train)
    assert 100 < len(found) < 400 and (y_train[found] == 1).all()


def test_distortion_keeps_digits_in_the_frame_and_turns_sevens_one_way_only(mnist):
    import tensorflow as tf

    from mnist_core.training import AUGMENTATION, distort

    (x_train, y_train), _ = mnist
    images = tf.constant(x_train[:256].astype(np.float32) / 255)
    distorted = distort(images, tf.constant(y_train[:256].astype(np.int32))).numpy()
    assert distorted.shape == (256, 28, 28) and 0.0 <= distorted.min() and distorted.max() <= 1.0 + 1e-5
    assert (distorted.reshape(256, -1).max(axis=1) > 0.5).all()  # no digit lost
    assert not np.allclose(distorted, images.numpy(), atol=0.05)

    # A 7 alone, turned by the largest angle and nothing else: only clockwise (its bar's right end goes down).
    turn_only = {**AUGMENTATION, **{key: 0.0 for key in ("shear", "zoom", "aspect", "shift_pixels", "elastic_alpha")},
                 "rotation_degrees": 30.0, "pen": (0.0, 0.0), "flag_stretch": 1.0}
    bar = np.zeros((1, 28, 28), np.float32)
    bar[0, 13:15, 4:24] = 1.0
    for label, may_go_up in ((7, False), (3, True)):
        right_end_rows = []
        for _ in range(40):
            turned = distort(tf.constant(bar), tf.constant([label]), turn_only).numpy()[0]
            right_end_rows.append(np.average(np.arange(28), weights=turned[:, 19:24].sum(axis=1) + 1e-9))
        assert (min(right_end_rows) < 13.5) == may_go_up, (label, min(right_end_rows))
    assert AUGMENTATION["rotation_degrees"] > 0
