"""Saved models: `<name>.keras` + `<name>.json` under models/, written atomically and loaded safely.

Beside them, `<name>.tflite`: the same model as LiteRT runs it (float32), which is what the web server predicts
with; save_model writes it in the same atomic save, and conversion.py adds it to models saved without one.

Listing reads only the JSON files (no TensorFlow), so the pages can show the store quickly, and keeps what it read
until the folder changes; a damaged or hostile file (a FIFO, a symbolic link, metadata nested thousands deep or
megabytes long, NaN numbers) shows up as a broken entry instead of breaking or blocking the listing. Saves and
deletes hold the store's lock, an flock on the folder that other processes (the CLI, a second server) respect too.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import stat
import tempfile
import threading
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mnist_core.constants import MODELS_DIR
from mnist_core.i18n import M_, Message, message_of

try:
    import fcntl
except ImportError:  # Windows: saves are then safe between the threads of one process only
    fcntl = None

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_NAME_LENGTH = 64
# The app writes a few kilobytes per model (a 50-epoch history is ~15 KB); more is not metadata it wrote.
MAX_METADATA_BYTES = 1_000_000
_write_lock = threading.Lock()
_log = logging.getLogger(__name__)


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


class NotYourModelError(StoreError, PermissionError):
    """A visitor tried to delete a model somebody else trained."""


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
    owner: str = ""  # the shown name of the visitor who trained it
    owner_id: str = ""  # that visitor's id (mnist_core.visitors): who may delete it; "" for shipped and older models
    uploaded: bool = False  # a .keras file a visitor uploaded (not trained here); its config is then {}
    finetune: dict | None = None  # a fine-tuned model's base, collection and before/after (mnist_core.finetune)

    def to_json(self) -> str:
        """The metadata as standard JSON: a NaN or infinite number (a diverged training's loss) is written as null."""
        values = _finite_or_none(asdict(self))
        if values["train_seconds"] is None:
            values["train_seconds"] = 0.0
        return json.dumps(values, indent=2, sort_keys=True, allow_nan=False)

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
            "name": str, "architecture": str, "created": str, "owner": str, "owner_id": str, "versions": dict,
            "shipped": bool, "stopped": bool, "uploaded": bool,
        }
        for name, kind in expected_types.items():
            if not isinstance(getattr(info, name), kind):
                raise ValueError(f"metadata has a malformed {name}")
        if not _is_number(info.train_seconds) or not isinstance(info.parameters, int) or isinstance(info.parameters, bool):
            raise ValueError("metadata has a malformed train_seconds or parameters")
        if info.command is not None and not isinstance(info.command, str):
            raise ValueError("metadata has a malformed command")
        if info.finetune is not None and not isinstance(info.finetune, dict):
            raise ValueError("metadata has a malformed finetune")
        non_finite = _non_finite_field(values)
        if non_finite:
            # JSON has no NaN or infinity (Python's reader accepts them anyway): the app never writes one.
            raise ValueError(f"metadata has a NaN or infinite number in {non_finite}")
        if info.test_accuracy is not None and not 0.0 <= info.test_accuracy <= 1.0:
            raise ValueError("metadata has a test accuracy outside 0-1")
        if info.train_seconds < 0 or info.parameters < 0:
            raise ValueError("metadata has a negative train_seconds or parameters")
        return info


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _non_finite_field(values) -> str | None:
    """The path ('history[2].loss') of a NaN or infinite float anywhere in `values`, else None."""
    pending = [values]
    while pending:  # a loop, not recursion: the nesting is whatever the file says
        value = pending.pop()
        if type(value) is float:
            if not math.isfinite(value):
                return _path_of_non_finite(values)
        elif type(value) is dict:
            pending.extend(value.values())
        elif type(value) is list:
            pending.extend(value)
    return None


