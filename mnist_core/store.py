"""Saved models: `<name>.keras` + `<name>.json` under models/, written atomically and loaded safely.

Beside them, `<name>.tflite`: the same model as LiteRT runs it (float32), which is what the web server predicts
with; save_model writes it in the same atomic save, and conversion.py adds it to models saved without one.

Listing reads only the JSON files (no TensorFlow), so the pages can show the store quickly; a damaged
file shows up as a broken entry instead of breaking the listing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mnist_core.constants import MODELS_DIR

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_NAME_LENGTH = 64
_write_lock = threading.Lock()


class StoreError(Exception):
    """Base of the model store's errors; messages are written for a person."""


class InvalidModelName(StoreError, ValueError):
    pass


class ModelNotFound(StoreError, LookupError):
    pass


class ProtectedModelError(StoreError, PermissionError):
    """Shipped models cannot be deleted or overwritten from the app."""


class ModelExistsError(StoreError, FileExistsError):
    pass


class BrokenModelError(StoreError):
    """The files of a model are missing, damaged or not a safe Keras model."""


@dataclass
class ModelInfo:
    """The metadata saved beside each model, as <name>.json."""

    name: str
    architecture: str
    config: dict
    test_accuracy: float | None
    history: list[dict] = field(default_factory=list)  # one dict per epoch: the EpochEvent fields
    train_seconds: float = 0.0
    parameters: int = 0
    created: str = ""  # ISO 8601, UTC
    versions: dict = field(default_factory=dict)
    command: str | None = None  # the CLI command that made it, for shipped models
    shipped: bool = False
    stopped: bool = False  # training was stopped before its last epoch
    owner: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> ModelInfo:
        if not isinstance(values, dict):
            raise ValueError("metadata is not a JSON object")
        missing = [name for name in ("name", "architecture", "config", "test_accuracy") if name not in values]
        if missing:
            raise ValueError(f"metadata lacks {', '.join(missing)}")
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        info = cls(**known)
        if not isinstance(info.config, dict) or not isinstance(info.history, list):
            raise ValueError("metadata has a malformed config or history")
        if not all(isinstance(epoch, dict) for epoch in info.history):
            raise ValueError("metadata has a malformed history")
        if info.test_accuracy is not None and not _is_number(info.test_accuracy):
            raise ValueError("metadata has a non-numeric test accuracy")
        # A hand edit like "shipped": "false" would otherwise read as true, and a text where a number belongs
        # would break the pages that draw the metadata.
        expected_types = {
            "name": str, "architecture": str, "created": str, "owner": str, "versions": dict,
            "shipped": bool, "stopped": bool,
        }
        for name, kind in expected_types.items():
            if not isinstance(getattr(info, name), kind):
                raise ValueError(f"metadata has a malformed {name}")
        if not _is_number(info.train_seconds) or not isinstance(info.parameters, int) or isinstance(info.parameters, bool):
            raise ValueError("metadata has a malformed train_seconds or parameters")
        if info.command is not None and not isinstance(info.command, str):
            raise ValueError("metadata has a malformed command")
        return info


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class ModelEntry:
    """One model in the listing: its metadata, or why it is broken."""

    name: str
    info: ModelInfo | None
    error: str | None = None

    @property
    def broken(self) -> bool:
        return self.error is not None

    @property
    def shipped(self) -> bool:
        return bool(self.info and self.info.shipped)


def validate_name(name: str) -> str:
    """Return `name` if it is a safe model name, else raise InvalidModelName saying what is allowed."""
    if not isinstance(name, str) or not name:
        raise InvalidModelName("Give the model a name.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidModelName(f"Model names are at most {MAX_NAME_LENGTH} characters long.")
    # NFKC folds look-alikes (full-width dots and slashes) so none slips past the ASCII check below.
    # fullmatch, not match: `$` would also accept a name ending in a newline.
    if unicodedata.normalize("NFKC", name) != name or not name.isascii() or not NAME_PATTERN.fullmatch(name):
        raise InvalidModelName(
            f"{name!r} is not a valid model name: use letters, digits, '-', '_' and '.', starting with a letter or digit."
        )
    if ".." in name or name.endswith("."):
        raise InvalidModelName(f"{name!r} is not a valid model name: no '..' and no trailing dot.")
    return name


def _paths(name: str, models_dir: Path) -> tuple[Path, Path]:
    validate_name(name)
    return models_dir / f"{name}.keras", models_dir / f"{name}.json"


def library_versions() -> dict:
    import keras
    import numpy
    import tensorflow

    return {"keras": keras.__version__, "tensorflow": tensorflow.__version__, "numpy": numpy.__version__}


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _atomic_write(writes: list[tuple[Path, Callable[[Path], object]]]) -> None:
    """Write each (target, write) through a temporary file in the target's folder, fsync them all, then rename
    them over their targets one right after the other, so a kill leaves old or new files, never a half one."""
    temps: list[Path] = []
    try:
        for target, write in writes:
            handle, temp_name = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}"
            )
            os.close(handle)
            temp = Path(temp_name)
            temps.append(temp)
            write(temp)
            temp.chmod(0o644)  # mkstemp makes it private; models are shared files
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
        # Both files are complete before either is renamed: the window where a kill leaves a new .keras beside
        # an old .json is two renames long, not a whole write.
        for temp, (target, _) in zip(temps, writes):
            os.replace(temp, target)
        _fsync_folder(writes[0][0].parent)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


