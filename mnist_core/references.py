"""Reference accuracies the charts draw as dashed lines: what the seeds reported, and the shipped models.

The seeds' figures are as their scripts reported them (docs: shared/docs/seeds-digest.md): seed 000's CNN reached
99.22% test accuracy by its fourth epoch, seed 004's MLP 97.7%. The shipped models' come from their metadata.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mnist_core.i18n import N_, gettext as _


@dataclass(frozen=True)
class Reference:
    """One dashed line: a label and a test accuracy (a fraction, 0.9922 for 99.22%); plots translates the label."""

    label: str
    accuracy: float


SEED_REFERENCES = (
    Reference(N_("seed 000's CNN (reported)"), 0.9922),
    Reference(N_("seed 004's MLP (reported)"), 0.977),
)


def reference_accuracies(entries: Iterable = ()) -> list[Reference]:
    """The seeds' figures and each working shipped model's test accuracy, highest first.

    `entries` are store.ModelEntry values (list_models); models that are not shipped, broken or without an
    accuracy are left out.
    """
    shipped = [
        Reference(_("shipped {name}").format(name=entry.name), float(entry.info.test_accuracy))
        for entry in entries
        if not entry.broken and entry.shipped and entry.info.test_accuracy is not None
    ]
    return sorted([*SEED_REFERENCES, *shipped], key=lambda reference: reference.accuracy, reverse=True)
