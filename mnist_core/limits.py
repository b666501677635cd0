"""What a visitor may ask of this server: one Limits value, read once from secrets and the environment.

Each limit has a default for a small shared container (a classroom on Streamlit Community Cloud). A deployment
changes one with a secret in `.streamlit/secrets.toml` (a `[limits]` table, keys as below) or an environment
variable `MNIST_LAB_<KEY in capitals>` (the environment wins); README's "Limits" section lists them. A value that
is not a number in its range is a LimitsError naming it, so a typo is found at the first page view, not ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from mnist_core.training import FULL_TRAIN_SIZE, MAX_EPOCHS, MIN_TRAIN_SIZE

ENV_PREFIX = "MNIST_LAB_"


class LimitsError(ValueError):
    """A configured limit is not a number in its range; the message names the setting."""


@dataclass(frozen=True)
class Limits:
    max_epochs: int = MAX_EPOCHS  # epochs one training may ask for
    max_train_size: int = FULL_TRAIN_SIZE  # training images one training may use
    max_queue: int = 30  # trainings waiting at once, all visitors together
    max_jobs_per_visitor: int = 1  # trainings one visitor may have waiting or running at once
    trainings_per_hour: int = 10  # trainings one visitor may start in an hour
    models_per_visitor: int = 10  # models one visitor may keep in the store
    store_max_models: int = 300  # models in the store, all visitors together (shipped ones included)
    store_max_mb: int = 1000  # megabytes the store may hold
    worker_idle_s: float = 180.0  # seconds an idle training worker waits for work before it exits
    training_slots: int = 1  # trainings that run at once (each in its own worker process)
    worker_memory_mb: int = 0  # address-space limit of a training worker (0: none); a job past it fails alone
    explainer_idle_s: float = 120.0  # seconds the idle explainer process (saliency, augmentation) waits, then exits
    explain_wait_s: float = 60.0  # seconds the Draw page waits for a saliency map, then offers to ask again

    # (lowest, highest) allowed for each number
    BOUNDS = {
        "max_epochs": (1, MAX_EPOCHS),
        "max_train_size": (MIN_TRAIN_SIZE, FULL_TRAIN_SIZE),
        "max_queue": (0, 10_000),
        "max_jobs_per_visitor": (1, 100),
        "trainings_per_hour": (0, 100_000),
        "models_per_visitor": (0, 100_000),
        "store_max_models": (1, 1_000_000),
        "store_max_mb": (1, 1_000_000),
        "worker_idle_s": (0.0, 86_400.0),
        "training_slots": (1, 64),
        "worker_memory_mb": (0, 1_000_000),
        "explainer_idle_s": (0.0, 86_400.0),
        "explain_wait_s": (0.0, 600.0),
    }

    @classmethod
    def from_sources(cls, secrets: Mapping | None = None, environ: Mapping | None = None) -> Limits:
        """Defaults, then the secrets' `[limits]` table, then the environment."""
        values = {}
        table = secrets.get("limits", {}) if secrets is not None else {}
        for setting in fields(cls):
            raw = None
            if isinstance(table, Mapping) and setting.name in table:
                raw = table[setting.name]
            if environ is not None and ENV_PREFIX + setting.name.upper() in environ:
                raw = environ[ENV_PREFIX + setting.name.upper()]
            if raw is not None:
                values[setting.name] = _parsed(setting.name, raw, setting.type)
        return cls(**values)


def _parsed(name: str, raw, kind):
    low, high = Limits.BOUNDS[name]
    whole = kind in (int, "int")
    try:
        if isinstance(raw, bool):
            raise ValueError
        number = int(raw) if whole and not (isinstance(raw, float) and not raw.is_integer()) else float(raw)
        if whole and isinstance(number, float):
            raise ValueError
    except (TypeError, ValueError):
        raise LimitsError(f"The limit {name} must be a {'whole ' if whole else ''}number, not {raw!r}.") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise LimitsError(f"The limit {name} must be between {low} and {high}, not {raw!r}.")
    return int(number) if whole else float(number)