# A save's temporary files live for seconds; older ones were left by a save that was killed before its renames.
STALE_TEMPORARY_SECONDS = 3600
TEMPORARY_PATTERN = ".*.tmp.*"  # what _atomic_write's mkstemp names look like: .NAME.XXXXXXXX.tmp.keras


def remove_stale_temporaries(models_dir: Path = MODELS_DIR, older_than: float = STALE_TEMPORARY_SECONDS) -> list[Path]:
    """Delete the temporary files that killed saves left in `models_dir` (hidden, never listed as models) once
    they are older than `older_than` seconds; returns the files removed. One that cannot go is logged and left."""
    removed: list[Path] = []
    cutoff = time.time() - older_than
    for path in sorted(Path(models_dir).glob(TEMPORARY_PATTERN)):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue  # another process cleaned it first
        except OSError as error:
            logging.getLogger(__name__).warning("could not remove the stale temporary file %s: %s", path, error)
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make the renames themselves durable (a power cut could otherwise undo them); best effort."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def check_can_save(name: str, models_dir: Path = MODELS_DIR, overwrite: bool = False, shipped: bool = False) -> None:
    """Raise what saving `name` would raise (InvalidModelName, ProtectedModelError, ModelExistsError), saving nothing.

    Lets a long training run find out before it starts that its result could not be saved.
    """
    keras_path, json_path = _paths(name, Path(models_dir))
    try:
        existing = read_info(name, models_dir) if json_path.exists() else None
    except BrokenModelError:
        existing = None  # damaged metadata: like delete_model, let a deliberate overwrite mend it
    if existing is not None and existing.shipped and not shipped:
        raise ProtectedModelError(f"{name!r} is a shipped model and cannot be overwritten.")
    if (keras_path.exists() or json_path.exists()) and not overwrite:
        raise ModelExistsError(f"A model named {name!r} already exists: pick another name.")


def litert_path(name: str, models_dir: Path = MODELS_DIR) -> Path:
    """Where the model's LiteRT file (float32 `.tflite`, see export.litert_model) lives."""
    validate_name(name)
    return Path(models_dir) / f"{name}.tflite"


def _litert_content(model, name: str) -> bytes | None:
    """The model converted for LiteRT, or None (logged) if conversion fails: minutes of training are not lost over
    it; the model then gets its file from a conversion worker later, which reports the same failure to the page."""
    from mnist_core.export import litert_model

    try:
        return litert_model(model)
    except Exception:  # the converter raises many kinds (ValueError, ConverterError, RuntimeError)
        logging.getLogger(__name__).exception("could not convert %r to LiteRT; saving it without a .tflite", name)
        return None


