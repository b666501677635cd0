"""mnist_core.panel: the 20 test digits a training watches, and what the trainer reports about them each epoch."""

import numpy as np
import pytest

from mnist_core.panel import EASY, HARDER, PANEL_INDICES, PanelEvent, panel_digits, panel_event
from mnist_core.training import BatchEvent, EpochEvent, TrainConfig, train


def test_the_panel_is_each_digit_twice_easy_ones_on_top(mnist):
    (_, _), (x_test, y_test) = mnist
    assert len(set(PANEL_INDICES)) == len(PANEL_INDICES) == 20
    assert [int(y_test[index]) for index in EASY] == list(range(10))
    assert [int(y_test[index]) for index in HARDER] == list(range(10))
    images, labels = panel_digits()
    np.testing.assert_array_equal(images, x_test[list(PANEL_INDICES)])
    np.testing.assert_array_equal(labels, y_test[list(PANEL_INDICES)])


def test_the_top_row_is_easy_for_a_trained_model_and_the_bottom_row_is_not(mnist):
    """What the panel was chosen for (panel.py): the shipped strong-cnn reads every easy digit with near certainty,
    and is on average far less sure of the harder ones."""
    from mnist_core.inference import Classifier

    images, labels = panel_digits()
    probabilities = Classifier.load("strong-cnn").predict_proba(images)
    sure_of_truth = probabilities[np.arange(20), labels]
    assert (probabilities[:10].argmax(axis=1) == labels[:10]).all() and sure_of_truth[:10].min() > 0.99
    assert sure_of_truth[10:].mean() < sure_of_truth[:10].mean() - 0.1


def test_panel_event_reads_probabilities():
    probabilities = np.full((20, 10), 0.05)
    probabilities[:, 3] = 0.55
    probabilities[0] = np.eye(10)[7]
    event = panel_event(2, probabilities)
    assert event.epoch == 2 and event.predictions[0] == 7 and event.predictions[1:] == (3,) * 19
    assert event.confidences[0] == 1.0 and event.confidences[1] == pytest.approx(0.55)
    assert event.right([7] + [3] * 19) == 20 and event.right([0] * 20) == 0


def test_training_reports_the_watched_digits_before_the_first_batch_and_after_each_epoch(small_mnist):
    images, labels = panel_digits()
    events = []
    config = TrainConfig(architecture="mlp", epochs=2, batch_size=32, train_size=1000, learning_rate=3e-3)
    train(config, on_event=events.append, mnist=small_mnist, watch=images.astype(np.float32) / 255.0)
    panels = [event for event in events if isinstance(event, PanelEvent)]
    assert [panel.epoch for panel in panels] == [0, 1, 2]
    assert all(len(panel.predictions) == 20 and all(0 < c <= 1 for c in panel.confidences) for panel in panels)
    # Before any batch it reports first; each epoch's panel follows that epoch's summary.
    kinds = [type(event).__name__ for event in events if not isinstance(event, BatchEvent)]
    assert kinds == ["PanelEvent", "EpochEvent", "PanelEvent", "EpochEvent", "PanelEvent"]
    assert events.index(panels[0]) < min(events.index(e) for e in events if isinstance(e, BatchEvent))
    # It learned: after two epochs on 1,000 images the easy row reads better than a fresh network's guesses.
    assert panels[-1].right(labels[:10]) > panels[0].right(labels[:10])
    assert panels[-1].confidences != panels[0].confidences


def test_without_watch_there_are_no_panel_events(small_mnist):
    events = []
    train(TrainConfig(architecture="mlp", epochs=1, batch_size=64, train_size=200), on_event=events.append,
          mnist=small_mnist)
    assert not [event for event in events if isinstance(event, PanelEvent)]
    assert any(isinstance(event, EpochEvent) for event in events)
