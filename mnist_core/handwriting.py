"""Collections of people's own labelled drawings ("My digits"), kept in one SQLite file.

Named `handwriting`, not `collections`: a module called collections.py inside mnist_core would be the stdlib's
`collections` for any process that has mnist_core/ itself on sys.path (`python mnist_core/cli.py`, a shell in that
folder), and everything importing `from collections import ...` (functools, typing, ...) would break there.

The file is `<data folder>/handwriting.sqlite3` (MNIST_LAB_DATA_DIR, else userdata/): WAL mode, so readers never
wait for a writer and several sessions (threads, processes) write safely, each through its own connection; every
write is one `BEGIN IMMEDIATE` transaction. The schema carries a version (`PRAGMA user_version`) and the app's mark
(`PRAGMA application_id`): an older file is migrated when first opened, a foreign or damaged file is refused with
a sentence (HandwritingError) and left as it is.

A collection belongs to one visitor (mnist_core.visitors): only its owner or an admin changes it. Each visitor
starts with their own, created at their first save under their shown name; they can rename it to find it again
from another browser (where it is theirs to look at, test and fine-tune on, not to change). A drawing is stored
with the picture the visitor drew (PNG bytes), the 28x28 uint8 image the model saw, its true label, and the
model's prediction, confidence and name at save time. The same drawing saved twice is one row: rows are unique by
the SHA-256 of their 28x28 image within a collection (a second save updates the label).

What visitors send passes one checking function per kind before it touches the file: `checked_name` (collection
names), `checked_label` (labels), `new_drawing` (a drawing to save), `checked_import` (an uploaded .npz or .zip).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import sqlite3
import stat
import threading
import unicodedata
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mnist_core.constants import IMAGE_SIZE, NUM_CLASSES, data_dir
from mnist_core.i18n import M_

FILE_NAME = "handwriting.sqlite3"
APPLICATION_ID = 0x4D4E4457  # "MNDW": MNIST Lab's drawings; any other value is somebody else's SQLite file
SCHEMA_VERSION = 2
BUSY_TIMEOUT_S = 30.0  # a writer waits this long for another writer's transaction (they last milliseconds)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 _.-]{0,46}[A-Za-z0-9_.-])?$")
MAX_NAME_LENGTH = 48
SOURCES = ("canvas", "upload", "import")
MAX_DRAWINGS = 2_000  # per collection: a person draws dozens; this keeps an export and a fine-tune small
MAX_PNG_BYTES = 2_000_000  # a 280x280 canvas PNG is 5-20 KB; an upload is re-encoded at most STORED_PICTURE_SIDE
STORED_PICTURE_SIDE = 560
MAX_STORE_BYTES = 500_000_000  # the whole file (with its WAL): beyond it saves are refused, reads still work
MAX_IMPORT_BYTES = 20_000_000
_MAX_IMPORT_ENTRIES = MAX_DRAWINGS + 10
_MAX_MANIFEST_BYTES = 2_000_000
_MAX_TEXT = 80  # model names, dates and sources in a manifest
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPORT_FORMAT = "mnist-lab-digits"
IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE

_log = logging.getLogger(__name__)


# --- errors: a person's sentences -----------------------------------------------------------------------------


class HandwritingError(Exception):
    """Base of this module's errors; the message is an i18n Message written for a person (`render` it to show it)."""


class InvalidInput(HandwritingError, ValueError):
    """A name, label, drawing or imported file that is not what the app accepts; says what is."""


class CollectionNotFound(HandwritingError, LookupError):
    pass


class NameTakenError(HandwritingError):
    pass


class NotYourCollectionError(HandwritingError, PermissionError):
    pass


class CollectionFullError(HandwritingError):
    pass


class StoreFileError(HandwritingError):
    """The drawings file cannot be used: damaged, foreign, newer than this app, busy, or the disk is full."""


# --- plain data -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    id: int
    name: str
    owner_id: str
    owner_name: str
    named: bool  # the owner chose the name (else it is the default, their visitor name)
    created: str  # ISO 8601, UTC
    size: int = 0  # drawings in it when it was read


@dataclass(frozen=True)
class StoredDrawing:
    id: int
    image: np.ndarray  # (28, 28) uint8, ink bright: what the model saw
    label: int  # the true label the person gave
    predicted: int | None  # what the model said at save time
    confidence: float | None
    model: str | None
    source: str  # "canvas", "upload" or "import"
    created: str

    @property
    def mistaken(self) -> bool:
        """The model at save time said something else than the true label."""
        return self.predicted is not None and self.predicted != self.label


