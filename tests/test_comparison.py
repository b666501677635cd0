"""mnist_core.comparison: every model's answer for one drawing, which models a page asks, and how they agree."""

import numpy as np
import pytest

from mnist_core.comparison import ModelAnswer, agreement, answer_of, answers, models_to_compare
from mnist_core.store import ModelEntry, ModelInfo
from mnist_core.visitors import Visitor

ME = Visitor(id="a" * 32, name="visitor-me")


def entry(name: str, created: str, shipped: bool = False, owner_id: str = "", broken: bool = False) -> ModelEntry:
    info = ModelInfo(name=name, architecture="cnn", config={}, test_accuracy=0.99, created=created, shipped=shipped,
                     owner_id=owner_id)
    return ModelEntry(name, None if broken else info, "damaged" if broken else None)


def test_answer_of_probabilities_gives_the_digit_and_the_second_guess():
    probabilities = np.array([0.01, 0.6, 0.02, 0.02, 0.3, 0.01, 0.01, 0.01, 0.01, 0.01])
    assert answer_of("m", probabilities) == ModelAnswer("m", 1, pytest.approx(0.6), 4, pytest.approx(0.3))


def test_answers_of_the_shipped_models_for_a_test_digit_match_each_classifier(test_images):
    from mnist_core.inference import Classifier

    images, labels = test_images
    classifiers = {name: Classifier.load(name) for name in ("cnn", "strong-cnn")}
    found = answers(classifiers, images[0])
    assert [answer.name for answer in found] == ["cnn", "strong-cnn"]
    for answer in found:
        probabilities = classifiers[answer.name].predict_proba(images[0])[0]
        assert answer.digit == labels[0] == probabilities.argmax()
        assert answer.confidence == pytest.approx(float(probabilities.max()))
        assert answer.runner_up != answer.digit and answer.runner_up_confidence <= answer.confidence


def test_models_to_compare_puts_the_active_then_shipped_then_yours_then_the_newest():
    entries = [
        entry("old-other", "2026-11-01"), entry("new-other", "2026-11-29"), entry("cnn", "2026-11-20", shipped=True),
        entry("mine-old", "2026-11-02", owner_id=ME.id), entry("mine-new", "2026-11-28", owner_id=ME.id),
        entry("broken", "2026-11-30", broken=True), entry("active", "2026-10-01"),
    ]
    names, left_out = models_to_compare(entries, ME, active="active", limit=10)
    assert names == ["active", "cnn", "mine-new", "mine-old", "new-other", "old-other"] and left_out == 0
    names, left_out = models_to_compare(entries, ME, active="active", limit=3)
    assert names == ["active", "cnn", "mine-new"] and left_out == 3  # the broken one is never counted
    assert models_to_compare(entries, None, limit=2) == (["cnn", "new-other"], 4)


def test_agreement_says_whether_the_models_agree():
    assert agreement([]) == "No model to ask."
    assert agreement([ModelAnswer("a", 7, 0.9, 1, 0.1)]) == "The only model says 7."
    assert agreement([ModelAnswer("a", 7, 0.9, 1, 0.1), ModelAnswer("b", 7, 0.8, 1, 0.1)]) == "All 2 models say 7."
    mixed = [ModelAnswer("a", 7, 0.9, 1, 0.1), ModelAnswer("b", 1, 0.8, 7, 0.1), ModelAnswer("c", 7, 0.6, 1, 0.3)]
    assert agreement(mixed) == "The models disagree: 2 say 7, 1 says 1."