def _path_of_non_finite(values) -> str:
    """Where the first NaN or infinite float in `values` is (slower than finding one: only for the message)."""
    pending = [("", values)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path or "the metadata"
        if isinstance(value, dict):
            pending.extend((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return "the metadata"


def _finite_or_none(value):
    """`value` with every NaN or infinite float inside it replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value


@dataclass(frozen=True)
class ModelEntry:
    """One model in the listing: its metadata, or why it is broken (an i18n Message: the listing is kept for every
    visitor, so the reason is rendered where it is shown)."""

    name: str
    info: ModelInfo | None
    error: Message | str | None = None

    @property
    def broken(self) -> bool:
        return self.error is not None

    @property
    def shipped(self) -> bool:
        return bool(self.info and self.info.shipped)


def validate_name(name: str) -> str:
    """Return `name` if it is a safe model name, else raise InvalidModelName saying what is allowed."""
    if not isinstance(name, str) or not name:
        raise InvalidModelName(M_("Give the model a name."))
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidModelName(M_("Model names are at most {count} characters long.", count=MAX_NAME_LENGTH))
    # NFKC folds look-alikes (full-width dots and slashes) so none slips past the ASCII check below.
    # fullmatch, not match: `$` would also accept a name ending in a newline.
    if unicodedata.normalize("NFKC", name) != name or not name.isascii() or not NAME_PATTERN.fullmatch(name):
        raise InvalidModelName(
            M_("{name} is not a valid model name: use letters, digits, '-', '_' and '.', starting with a letter or "
               "digit.", name=repr(name))
        )
    if ".." in name or name.endswith("."):
        raise InvalidModelName(M_("{name} is not a valid model name: no '..' and no trailing dot.",
                                  name=repr(name)))
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
        raise ProtectedModelError(M_("{name} is a shipped model and cannot be overwritten.", name=repr(name)))
    if (keras_path.exists() or json_path.exists()) and not overwrite:
        raise ModelExistsError(M_("A model named {name} already exists: pick another name.", name=repr(name)))


@contextmanager
def store_lock(models_dir: Path = MODELS_DIR) -> Iterator[None]:
    """Hold the store's write lock: between this process' threads, and between processes through an flock on the
    store's folder itself (no lock file to leave behind; the kernel releases it if the holder dies).

    Saving is check-then-rename; without one lock around both, two processes saving the same new name both passed
    the check and one model silently replaced the other.
    """
    with _write_lock:
        if fcntl is None:
            yield
            return
        descriptor = os.open(models_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the flock


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

    Refuses to replace a shipped model, and any existing model unless `overwrite` (ModelExistsError), also when
    another process saves the same name at the same moment: exactly one of them wins (store_lock). The LiteRT
    conversion (about a second, more for bigger models) runs before the lock; the .json is renamed last, so a model
    is listed only once its other files are in place.
    """
    models_dir = Path(models_dir)
    keras_path, json_path = _paths(info.name, models_dir)
    tflite_path = litert_path(info.name, models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    check_can_save(info.name, models_dir, overwrite=overwrite, shipped=info.shipped)  # before seconds of conversion
    tflite_content = _litert_content(model, info.name)
    with store_lock(models_dir):
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
    _forget_listing(models_dir)
    return info


# What a model saved elsewhere may bring besides its metadata: the Keras file, and its LiteRT form (the worker's
# save_model makes it; missing when the conversion failed there).
MODEL_FILE_SUFFIXES = (".keras", ".tflite")


def save_model_files(info: ModelInfo, files: dict[str, bytes], models_dir: Path = MODELS_DIR,
                     overwrite: bool = False) -> ModelInfo:
    """Save a model that another machine trained and saved (a Ray worker) from its files' contents: `files` maps
    ".keras" (required) and ".tflite" (optional) to bytes, `info` becomes <name>.json.

    The same checks, lock and atomic renames as save_model (the .json renamed last, so the model is listed only
    once its files are in place), without TensorFlow: `info.versions` and `info.parameters` come filled in by the
    worker. A model saved without a .tflite loses an older one of the same name (it would not match).
    """
    unknown = sorted(set(files) - set(MODEL_FILE_SUFFIXES))
    if unknown or ".keras" not in files:
        raise ValueError(f"a model's files are a .keras and optionally a .tflite, not {sorted(files)}")
    models_dir = Path(models_dir)
    _, json_path = _paths(info.name, models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    writes = [(models_dir / f"{info.name}{suffix}", lambda temp, content=content: temp.write_bytes(content))
              for suffix, content in files.items()]
    writes.append((json_path, lambda temp: temp.write_text(info.to_json(), encoding="utf-8")))
    with store_lock(models_dir):
        check_can_save(info.name, models_dir, overwrite=overwrite, shipped=info.shipped)
        if not info.created:
            info.created = now_iso()
        if ".tflite" not in files:
            litert_path(info.name, models_dir).unlink(missing_ok=True)
        _atomic_write(writes)
    _forget_listing(models_dir)
    return info


def save_litert_model(name: str, content: bytes, keras_stat: os.stat_result, models_dir: Path = MODELS_DIR) -> Path:
    """Add the LiteRT file converted from `name`'s .keras, as it was when `keras_stat` was taken; returns its path.

    Refuses (BrokenModelError) if the .keras changed or went away meanwhile: the file would not match the model.
    """
    models_dir = Path(models_dir)
    keras_path = model_path(name, models_dir)
    tflite_path = litert_path(name, models_dir)
    with store_lock(models_dir):
        try:
            now = keras_path.stat()
        except FileNotFoundError:
            raise ModelNotFound(M_("The model {name} was deleted while it was being converted.", name=repr(name))) from None
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (keras_stat.st_ino, keras_stat.st_size, keras_stat.st_mtime_ns):
            raise BrokenModelError(M_("The model {name} was replaced while it was being converted: try again.",
                                      name=repr(name)))
        _atomic_write([(tflite_path, lambda temp: temp.write_bytes(content))])
    _forget_listing(models_dir)
    return tflite_path


class NotARegularFile(OSError):
    """The path is a directory, a symbolic link, a FIFO, a socket or a device: nothing the store wrote."""


@contextmanager
def _open_regular(path: Path) -> Iterator:
    """`path` opened for binary reading if it is a regular file; raises NotARegularFile if it is anything else.

    Never follows a symbolic link (O_NOFOLLOW) and never waits on a FIFO with no writer (O_NONBLOCK, then fstat on
    what was opened, so nothing can be swapped in between a check and the open).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise NotARegularFile(errno.ELOOP, "a symbolic link") from None
        raise
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(errno.EINVAL, _kind_of_file(mode))
        file = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with file:
        yield file


# NotARegularFile's strerror (plain text, as OSError wants it) as the Message a visitor reads.
_FILE_KINDS = {"a folder": M_("a folder"), "a FIFO": M_("a FIFO"), "a socket": M_("a socket"),
               "a device": M_("a device"), "a symbolic link": M_("a symbolic link"),
               "not a regular file": M_("not a regular file")}


def _shown_kind(error: OSError) -> Message | str:
    return _FILE_KINDS.get(error.strerror, error.strerror)


def _kind_of_file(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISLNK, "a symbolic link")]
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def read_info(name: str, models_dir: Path = MODELS_DIR) -> ModelInfo:
    """The metadata of model `name`; ModelNotFound if it has none, BrokenModelError saying why it cannot be used."""
    _, json_path = _paths(name, Path(models_dir))

    def damaged(reason: Message | str) -> BrokenModelError:
        return BrokenModelError(M_("The metadata of {name} is damaged: {reason}", name=repr(name), reason=reason))

    try:
        with _open_regular(json_path) as file:
            content = file.read(MAX_METADATA_BYTES + 1)
        if len(content) > MAX_METADATA_BYTES:
            raise damaged(M_("it is larger than {limit:,} bytes.", limit=MAX_METADATA_BYTES))
        values = json.loads(content.decode("utf-8"))
        return ModelInfo.from_dict(values)
    except FileNotFoundError:
        raise ModelNotFound(M_("There is no model named {name}.", name=repr(name))) from None
    except NotARegularFile as error:
        raise damaged(M_("it is {kind}, not a regular file.", kind=_shown_kind(error))) from None
    except UnicodeDecodeError:
        raise damaged(M_("it is not UTF-8 text.")) from None
    except json.JSONDecodeError as error:
        raise damaged(M_("it is not valid JSON ({problem}, line {line}).", problem=error.msg,
                                 line=error.lineno)) from None
    except RecursionError:
        raise damaged(M_("it is nested too deeply.")) from None
    except MemoryError:
        raise damaged(M_("it is too large to read.")) from None
    except (ValueError, TypeError) as error:  # ModelInfo.from_dict's own, person-readable reasons
        raise damaged(f"{error}.") from None
    except OSError as error:  # permissions, I/O errors: the details are for the log
        _log.warning("could not read %s: %s", json_path, error)
        raise BrokenModelError(M_("The metadata of {name} could not be read.", name=repr(name))) from None


def _weights_problem(keras_path: Path) -> Message | None:
    """Why the .keras file cannot be a model (missing, not a regular file, not a zip), or None if it may be one."""
    try:
        with _open_regular(keras_path) as file:
            if not zipfile.is_zipfile(file):
                return M_("its weights file (.keras) is damaged")
    except FileNotFoundError:
        return M_("its weights file (.keras) is missing")
    except NotARegularFile as error:
        return M_("its weights file (.keras) is {kind}, not a regular file", kind=_shown_kind(error))
    except OSError as error:
        _log.warning("could not read %s: %s", keras_path, error)
        return M_("its weights file (.keras) could not be read")
    return None


def _entry(name: str, models_dir: Path) -> ModelEntry:
    keras_path, _ = _paths(name, models_dir)
    try:
        info = read_info(name, models_dir)
    except ModelNotFound:
        return ModelEntry(name, None, M_("its metadata file (.json) is missing"))
    except BrokenModelError as error:
        return ModelEntry(name, None, message_of(error))
    return ModelEntry(name, info, _weights_problem(keras_path))


# --- Listing, kept until the folder changes ---------------------------------------------------------------------

# A folder's mtime has the kernel's coarse clock (milliseconds) and some filesystems' have whole seconds: a change
# that close after a listing could keep the mtime that listing saw, so such a listing is not trusted to be current.
_TIMESTAMP_SLACK_NS = 2_000_000_000
# Even with an unchanged folder, files are stat'ed again this often: a file edited in place (not replaced, as the
# store itself always does) changes its own mtime but not the folder's.
LISTING_RECHECK_SECONDS = 30.0


@dataclass(frozen=True)
class _Listing:
    folder_stamp: tuple  # (device, inode, mtime_ns) of the folder when it was listed
    trusted_until: float  # time.monotonic(); after it, files are stat'ed again
    entries: tuple[ModelEntry, ...]
    signatures: dict  # name -> the stat signatures of its two files, to reuse entries whose files did not change


_listings: dict[str, _Listing] = {}
_listings_lock = threading.Lock()


def list_models(models_dir: Path = MODELS_DIR) -> list[ModelEntry]:
    """Every model in the store, shipped ones first, then newest first; broken ones carry an error.

    Kept between calls and refreshed when the folder changes (a save, a delete, a file copied in), so a page run
    costs one stat of the folder; only the files whose stat changed are read again. The entries are shared
    between callers: treat them as read-only.
    """
    models_dir = Path(models_dir)
    try:
        folder = os.stat(models_dir)
    except OSError:
        return []
    if not stat.S_ISDIR(folder.st_mode):
        return []
    key = str(models_dir.resolve())
    folder_stamp = (folder.st_dev, folder.st_ino, folder.st_mtime_ns)
    with _listings_lock:
        cached = _listings.get(key)
    if cached is not None and cached.folder_stamp == folder_stamp and time.monotonic() < cached.trusted_until:
        return list(cached.entries)

    signatures = _file_signatures(models_dir)
    previous = cached.signatures if cached is not None else {}
    reusable = {entry.name: entry for entry in cached.entries} if cached is not None else {}
    entries = [
        reusable[name] if previous.get(name) == signature and name in reusable else _entry(name, models_dir)
        for name, signature in signatures.items()
    ]
    entries.sort(key=lambda entry: entry.name)
    # Stable sorts: newest first, then shipped before trained, working before broken.
    entries.sort(key=lambda entry: entry.info.created if entry.info else "", reverse=True)
    entries.sort(key=lambda entry: (not entry.shipped, entry.broken))

    settled = time.time_ns() - folder.st_mtime_ns > _TIMESTAMP_SLACK_NS
    trusted_until = time.monotonic() + LISTING_RECHECK_SECONDS if settled else 0.0
    with _listings_lock:
        _listings[key] = _Listing(folder_stamp, trusted_until, tuple(entries), signatures)
    return entries


def _file_signatures(models_dir: Path) -> dict[str, tuple]:
    """name -> (its .keras file's stat signature, its .json file's) for every model name in the folder."""
    found: dict[str, list] = {}
    with os.scandir(models_dir) as folder:
        for item in folder:
            stem, dot, suffix = item.name.rpartition(".")
            if not dot or suffix not in ("keras", "json") or item.name.startswith("."):
                continue
            try:
                name = validate_name(stem)
            except InvalidModelName:
                continue  # a stray file we did not write; never list what we could not address safely
            try:
                details = item.stat(follow_symlinks=False)
                signature = (details.st_mode, details.st_ino, details.st_size, details.st_mtime_ns, details.st_ctime_ns)
            except OSError:
                signature = None  # vanished meanwhile: the entry is built (and says what is missing)
            found.setdefault(name, [None, None])[0 if suffix == "keras" else 1] = signature
    return {name: tuple(pair) for name, pair in found.items()}


def _forget_listing(models_dir: Path) -> None:
    """Drop the kept listing of `models_dir`, after this process changed the folder."""
    with _listings_lock:
        _listings.pop(str(Path(models_dir).resolve()), None)


def load_model(name: str, models_dir: Path = MODELS_DIR):
    """Load a saved model with Keras' safe_mode (no Lambda layers or arbitrary code); BrokenModelError if it can't.

    The error says why in a sentence; what Keras said (configs, paths) goes to the log only.
    """
    keras_path, _ = _paths(name, Path(models_dir))
    try:
        # Keras opens the path itself; a FIFO there would block it forever, a symbolic link lead anywhere.
        with _open_regular(keras_path):
            pass
    except FileNotFoundError:
        raise ModelNotFound(M_("There is no model named {name}.", name=repr(name))) from None
    except NotARegularFile as error:
        raise BrokenModelError(M_("The model {name} could not be loaded: its file is {kind}.", name=repr(name),
                                  kind=_shown_kind(error))) from None
    import keras  # only now: a missing model is reported without the seconds TensorFlow takes to import

    try:
        return keras.saving.load_model(keras_path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many kinds (ValueError, zipfile, h5py, TypeError)
        _log.warning("could not load the model %r from %s: %s: %s", name, keras_path, type(error).__name__, error)
        raise BrokenModelError(M_("The model {name} could not be loaded: {reason}", name=repr(name),
                                  reason=_load_failure(error))) from None


def _load_failure(error: Exception) -> Message:
    """What a Keras loading error means, in a sentence without its internals."""
    text = str(error)
    if "safe_mode" in text or "Lambda" in text:
        return M_("it contains Python code (a Lambda layer), which this app never runs.")
    return M_("its file is damaged or not a Keras model this app can read.")


def delete_model(name: str, models_dir: Path = MODELS_DIR, allow_shipped: bool = False, by=None) -> None:
    """Delete a model's files; shipped models are protected unless `allow_shipped`. Broken models can be deleted.

    `by` is the Visitor asking (mnist_core.visitors): they must have trained it, or be an admin; a model without a
    readable owner (broken, or trained before owners were recorded) is an admin's to delete. None is the command
    line or a script, which may delete anything but a shipped model.
    """
    models_dir = Path(models_dir)
    keras_path, json_path = _paths(name, models_dir)
    if not models_dir.is_dir():
        raise ModelNotFound(M_("There is no model named {name}.", name=repr(name)))
    with store_lock(models_dir):
        if not os.path.lexists(keras_path) and not os.path.lexists(json_path):
            raise ModelNotFound(M_("There is no model named {name}.", name=repr(name)))
        try:
            info = read_info(name, models_dir)
        except (ModelNotFound, BrokenModelError):
            info = None  # a broken entry is deletable
        if info is not None and info.shipped and not allow_shipped:
            raise ProtectedModelError(M_("{name} ships with the app and cannot be deleted.", name=repr(name)))
        if by is not None and not by.may_manage(info.owner_id if info is not None else ""):
            if info is not None and info.owner:
                raise NotYourModelError(M_("{name} was trained by {owner}: only they (or an admin) can delete it.",
                                           name=repr(name), owner=info.owner))
            raise NotYourModelError(M_("{name} has no recorded owner: only an admin can delete it.",
                                       name=repr(name)))
        keras_path.unlink(missing_ok=True)
        litert_path(name, models_dir).unlink(missing_ok=True)
        json_path.unlink(missing_ok=True)
    _forget_listing(models_dir)
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