@dataclass(frozen=True)
class NewDrawing:
    """A drawing to save, checked (make it with `new_drawing`)."""

    png: bytes
    image: np.ndarray  # (28, 28) uint8
    label: int
    predicted: int | None
    confidence: float | None
    model: str | None
    source: str


@dataclass(frozen=True)
class SaveResult:
    collection: Collection
    drawing_id: int
    added: bool  # False: the same drawing was in the collection already (its label is now the one just given)


@dataclass(frozen=True)
class ImportedDigits:
    """A checked import: n drawings with their labels, and what the export recorded beside them (None if not)."""

    x: np.ndarray  # (n, 28, 28) uint8
    y: np.ndarray  # (n,) uint8
    pngs: tuple[bytes | None, ...]
    predicted: tuple[int | None, ...]
    confidence: tuple[float | None, ...]
    models: tuple[str | None, ...]
    created: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class ImportResult:
    added: int
    duplicates: int  # already in the collection (same 28x28 image)


# --- the checking functions -------------------------------------------------------------------------------------


def checked_name(value) -> str:
    """A collection name as a visitor typed it, if acceptable (surrounding spaces dropped); InvalidInput otherwise.

    Letters, digits, spaces, '-', '_' and '.', up to 48 characters, starting with a letter or digit; names are
    unique without regard to case ("Anna" and "anna" are one name).
    """
    if not isinstance(value, str):
        raise InvalidInput(M_("Give the collection a name."))
    name = value.strip()
    if not name:
        raise InvalidInput(M_("Give the collection a name."))
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(M_("Collection names are at most {count} characters long.", count=MAX_NAME_LENGTH))
    # NFKC first: full-width letters and look-alike dots would otherwise pass as something else.
    if unicodedata.normalize("NFKC", name) != name or not name.isascii() or not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(M_("Use letters, digits, spaces, '-', '_' and '.' in a collection name, starting with a "
                              "letter or digit."))
    if "  " in name:
        raise InvalidInput(M_("One space at a time in a collection name."))
    return name


def checked_label(value) -> int:
    """A digit label 0-9 as an int; InvalidInput for anything else (bools, floats like 3.5, text)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidInput(M_("A label is a digit from 0 to 9, not {value}.", value=repr(value)))
    if not 0 <= int(value) < NUM_CLASSES:
        raise InvalidInput(M_("A label is a digit from 0 to 9, not {value}.", value=int(value)))
    return int(value)


def _checked_prediction(predicted, confidence, model) -> tuple[int | None, float | None, str | None]:
    if predicted is not None:
        predicted = checked_label(predicted)
    if confidence is not None:
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.floating)) or \
                not math.isfinite(float(confidence)) or not 0.0 <= float(confidence) <= 1.0:
            raise InvalidInput(M_("A confidence is a probability from 0 to 1."))
        confidence = float(confidence)
    if model is not None:
        if not isinstance(model, str) or not model or len(model) > _MAX_TEXT or not model.isprintable():
            raise InvalidInput(M_("A model name is short printable text."))
    return predicted, confidence, model


def as_image_bytes(image) -> np.ndarray:
    """A (28, 28) image as uint8 0-255: uint8 as it is, floats read as [0, 1] (what preprocess gives)."""
    array = np.asarray(image)
    if array.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise InvalidInput(M_("The image the model saw must be {side} x {side}, not {shape}.",
                              side=IMAGE_SIZE, shape=str(array.shape)))
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise InvalidInput(M_("The image the model saw must be uint8, or floats from 0 to 1."))
    return np.clip(np.rint(array.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def _check_png(data, what) -> bytes:
    if not isinstance(data, (bytes, bytearray)) or not bytes(data[:8]) == PNG_SIGNATURE:
        raise InvalidInput(M_("{what} is not a PNG picture.", what=what))
    if len(data) > MAX_PNG_BYTES:
        raise InvalidInput(M_("{what} is larger than {mb} MB.", what=what, mb=MAX_PNG_BYTES // 1_000_000))
    return bytes(data)


def new_drawing(png: bytes, image, label, predicted=None, confidence=None, model=None,
                source: str = "canvas") -> NewDrawing:
    """The one check of a drawing a visitor saves: the picture (PNG bytes), the 28x28 image the model saw (uint8,
    or float [0, 1]), the true label, and the model's prediction, confidence and name. Raises InvalidInput."""
    if source not in SOURCES:
        raise InvalidInput(M_("A drawing comes from one of {sources}.", sources=', '.join(SOURCES)))
    png = _check_png(png, M_("The drawing"))
    label = checked_label(label)
    predicted, confidence, model = _checked_prediction(predicted, confidence, model)
    return NewDrawing(png, as_image_bytes(image), label, predicted, confidence, model, source)


