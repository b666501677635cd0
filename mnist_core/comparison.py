"""Every model on one drawing: each model's answer, its confidence and its second guess, side by side.

The web server computes these with LiteRT (inference.Classifier: a fraction of a millisecond per model), so a page
can ask all the stored models about each stroke. Which models, when the store holds more than a page can show:
`models_to_compare`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mnist_core.i18n import gettext as _, ngettext

MAX_MODELS = 12  # rows of the Draw page's table: the answers stay one glance, and each model's interpreter is kept


@dataclass(frozen=True)
class ModelAnswer:
    """What one model says about one image."""

    name: str
    digit: int
    confidence: float  # its probability, 0-1
    runner_up: int
    runner_up_confidence: float


def answer_of(name: str, probabilities: np.ndarray) -> ModelAnswer:
    """The answer and the second guess in one model's (10,) probabilities."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    first, second = np.argsort(probabilities)[::-1][:2]
    return ModelAnswer(name, int(first), float(probabilities[first]), int(second), float(probabilities[second]))


def answers(classifiers: Mapping[str, object], image: np.ndarray) -> list[ModelAnswer]:
    """Each classifier's answer for one (28, 28) image, in the mapping's order."""
    return [answer_of(name, classifier.predict_proba(image)[0]) for name, classifier in classifiers.items()]


def models_to_compare(entries: Sequence, visitor=None, active: str | None = None,
                      limit: int = MAX_MODELS) -> tuple[list[str], int]:
    """(names, left out): the working models to ask, at most `limit`: the active model, the shipped ones, the
    visitor's own (newest first), then everybody else's (newest first); and how many working models were left out.

    `entries` are store.ModelEntry values; `visitor` a visitors.Visitor (None: nobody's models come first).
    """
    working = [entry for entry in entries if not entry.broken]
    newest_first = sorted(working, key=lambda entry: entry.info.created or "", reverse=True)

    def rank(entry) -> int:
        if entry.name == active:
            return 0
        if entry.shipped:
            return 1
        if visitor is not None and entry.info.owner_id and visitor.owns(entry.info.owner_id):
            return 2
        return 3

    ordered = sorted(newest_first, key=rank)  # stable: newest first within each rank
    chosen = [entry.name for entry in ordered[:limit]]
    return chosen, len(working) - len(chosen)


def agreement(model_answers: Sequence[ModelAnswer]) -> str:
    """One line on how the models agree: "All 3 models say 7." or "The models disagree: 2 say 7, 1 says 1."."""
    if not model_answers:
        return _("No model to ask.")
    counts = Counter(answer.digit for answer in model_answers).most_common()
    if len(counts) == 1:
        digit, count = counts[0]
        return (_("All {count} models say {digit}.").format(count=count, digit=digit) if count > 1
                else _("The only model says {digit}.").format(digit=digit))
    parts = [ngettext("{count} says {digit}", "{count} say {digit}", count).format(count=count, digit=digit)
             for digit, count in counts]
    return _("The models disagree: {answers}.").format(answers=_(", ").join(parts))