def save_model(model, info: ModelInfo, models_dir: Path = MODELS_DIR, overwrite: bool = False) -> ModelInfo:
    """Save `model` and `info` as <name>.keras, <name>.tflite and <name>.json; a kill at any moment leaves no half
    file.

    Refuses to replace a shipped model, and any existing model unless `overwrite`. The LiteRT conversion (about a
    second, more for bigger models) runs before the lock; the .json is renamed last, so a model is listed only once
    its other files are in place.
    """
    models_dir = Path(models_dir)
    keras_path, json_path = _paths(info.name, models_dir)
    tflite_path = litert_path(info.name, models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    check_can_save(info.name, models_dir, overwrite=overwrite, shipped=info.shipped)  # before seconds of conversion
    tflite_content = _litert_content(model, info.name)
    with _write_lock:
        check_can_save(info.name, models_dir, overwrite=overwrite, shipped=info.shipped)
        if not info.created:
            info.created = now_iso()
        if not info.versions:
            info.versions = library_versions()
        if not info.parameters:
            info.parameters = int(model.count_params())
        writes = [(keras_path, lambda temp: model.save(temp))]
        if tflite_content is not None:
            writes.append((tflite_path, lambda temp: temp.write_bytes(tflite_content)))
        else:
            tflite_path.unlink(missing_ok=True)  # an older model's file would not match the new .keras
        writes.append((json_path, lambda temp: temp.write_text(info.to_json(), encoding="utf-8")))
        _atomic_write(writes)
    return info


def save_litert_model(name: str, content: bytes, keras_stat: os.stat_result, models_dir: Path = MODELS_DIR) -> Path:
    """Add the LiteRT file converted from `name`'s .keras, as it was when `keras_stat` was taken; returns its path.

    Refuses (BrokenModelError) if the .keras changed or went away meanwhile: the file would not match the model.
    """
    models_dir = Path(models_dir)
    keras_path = model_path(name, models_dir)
    tflite_path = litert_path(name, models_dir)
    with _write_lock:
        try:
            now = keras_path.stat()
        except FileNotFoundError:
            raise ModelNotFound(f"The model {name!r} was deleted while it was being converted.") from None
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (keras_stat.st_ino, keras_stat.st_size, keras_stat.st_mtime_ns):
            raise BrokenModelError(f"The model {name!r} was replaced while it was being converted: try again.")
        _atomic_write([(tflite_path, lambda temp: temp.write_bytes(content))])
    return tflite_path


def read_info(name: str, models_dir: Path = MODELS_DIR) -> ModelInfo:
    _, json_path = _paths(name, Path(models_dir))
    try:
        values = json.loads(json_path.read_text(encoding="utf-8"))
        return ModelInfo.from_dict(values)
    except FileNotFoundError:
        raise ModelNotFound(f"There is no model named {name!r}.") from None
    except (ValueError, TypeError, UnicodeDecodeError) as error:
        raise BrokenModelError(f"The metadata of {name!r} is damaged: {error}.") from error


def _entry(name: str, models_dir: Path) -> ModelEntry:
    keras_path, json_path = _paths(name, models_dir)
    if not json_path.exists():
        return ModelEntry(name, None, "its metadata file (.json) is missing")
    try:
        info = read_info(name, models_dir)
    except BrokenModelError as error:
        return ModelEntry(name, None, str(error))
    if not keras_path.exists():
        return ModelEntry(name, info, "its weights file (.keras) is missing")
    if not zipfile.is_zipfile(keras_path):
        return ModelEntry(name, info, "its weights file (.keras) is damaged")
    return ModelEntry(name, info)


def list_models(models_dir: Path = MODELS_DIR) -> list[ModelEntry]:
    """Every model in the store, shipped ones first, then newest first; broken ones carry an error."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    names = set()
    for path in models_dir.iterdir():
        if path.suffix in (".keras", ".json") and not path.name.startswith("."):
            try:
                names.add(validate_name(path.stem))
            except InvalidModelName:
                continue  # a stray file we did not write; never list what we could not address safely
    entries = sorted((_entry(name, models_dir) for name in names), key=lambda entry: entry.name)
    # Stable sorts: newest first, then shipped before trained, working before broken.
    entries.sort(key=lambda entry: entry.info.created if entry.info else "", reverse=True)
    entries.sort(key=lambda entry: (not entry.shipped, entry.broken))
    return entries


def load_model(name: str, models_dir: Path = MODELS_DIR):
    """Load a saved model with Keras' safe_mode (no Lambda layers or arbitrary code); BrokenModelError if it can't."""
    keras_path, _ = _paths(name, Path(models_dir))
    if not keras_path.exists():
        raise ModelNotFound(f"There is no model named {name!r}.")
    import keras  # only now: a missing model is reported without the seconds TensorFlow takes to import

    try:
        return keras.saving.load_model(keras_path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many kinds (ValueError, zipfile, h5py, TypeError) for a bad file
        raise BrokenModelError(f"The model {name!r} could not be loaded: {error}") from error


def delete_model(name: str, models_dir: Path = MODELS_DIR, allow_shipped: bool = False) -> None:
    """Delete a model's files; shipped models are protected unless `allow_shipped`. Broken models can be deleted."""
    models_dir = Path(models_dir)
    keras_path, json_path = _paths(name, models_dir)
    if not keras_path.exists() and not json_path.exists():
        raise ModelNotFound(f"There is no model named {name!r}.")
    if not allow_shipped:
        try:
            if read_info(name, models_dir).shipped:
                raise ProtectedModelError(f"{name!r} ships with the app and cannot be deleted.")
        except (ModelNotFound, BrokenModelError):
            pass  # a broken entry is deletable
    with _write_lock:
        keras_path.unlink(missing_ok=True)
        litert_path(name, models_dir).unlink(missing_ok=True)
        json_path.unlink(missing_ok=True)
    from mnist_core.export import remove_exports

    remove_exports(name, models_dir)


def unique_name(base: str, models_dir: Path = MODELS_DIR) -> str:
    """`base`, or `base-2`, `base-3`, ... whichever is free in the store."""
    validate_name(base)
    models_dir = Path(models_dir)
    candidate, number = base, 1
    while (models_dir / f"{candidate}.keras").exists() or (models_dir / f"{candidate}.json").exists():
        number += 1
        candidate = f"{base[: MAX_NAME_LENGTH - 6]}-{number}"
    return candidate


def model_path(name: str, models_dir: Path = MODELS_DIR) -> Path:
    return _paths(name, Path(models_dir))[0]