def picture_png(pixels: np.ndarray, max_side: int = STORED_PICTURE_SIDE) -> bytes:
    """A decoded picture (uint8 (H, W), (H, W, 3) or (H, W, 4)) as PNG bytes, shrunk to at most `max_side` pixels
    on its longer side: how an uploaded photo is kept (the original may be megabytes of JPEG)."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(pixels))
    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _image_hash(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --- the checked import -----------------------------------------------------------------------------------------


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, what) -> bytes:
    """A zip member's bytes, never more than `limit` whatever its header claims (a bomb stops at the limit)."""
    if info.file_size > limit:
        raise InvalidInput(M_("{what} is too large ({size:,} bytes unpacked; at most {limit:,}).",
                              what=what, size=info.file_size, limit=limit))
    with archive.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(M_("{what} is larger than its header says.", what=what))
    return data


def _npy_array(data: bytes, name: str) -> np.ndarray:
    """An .npy file's array, its header checked before any data is read: never a pickle, never an object array."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"npy version {version}")
    except (ValueError, TypeError, SyntaxError) as error:
        _log.info("refused an imported %s.npy: %s", name, error)
        raise InvalidInput(M_("The array {name} is not a readable .npy array.", name=name)) from None
    if dtype.hasobject or dtype.kind not in "ui" or dtype.itemsize > 8:
        raise InvalidInput(M_("The array {name} holds {dtype} values; it must hold whole numbers (uint8).",
                              name=name, dtype=str(dtype)))
    count = math.prod(shape)
    if count * dtype.itemsize != len(data) - stream.tell():
        raise InvalidInput(M_("The array {name} is truncated or longer than its shape {shape} says.",
                              name=name, shape=str(shape)))
    array = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
    return array.reshape(shape, order="F" if fortran_order else "C")


def _npz_arrays(data: bytes, what) -> dict[str, np.ndarray]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidInput(M_("{what} is not a .npz file.", what=what)) from None
    with archive:
        members = archive.infolist()
        names = sorted(info.filename for info in members)
        if sorted(names) != ["x.npy", "y.npy"]:
            shown = ", ".join(name.removesuffix(".npy") for name in names[:8]) or "nothing"
            raise InvalidInput(M_("{what} must hold exactly two arrays, x (the images) and y (the labels); it "
                                  "holds {names}.", what=what, names=shown))
        limit = MAX_DRAWINGS * IMAGE_BYTES + 1024
        return {info.filename[:-4]: _npy_array(_read_member(archive, info, limit, M_("The array {name}", name=info.filename)),
                                               info.filename[:-4])
                for info in members}


def _checked_digit_arrays(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    x, y = arrays["x"], arrays["y"]
    if x.dtype != np.uint8:
        raise InvalidInput(M_("x must be uint8 pixels 0-255 as in MNIST, not {dtype}.", dtype=str(x.dtype)))
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise InvalidInput(M_("x must be images shaped (n, {side}, {side}), not {shape}.",
                              side=IMAGE_SIZE, shape=str(x.shape)))
    if y.ndim != 1 or len(y) != len(x):
        raise InvalidInput(M_("y must be one label per image, shaped ({count},), not {shape}.",
                              count=len(x), shape=str(y.shape)))
    if len(x) == 0:
        raise InvalidInput(M_("The file holds no drawings."))
    if len(x) > MAX_DRAWINGS:
        raise InvalidInput(M_("The file holds {count:,} drawings; a collection holds at most {limit:,}.",
                              count=len(x), limit=MAX_DRAWINGS))
    if y.min() < 0 or y.max() >= NUM_CLASSES:
        raise InvalidInput(M_("Labels must be digits 0 to 9; this file has labels from {low} to {high}.",
                              low=int(y.min()), high=int(y.max())))
    return np.ascontiguousarray(x), y.astype(np.uint8)


def _optional(entry: dict, key: str, check):
    value = entry.get(key)
    return None if value is None else check(value)


def _manifest_text(value) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT or not value.isprintable():
        raise InvalidInput(M_("The file's drawings.json has a text that is not short printable text."))
    return value


def _read_manifest(archive: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo], y: np.ndarray) -> list[dict]:
    data = _read_member(archive, by_name["drawings.json"], _MAX_MANIFEST_BYTES, "drawings.json")
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidInput(M_("The file's drawings.json is not valid JSON.")) from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise InvalidInput(M_("The file's drawings.json is not an export of MNIST Lab's My digits."))
    entries = manifest.get("drawings")
    if not isinstance(entries, list) or len(entries) != len(y) or not all(isinstance(e, dict) for e in entries):
        raise InvalidInput(M_("The file's drawings.json does not describe its {count} drawings one by one.",
                              count=len(y)))
    for index, entry in enumerate(entries):
        if entry.get("label") != int(y[index]):
            raise InvalidInput(M_("Drawing {index} is labelled {label} in drawings.json but {digit} in the "
                                  ".npz: the file was changed by hand.",
                                  index=index, label=repr(entry.get('label')), digit=int(y[index])))
    return entries


def checked_import(data) -> ImportedDigits:
    """The one check of a file a visitor imports: a .npz in MNIST's format (`x` uint8 (n, 28, 28), `y` labels 0-9)
    or a My digits export (.zip: that .npz, drawings.json and the PNGs). Raises InvalidInput saying what is wrong.

    Nothing is unpacked on trust: the upload's size, the number of entries and each entry's size are capped (read
    past the cap, not as declared), .npy headers are read before their data (whole numbers only, so never a pickle),
    and every PNG is checked by its signature and size.
    """
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise InvalidInput(M_("The file is empty."))
    if len(data) > MAX_IMPORT_BYTES:
        raise InvalidInput(M_("The file is larger than {mb} MB.", mb=MAX_IMPORT_BYTES // 1_000_000))
    try:
        archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    except zipfile.BadZipFile:
        raise InvalidInput(M_("The file is neither a .npz nor a .zip exported from My digits.")) from None
    with archive:
        members = archive.infolist()
        if len(members) > _MAX_IMPORT_ENTRIES:
            raise InvalidInput(M_("The file holds {count:,} entries; an export has at most {limit:,}.",
                                  count=len(members), limit=_MAX_IMPORT_ENTRIES))
        by_name = {info.filename: info for info in members}
        if all(name.endswith(".npy") for name in by_name):  # a bare .npz
            x, y = _checked_digit_arrays(_npz_arrays(bytes(data), M_("The file")))
            nothing = (None,) * len(y)
            return ImportedDigits(x, y, nothing, nothing, nothing, nothing, nothing)
        npz_names = [name for name in by_name if name.endswith(".npz") and "/" not in name]
        if len(npz_names) != 1:
            raise InvalidInput(M_("The file is neither a .npz (arrays x and y) nor a .zip exported from My digits "
                                  "(one .npz with drawings.json and the PNGs)."))
        inner = _read_member(archive, by_name[npz_names[0]], MAX_IMPORT_BYTES, npz_names[0])
        x, y = _checked_digit_arrays(_npz_arrays(inner, npz_names[0]))
        if "drawings.json" not in by_name:
            nothing = (None,) * len(y)
            return ImportedDigits(x, y, nothing, nothing, nothing, nothing, nothing)
        entries = _read_manifest(archive, by_name, y)
        pngs, predicted, confidence, models, created = [], [], [], [], []
        for entry in entries:
            path = entry.get("png")
            if path is None:
                pngs.append(None)
            elif not isinstance(path, str) or path not in by_name or not path.startswith("png/"):
                raise InvalidInput(M_("The file's drawings.json names a PNG the file does not hold."))
            else:
                pngs.append(_check_png(_read_member(archive, by_name[path], MAX_PNG_BYTES, path), path))
            guess, sure, model = _checked_prediction(entry.get("predicted"), entry.get("confidence"),
                                                     entry.get("model"))
            predicted.append(guess)
            confidence.append(sure)
            models.append(model)
            created.append(_optional(entry, "created", _manifest_text))
        return ImportedDigits(x, y, tuple(pngs), tuple(predicted), tuple(confidence), tuple(models), tuple(created))


# --- the store ----------------------------------------------------------------------------------------------------

_COLLECTIONS_TABLE = """
CREATE TABLE collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    owner_id TEXT NOT NULL,
    owner_name TEXT NOT NULL DEFAULT '',
    named INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
)"""
_OWNER_INDEX = "CREATE INDEX IF NOT EXISTS collections_by_owner ON collections (owner_id)"
_DRAWINGS_TABLE = """
CREATE TABLE drawings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    image_sha256 TEXT NOT NULL,
    png BLOB NOT NULL,
    image BLOB NOT NULL CHECK (length(image) = 784),
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    predicted INTEGER CHECK (predicted BETWEEN 0 AND 9),
    confidence REAL,
    model TEXT,
    source TEXT NOT NULL DEFAULT 'canvas',
    created TEXT NOT NULL,
    UNIQUE (collection_id, image_sha256)
)"""
# AUTOINCREMENT: an id is never given again, so a page still holding a deleted collection's (or drawing's) id can
# never reach somebody else's. executescript() would commit the transaction the schema is made in: one statement at a time instead.
_SCHEMA = (_COLLECTIONS_TABLE, _OWNER_INDEX, _DRAWINGS_TABLE)


def _migrate_1_to_2(connection: sqlite3.Connection) -> None:
    """Version 1 (the first design) had no owner names, no 'named' flag, no sources and no hashes, so the same
    drawing could be saved twice. Version 2 hashes each 28x28 image and keeps the first of each duplicate."""
    connection.execute("ALTER TABLE collections ADD COLUMN owner_name TEXT NOT NULL DEFAULT ''")
    connection.execute("ALTER TABLE collections ADD COLUMN named INTEGER NOT NULL DEFAULT 1")
    connection.execute(_OWNER_INDEX)
    connection.execute("ALTER TABLE drawings RENAME TO drawings_v1")
    connection.execute(_DRAWINGS_TABLE)
    connection.create_function("sha256_hex", 1, lambda blob: hashlib.sha256(blob).hexdigest(), deterministic=True)
    connection.execute(
        "INSERT OR IGNORE INTO drawings (id, collection_id, image_sha256, png, image, label, predicted, confidence, "
        "model, source, created) SELECT id, collection_id, sha256_hex(image), png, image, label, predicted, "
        "confidence, model, 'canvas', created FROM drawings_v1 ORDER BY id")
    connection.execute("DROP TABLE drawings_v1")


# Version n -> the step that makes it n + 1, inside the transaction that opens the file.
MIGRATIONS = {1: _migrate_1_to_2}

_ready: set[tuple] = set()  # files (path, device, inode) whose schema this process has checked and brought up to date
_ready_lock = threading.Lock()


def default_path() -> Path:
    return data_dir() / FILE_NAME


class Handwriting:
    """The collections in one SQLite file. Thread-safe: every call opens its own connection (cheap: ~0.1 ms)."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else default_path()

    # --- connections ------------------------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """An open connection to an up-to-date file; every SQLite failure becomes a StoreFileError sentence."""
        connection = None
        try:
            self._check_regular_file()
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            connection.execute("PRAGMA foreign_keys = ON")
            self._ensure_schema(connection)
            yield connection
        except sqlite3.IntegrityError:
            raise  # the callers' own conflicts (a taken name): they turn them into sentences
        except sqlite3.Error as error:
            raise self._file_error(error) from None
        finally:
            if connection is not None:
                if connection.in_transaction:
                    connection.rollback()
                connection.close()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: taken at once (BEGIN IMMEDIATE), so two writers queue instead of deadlocking."""
        with self._connection() as connection:
            self._check_room()
            connection.execute("BEGIN IMMEDIATE")
            yield connection
            connection.execute("COMMIT")

    def _check_regular_file(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISREG(mode):  # a FIFO would block SQLite, a symbolic link lead anywhere
            _log.error("the drawings file %s is not a regular file (mode %o)", self.path, mode)
            raise StoreFileError(M_("The drawings file ({file}) is not a regular file: an admin must move it "
                                    "away; the app then starts a new one.", file=FILE_NAME))

    def _check_room(self) -> None:
        used = sum(os.path.getsize(path) for path in (self.path, Path(f"{self.path}-wal")) if path.exists())
        if used > MAX_STORE_BYTES:
            raise StoreFileError(M_("The drawings store is full ({mb:,.0f} MB): an admin must make room. "
                                    "Exporting still works.", mb=used / 1e6))

    def _file_error(self, error: sqlite3.Error) -> StoreFileError:
        text = str(error)
        _log.error("the drawings file %s: %s: %s", self.path, type(error).__name__, text)
        if "locked" in text or "busy" in text:
            return StoreFileError(M_("The drawings store is busy: try again in a moment."))
        if "full" in text:
            return StoreFileError(M_("The server's disk is full: the drawing was not saved."))
        return StoreFileError(M_("The drawings file ({file}) is damaged or not a database ({error}). Nothing "
                                 "was changed; an admin can move it away, and the app then starts a new one.",
                                 file=FILE_NAME, error=text))

    def _ensure_schema(self, connection: sqlite3.Connection) -> None:
        details = os.stat(self.path)
        key = (str(self.path.resolve()), details.st_dev, details.st_ino)
        with _ready_lock:
            if key in _ready:
                return
        # Read before writing anything: a foreign SQLite file must be left exactly as it was.
        # One statement, so one consistent look: three separate reads could straddle another writer's COMMIT of the
        # new schema (application_id still 0, the tables already there) and call our own new file foreign.
        application_id, version, tables = connection.execute(
            "SELECT a.application_id, v.user_version, (SELECT count(*) FROM sqlite_master) "
            "FROM pragma_application_id AS a, pragma_user_version AS v"
        ).fetchone()
        if application_id == 0 and version == 0 and tables == 0:
            pass  # new (or empty): created below
        elif application_id != APPLICATION_ID:
            _log.error("the drawings file %s has application_id %#x: not ours", self.path, application_id)
            raise StoreFileError(M_("The drawings file ({file}) belongs to another program. Nothing was "
                                    "changed; an admin can move it away (or set MNIST_LAB_DATA_DIR to another "
                                    "folder).", file=FILE_NAME))
        elif version > SCHEMA_VERSION:
            raise StoreFileError(M_("The drawings file ({file}) was written by a newer MNIST Lab (schema "
                                    "{version}; this one knows up to {known}): update the app.",
                                    file=FILE_NAME, version=version, known=SCHEMA_VERSION))
        connection.execute("PRAGMA journal_mode = WAL")  # persistent in the file; outside any transaction
        connection.execute("BEGIN IMMEDIATE")
        version = connection.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
        if version == 0:
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        else:
            while version < SCHEMA_VERSION:
                _log.info("migrating the drawings file %s from schema %d to %d", self.path, version, version + 1)
                MIGRATIONS[version](connection)
                version += 1
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
        problems = [row[0] for row in connection.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("database disk image is malformed: " + "; ".join(problems[:3]))
        with _ready_lock:
            _ready.add(key)

    # --- collections ------------------------------------------------------------------------------------------

    @staticmethod
    def _collection(row) -> Collection:
        return Collection(id=row[0], name=row[1], owner_id=row[2], owner_name=row[3], named=bool(row[4]),
                          created=row[5], size=row[6])

    _COLLECTION_QUERY = ("SELECT c.id, c.name, c.owner_id, c.owner_name, c.named, c.created, "
                         "(SELECT count(*) FROM drawings d WHERE d.collection_id = c.id) FROM collections c ")

    def get(self, collection_id: int) -> Collection:
        with self._connection() as connection:
            return self._get(connection, collection_id)

    def _get(self, connection, collection_id: int) -> Collection:
        row = connection.execute(self._COLLECTION_QUERY + "WHERE c.id = ?", (int(collection_id),)).fetchone()
        if row is None:
            raise CollectionNotFound(M_("That collection no longer exists (it was deleted)."))
        return self._collection(row)

    def own(self, visitor) -> Collection | None:
        """The visitor's collection (their newest, if an admin left them several), or None before their first save."""
        with self._connection() as connection:
            row = connection.execute(self._COLLECTION_QUERY + "WHERE c.owner_id = ? ORDER BY c.id DESC LIMIT 1",
                                     (visitor.id,)).fetchone()
        return self._collection(row) if row is not None else None

    def find(self, name) -> Collection:
        """The collection of that name (any case); CollectionNotFound if there is none."""
        name = checked_name(name)
        with self._connection() as connection:
            row = connection.execute(self._COLLECTION_QUERY + "WHERE c.name = ?", (name,)).fetchone()
        if row is None:
            raise CollectionNotFound(M_("There is no collection named {name} on this server.", name=repr(name)))
        return self._collection(row)

    def _own_or_new(self, connection, visitor) -> int:
        """The visitor's collection id, made now (named after them) if they have none; inside a write."""
        row = connection.execute("SELECT id FROM collections WHERE owner_id = ? ORDER BY id DESC LIMIT 1",
                                 (visitor.id,)).fetchone()
        if row is not None:
            return row[0]
        base = checked_name(visitor.name)
        for number in range(1, 1000):
            name = base if number == 1 else f"{base[:MAX_NAME_LENGTH - 4]}-{number}"
            try:
                connection.execute("SAVEPOINT new_collection")
                cursor = connection.execute(
                    "INSERT INTO collections (name, owner_id, owner_name, named, created) VALUES (?, ?, ?, 0, ?)",
                    (name, visitor.id, visitor.name, _now()))
                connection.execute("RELEASE new_collection")
                return cursor.lastrowid
            except sqlite3.IntegrityError:  # somebody's renamed collection has this visitor's name
                connection.execute("ROLLBACK TO new_collection")
        raise NameTakenError(M_("Could not find a free name for a new collection."))

    def create(self, visitor) -> Collection:
        """The visitor's collection, made now if they have none (named after them)."""
        with self._writing() as connection:
            collection_id = self._own_or_new(connection, visitor)
        return self.get(collection_id)

    def _check_may_change(self, connection, collection_id: int, by) -> Collection:
        collection = self._get(connection, collection_id)
        if by is None or not by.may_manage(collection.owner_id):
            raise NotYourCollectionError(M_("{name} belongs to {owner}: only they (or an admin) can change it.",
                                            name=repr(collection.name),
                                            owner=collection.owner_name or M_("somebody else")))
        return collection

    def rename(self, collection_id: int, name, by) -> Collection:
        """Give a collection a name to find it again (its owner or an admin); NameTakenError if it is taken."""
        name = checked_name(name)
        try:
            with self._writing() as connection:
                self._check_may_change(connection, collection_id, by)
                connection.execute("UPDATE collections SET name = ?, named = 1 WHERE id = ?", (name, collection_id))
        except sqlite3.IntegrityError:
            raise NameTakenError(M_("The name {name} is taken on this server: pick another.",
                                    name=repr(name))) from None
        return self.get(collection_id)

    def delete_collection(self, collection_id: int, by) -> None:
        """Delete a collection and all its drawings (its owner or an admin)."""
        with self._writing() as connection:
            self._check_may_change(connection, collection_id, by)
            connection.execute("DELETE FROM collections WHERE id = ?", (collection_id,))

    # --- drawings -----------------------------------------------------------------------------------------------

    def add(self, visitor, drawing: NewDrawing) -> SaveResult:
        """Save a checked drawing (see `new_drawing`) into the visitor's collection, made if they have none.

        The same 28x28 image saved again is the same row: its label becomes the one given now (a correction).
        """
        if not isinstance(drawing, NewDrawing):
            raise TypeError("add() takes a NewDrawing made by new_drawing()")
        digest = _image_hash(drawing.image)
        with self._writing() as connection:
            collection_id = self._own_or_new(connection, visitor)
            existing = connection.execute("SELECT id FROM drawings WHERE collection_id = ? AND image_sha256 = ?",
                                          (collection_id, digest)).fetchone()
            if existing is not None:
                connection.execute("UPDATE drawings SET label = ? WHERE id = ?", (drawing.label, existing[0]))
                drawing_id, added = existing[0], False
            else:
                self._check_size(connection, collection_id, 1)
                drawing_id = connection.execute(
                    "INSERT INTO drawings (collection_id, image_sha256, png, image, label, predicted, confidence, "
                    "model, source, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (collection_id, digest, drawing.png, drawing.image.tobytes(), drawing.label, drawing.predicted,
                     drawing.confidence, drawing.model, drawing.source, _now()),
                ).lastrowid
                added = True
        return SaveResult(self.get(collection_id), drawing_id, added)

    @staticmethod
    def _check_size(connection, collection_id: int, more: int) -> None:
        size = connection.execute("SELECT count(*) FROM drawings WHERE collection_id = ?",
                                  (collection_id,)).fetchone()[0]
        if size + more > MAX_DRAWINGS:
            raise CollectionFullError(
                M_("A collection holds at most {limit:,} drawings; this one has {size:,} and the file adds {more:,}. "
                   "Delete some first, or start another collection.", limit=MAX_DRAWINGS, size=size, more=more)
                if more > 1 else
                M_("A collection holds at most {limit:,} drawings; this one has {size:,}. Delete some first, or start "
                   "another collection.", limit=MAX_DRAWINGS, size=size))

    def drawings(self, collection_id: int) -> list[StoredDrawing]:
        """The collection's drawings, oldest first (without their PNGs: see `png`)."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT id, image, label, predicted, confidence, model, source, created FROM drawings "
                "WHERE collection_id = ? ORDER BY id", (int(collection_id),)).fetchall()
        return [StoredDrawing(id=row[0], image=np.frombuffer(row[1], np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE),
                              label=row[2], predicted=row[3], confidence=row[4], model=row[5], source=row[6],
                              created=row[7]) for row in rows]

    def png(self, drawing_id: int) -> bytes:
        """The picture a drawing was saved from (b"" for a drawing imported without one)."""
        with self._connection() as connection:
            row = connection.execute("SELECT png FROM drawings WHERE id = ?", (int(drawing_id),)).fetchone()
        if row is None:
            raise CollectionNotFound(M_("That drawing no longer exists."))
        return bytes(row[0])

    def arrays(self, collection_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(x uint8 (n, 28, 28), y uint8 (n,)): the collection in MNIST's own format, oldest first."""
        drawings = self.drawings(collection_id)
        x = np.stack([drawing.image for drawing in drawings]) if drawings else \
            np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        return x, np.array([drawing.label for drawing in drawings], dtype=np.uint8)

    def counts(self, collection_id: int) -> np.ndarray:
        """Drawings per label: (10,) int64."""
        counts = np.zeros(NUM_CLASSES, dtype=np.int64)
        with self._connection() as connection:
            for label, count in connection.execute(
                    "SELECT label, count(*) FROM drawings WHERE collection_id = ? GROUP BY label",
                    (int(collection_id),)):
                counts[label] = count
        return counts

    def fingerprint(self, collection_id: int) -> str:
        """A short digest that changes whenever the collection's drawings or labels change (for caches)."""
        digest = hashlib.sha256(str(int(collection_id)).encode())
        with self._connection() as connection:
            for row in connection.execute("SELECT image_sha256, label FROM drawings WHERE collection_id = ? "
                                          "ORDER BY id", (int(collection_id),)):
                digest.update(f"{row[0]}:{row[1]};".encode())
        return digest.hexdigest()[:16]

    def delete_drawing(self, collection_id: int, drawing_id: int, by) -> None:
        with self._writing() as connection:
            self._check_may_change(connection, collection_id, by)
            deleted = connection.execute("DELETE FROM drawings WHERE id = ? AND collection_id = ?",
                                         (int(drawing_id), int(collection_id))).rowcount
        if not deleted:
            raise CollectionNotFound(M_("That drawing is no longer in the collection."))

    # --- export and import ------------------------------------------------------------------------------------

    def export_npz(self, collection_id: int) -> bytes:
        """The collection as a .npz in MNIST's own format: x uint8 (n, 28, 28), y uint8 (n,)."""
        x, y = self.arrays(collection_id)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, x=x, y=y)
        return buffer.getvalue()

    def export_zip(self, collection_id: int) -> bytes:
        """A .zip of the collection: `<name>.npz` (as export_npz), the PNGs people drew (png/), and drawings.json
        (labels, predictions, models and dates, one entry per row of the .npz). `checked_import` reads it back."""
        collection = self.get(collection_id)
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT image, label, predicted, confidence, model, source, created, png FROM drawings "
                "WHERE collection_id = ? ORDER BY id", (int(collection_id),)).fetchall()
        x = np.stack([np.frombuffer(row[0], np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE) for row in rows]) if rows \
            else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        y = np.array([row[1] for row in rows], dtype=np.uint8)
        npz = io.BytesIO()
        np.savez_compressed(npz, x=x, y=y)
        entries = []
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{export_stem(collection.name)}.npz", npz.getvalue())
            for index, row in enumerate(rows):
                png_path = f"png/{index:05d}-{row[1]}.png" if row[7] else None
                if png_path:
                    archive.writestr(png_path, bytes(row[7]), compress_type=zipfile.ZIP_STORED)  # PNG is compressed
                entries.append({"index": index, "label": row[1], "predicted": row[2], "confidence": row[3],
                                "model": row[4], "source": row[5], "created": row[6], "png": png_path})
            manifest = {"format": EXPORT_FORMAT, "version": 1, "collection": collection.name, "exported": _now(),
                        "drawings": entries}
            archive.writestr("drawings.json", json.dumps(manifest, indent=1))
        return buffer.getvalue()

    def import_into(self, collection_id: int | None, imported: ImportedDigits, by) -> tuple[Collection, ImportResult]:
        """Add a checked import (see `checked_import`) to a collection (its owner or an admin), or, with
        collection_id None, to the visitor's own (made if they have none). Drawings already there are skipped."""
        if not isinstance(imported, ImportedDigits):
            raise TypeError("import_into() takes ImportedDigits made by checked_import()")
        with self._writing() as connection:
            if collection_id is None:
                collection_id = self._own_or_new(connection, by)
            else:
                self._check_may_change(connection, collection_id, by)
            known = {row[0] for row in connection.execute(
                "SELECT image_sha256 FROM drawings WHERE collection_id = ?", (collection_id,))}
            rows = []
            for index in range(len(imported)):
                digest = _image_hash(imported.x[index])
                if digest in known:
                    continue
                known.add(digest)
                rows.append((collection_id, digest, imported.pngs[index] or b"", imported.x[index].tobytes(),
                             int(imported.y[index]), imported.predicted[index], imported.confidence[index],
                             imported.models[index], "import", imported.created[index] or _now()))
            self._check_size(connection, collection_id, len(rows))
            connection.executemany(
                "INSERT INTO drawings (collection_id, image_sha256, png, image, label, predicted, confidence, model, "
                "source, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return self.get(collection_id), ImportResult(added=len(rows), duplicates=len(imported) - len(rows))


def export_stem(name: str) -> str:
    """A file name for a collection's export: its name with spaces as '-' (names hold nothing else unsafe)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip(".") or "digits"
