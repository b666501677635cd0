"""mnist_core.handwriting: collections of people's drawings in SQLite: saving, listing, deleting, exporting and
importing, owners, checks of everything a visitor sends, concurrent writers, damaged and foreign files, migration."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import threading
import zipfile

import numpy as np
import pytest

from mnist_core import handwriting
from mnist_core.handwriting import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    CollectionFullError,
    CollectionNotFound,
    Handwriting,
    InvalidInput,
    NameTakenError,
    NotYourCollectionError,
    StoreFileError,
    checked_import,
    checked_label,
    checked_name,
    new_drawing,
    picture_png,
)
from mnist_core.visitors import Visitor

ANNA = Visitor("00000000000000a1", "visitor-00a1")
BEN = Visitor("00000000000000b2", "visitor-00b2")
TEACHER = Visitor("00000000000000c3", "visitor-00c3", admin=True)


def digit_image(seed: int) -> np.ndarray:
    """A distinct 28x28 uint8 picture for each seed (a stroke at a place and angle of its own)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((28, 28), np.uint8)
    top, left = rng.integers(3, 12, size=2)
    image[top : top + 14, left : left + 3] = 255
    image[rng.integers(0, 28), rng.integers(0, 28)] = rng.integers(1, 255)
    return image


def png_of(image: np.ndarray) -> bytes:
    return picture_png(np.kron(image, np.ones((10, 10), np.uint8)))  # a 280x280 "canvas"


def drawing(seed: int, label: int, predicted: int | None = None, confidence: float | None = 0.9):
    image = digit_image(seed)
    return new_drawing(png_of(image), image, label, predicted=label if predicted is None else predicted,
                       confidence=confidence, model="cnn")


@pytest.fixture
def store(tmp_path) -> Handwriting:
    return Handwriting(tmp_path / "data" / "handwriting.sqlite3")


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


# --- saving, listing, counting, deleting --------------------------------------------------------------------------


def test_a_saved_drawing_comes_back_with_everything_recorded(store):
    first = store.add(ANNA, drawing(1, label=7, predicted=1, confidence=0.62))
    assert first.added and first.collection.name == ANNA.name and first.collection.owner_id == ANNA.id
    store.add(ANNA, drawing(2, label=3))
    [seven, three] = store.drawings(first.collection.id)
    assert (seven.label, seven.predicted, seven.confidence, seven.model, seven.source) == (7, 1, 0.62, "cnn", "canvas")
    assert seven.mistaken and not three.mistaken
    assert np.array_equal(seven.image, digit_image(1)) and seven.image.dtype == np.uint8
    assert store.png(seven.id) == png_of(digit_image(1))
    assert store.counts(first.collection.id).tolist() == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    assert store.own(ANNA).size == 2 and store.own(BEN) is None  # Ben has saved nothing: no collection yet


def test_a_float_image_from_preprocessing_is_kept_as_uint8():
    image = digit_image(3).astype(np.float32) / 255.0
    kept = new_drawing(png_of(digit_image(3)), image, 4)
    assert kept.image.dtype == np.uint8 and np.array_equal(kept.image, digit_image(3))


def test_the_same_drawing_saved_twice_is_one_row_with_the_latest_label(store):
    first = store.add(ANNA, drawing(1, label=7))
    again = store.add(ANNA, drawing(1, label=1))
    assert not again.added and again.drawing_id == first.drawing_id
    assert [(d.id, d.label) for d in store.drawings(first.collection.id)] == [(first.drawing_id, 1)]
    # The same drawing in somebody else's collection is theirs: a row of its own.
    assert store.add(BEN, drawing(1, label=7)).added


def test_deleting_a_drawing_and_a_whole_collection(store):
    saved = [store.add(ANNA, drawing(seed, label=seed % 10)) for seed in range(4)]
    collection = saved[0].collection.id
    store.delete_drawing(collection, saved[1].drawing_id, by=ANNA)
    assert [d.id for d in store.drawings(collection)] == [saved[0].drawing_id, saved[2].drawing_id,
                                                         saved[3].drawing_id]
    with pytest.raises(CollectionNotFound):
        store.delete_drawing(collection, saved[1].drawing_id, by=ANNA)
    store.delete_collection(collection, by=ANNA)
    assert store.own(ANNA) is None and store.drawings(collection) == []
    with sqlite3.connect(store.path) as connection:  # the drawings went with it (ON DELETE CASCADE)
        assert connection.execute("SELECT count(*) FROM drawings").fetchone()[0] == 0
    assert store.add(ANNA, drawing(9, label=9)).collection.id != collection  # a new one at the next save


def test_only_the_owner_or_an_admin_changes_a_collection(store):
    anna = store.add(ANNA, drawing(1, label=1)).collection
    drawing_id = store.drawings(anna.id)[0].id
    for change in (lambda: store.delete_drawing(anna.id, drawing_id, by=BEN),
                   lambda: store.delete_collection(anna.id, by=BEN),
                   lambda: store.rename(anna.id, "bens now", by=BEN),
                   lambda: store.import_into(anna.id, checked_import(store.export_zip(anna.id)), by=BEN),
                   lambda: store.delete_collection(anna.id, by=None)):
        with pytest.raises(NotYourCollectionError, match="only they \\(or an admin\\) can change it"):
            change()
    assert store.get(anna.id).size == 1 and store.get(anna.id).name == ANNA.name
    store.rename(anna.id, "class 3b anna", by=TEACHER)
    store.delete_drawing(anna.id, drawing_id, by=TEACHER)
    store.delete_collection(anna.id, by=TEACHER)
    assert store.own(ANNA) is None


def test_a_named_collection_is_found_again_by_its_name_in_any_case(store):
    anna = store.add(ANNA, drawing(1, label=1)).collection
    assert not anna.named
    renamed = store.rename(anna.id, "  Anna's digits ".replace("'", ""), by=ANNA)
    assert renamed.name == "Annas digits" and renamed.named
    assert store.find("annas DIGITS").id == anna.id
    with pytest.raises(CollectionNotFound, match="no collection named"):
        store.find("nobody")
    store.add(BEN, drawing(2, label=2))
    with pytest.raises(NameTakenError, match="taken"):
        store.rename(store.own(BEN).id, "ANNAS DIGITS", by=BEN)


def test_a_new_visitor_whose_name_is_taken_gets_a_numbered_collection(store):
    taken = store.add(ANNA, drawing(1, label=1)).collection
    store.rename(taken.id, BEN.name, by=ANNA)  # Anna named hers like Ben's default
    assert store.add(BEN, drawing(2, label=2)).collection.name == f"{BEN.name}-2"


@pytest.mark.parametrize(("name", "message"), [
    ("", "Give the collection a name"),
    (None, "Give the collection a name"),
    ("x" * 49, "at most 48 characters"),
    ("<b>bold</b>", "Use letters, digits"),
    ("-starts-with-dash", "Use letters, digits"),
    ("ｆｕｌｌｗｉｄｔｈ", "Use letters, digits"),
    ("two  spaces", "One space at a time"),
    ("line\nbreak", "Use letters, digits"),
])
def test_collection_names_are_checked(name, message):
    with pytest.raises(InvalidInput, match=message):
        checked_name(name)


@pytest.mark.parametrize("label", [10, -1, True, 3.0, "7", None])
def test_labels_are_digits(label):
    with pytest.raises(InvalidInput, match="digit from 0 to 9"):
        checked_label(label)


@pytest.mark.parametrize(("change", "message"), [
    (dict(png=b"GIF89a..."), "not a PNG"),
    (dict(label=12), "digit from 0 to 9"),
    (dict(confidence=1.5), "probability from 0 to 1"),
    (dict(confidence=float("nan")), "probability from 0 to 1"),
    (dict(image=np.zeros((20, 20), np.uint8)), "must be 28 x 28"),
    (dict(image=np.full((28, 28), np.nan, np.float32)), "uint8, or floats"),
    (dict(model="x" * 500), "short printable text"),
    (dict(source="telepathy"), "comes from one of"),
])
def test_a_drawing_that_is_not_one_is_refused(change, message):
    values = dict(png=png_of(digit_image(1)), image=digit_image(1), label=1, predicted=1, confidence=0.5,
                  model="cnn", source="canvas") | change
    with pytest.raises(InvalidInput, match=message):
        new_drawing(**values)


def test_a_full_collection_refuses_more(store, monkeypatch):
    monkeypatch.setattr(handwriting, "MAX_DRAWINGS", 3)
    for seed in range(3):
        store.add(ANNA, drawing(seed, label=1))
    with pytest.raises(CollectionFullError, match="at most 3 drawings"):
        store.add(ANNA, drawing(7, label=1))
    assert store.add(ANNA, drawing(0, label=2)).added is False  # relabelling one already there still works


def test_the_data_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_DATA_DIR", str(tmp_path / "elsewhere"))
    store = Handwriting()
    store.add(ANNA, drawing(1, label=1))
    assert store.path == tmp_path / "elsewhere" / "handwriting.sqlite3" and store.path.is_file()


# --- export and import --------------------------------------------------------------------------------------------


def test_export_npz_is_mnists_own_format(store):
    for seed, label in enumerate([5, 0, 5]):
        store.add(ANNA, drawing(seed, label=label))
    with np.load(io.BytesIO(store.export_npz(store.own(ANNA).id)), allow_pickle=False) as exported:
        assert sorted(exported.files) == ["x", "y"]
        assert exported["x"].dtype == np.uint8 and exported["x"].shape == (3, 28, 28)
        assert exported["y"].dtype == np.uint8 and exported["y"].tolist() == [5, 0, 5]
        assert np.array_equal(exported["x"][1], digit_image(1))


def test_an_exported_zip_imports_into_another_collection_with_pictures_and_predictions(store):
    saved = [store.add(ANNA, drawing(seed, label=seed, predicted=(seed + 1) % 10 if seed == 2 else seed))
             for seed in range(4)]
    exported = store.export_zip(saved[0].collection.id)
    with zipfile.ZipFile(io.BytesIO(exported)) as archive:
        names = archive.namelist()
        assert f"{ANNA.name}.npz" in names and "drawings.json" in names
        assert sorted(name for name in names if name.startswith("png/")) == [f"png/{i:05d}-{i}.png" for i in range(4)]

    collection, result = store.import_into(None, checked_import(exported), by=BEN)
    assert (result.added, result.duplicates) == (4, 0) and collection.owner_id == BEN.id
    theirs, mine = store.drawings(saved[0].collection.id), store.drawings(collection.id)
    assert [(d.label, d.predicted, d.confidence, d.model, d.created) for d in mine] == \
        [(d.label, d.predicted, d.confidence, d.model, d.created) for d in theirs]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(mine, theirs))
    assert [store.png(d.id) for d in mine] == [store.png(d.id) for d in theirs]
    assert [d.source for d in mine] == ["import"] * 4 and [d.mistaken for d in mine] == [False, False, True, False]

    # Importing the same file again adds nothing; a bare .npz of the same drawings neither.
    assert store.import_into(collection.id, checked_import(exported), by=BEN)[1].duplicates == 4
    again = store.import_into(collection.id, checked_import(store.export_npz(collection.id)), by=BEN)[1]
    assert (again.added, again.duplicates) == (0, 4)


def test_a_bare_npz_with_int64_labels_imports_without_pictures(store):
    x = np.stack([digit_image(seed) for seed in range(3)])
    collection, result = store.import_into(None, checked_import(npz_bytes(x=x, y=np.array([1, 2, 3]))), by=ANNA)
    assert result.added == 3 and store.counts(collection.id)[1:4].tolist() == [1, 1, 1]
    assert all(store.png(d.id) == b"" and d.predicted is None for d in store.drawings(collection.id))


def test_a_collection_that_would_overflow_refuses_the_whole_import(store, monkeypatch):
    monkeypatch.setattr(handwriting, "MAX_DRAWINGS", 4)
    store.add(ANNA, drawing(100, label=1))
    x = np.stack([digit_image(seed) for seed in range(4)])
    with pytest.raises(CollectionFullError, match="adds 4"):
        store.import_into(None, checked_import(npz_bytes(x=x, y=np.ones(4, np.uint8))), by=ANNA)
    assert store.own(ANNA).size == 1


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


GOOD_X = np.stack([digit_image(seed) for seed in range(3)])
GOOD_Y = np.array([1, 2, 3], np.uint8)


def exported_with(manifest_change=None, drop=()) -> bytes:
    """A My digits export of GOOD_X/GOOD_Y, its drawings.json changed by `manifest_change`."""
    entries = [{"index": i, "label": int(GOOD_Y[i]), "predicted": None, "confidence": None, "model": None,
                "source": "canvas", "created": "2026-11-30T10:00:00+00:00", "png": f"png/{i:05d}.png"}
               for i in range(3)]
    manifest = {"format": "mnist-lab-digits", "version": 1, "drawings": entries}
    if manifest_change:
        manifest_change(manifest)
    files = {"mine.npz": npz_bytes(x=GOOD_X, y=GOOD_Y), "drawings.json": json.dumps(manifest).encode()}
    files |= {f"png/{i:05d}.png": png_of(GOOD_X[i]) for i in range(3)}
    return zip_bytes({name: data for name, data in files.items() if name not in drop})


def bomb() -> bytes:
    """A .npz whose x.npy unpacks to 30 MB of zeros (a collection's x is at most 1.6 MB) from 30 kilobytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                          "shape": (38_000, 28, 28)})
            member.write(header.getvalue())
            chunk = bytes(784_000)
            for _ in range(38):
                member.write(chunk)
        archive.writestr("y.npy", npy_bytes(np.zeros(38_000, np.uint8)))
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"just some text, not a zip", "neither a .npz nor a .zip"),
    (npz_bytes(x_train=GOOD_X, y_train=GOOD_Y), "exactly two arrays, x .* it holds x_train, y_train"),
    (npz_bytes(x=GOOD_X.astype(np.float32), y=GOOD_Y), "holds float32 values"),
    (npz_bytes(x=GOOD_X[:, :20, :20], y=GOOD_Y), r"shaped \(n, 28, 28\), not \(3, 20, 20\)"),
    (npz_bytes(x=GOOD_X, y=GOOD_Y[:2]), "one label per image"),
    (npz_bytes(x=GOOD_X, y=np.array([1, 2, 11], np.uint8)), "labels from 1 to 11"),
    (npz_bytes(x=GOOD_X, y=np.array([1, -2, 3])), "labels from -2 to 3"),
    (npz_bytes(x=GOOD_X[:0], y=GOOD_Y[:0]), "no drawings"),
    (zip_bytes({"x.npy": npy_bytes(np.array([{"a": 1}], dtype=object)), "y.npy": npy_bytes(GOOD_Y)}), "object"),
    (zip_bytes({"x.npy": npy_bytes(GOOD_X)[:-100], "y.npy": npy_bytes(GOOD_Y)}), "truncated"),
    (zip_bytes({"x.npy": b"not an npy file at all", "y.npy": npy_bytes(GOOD_Y)}), "not a readable .npy"),
    (exported_with(lambda m: m["drawings"][1].update(label=9)), "labelled 9 in drawings.json but 2"),
    (exported_with(lambda m: m["drawings"].pop()), "does not describe its 3 drawings"),
    (exported_with(lambda m: m.update(format="something else")), "not an export of MNIST Lab"),
    (exported_with(lambda m: m["drawings"][0].update(png="../../etc/passwd")), "names a PNG the file does not"),
    (exported_with(lambda m: m["drawings"][0].update(predicted=99)), "digit from 0 to 9"),
    (exported_with(lambda m: m["drawings"][0].update(created="x" * 500)), "short printable text"),
    (exported_with(drop=("png/00001.png",)), "names a PNG the file does not"),
    (zip_bytes({"a.npz": npz_bytes(x=GOOD_X, y=GOOD_Y), "b.npz": npz_bytes(x=GOOD_X, y=GOOD_Y)}), "neither"),
])
def test_an_import_that_is_not_a_collection_is_refused_with_a_reason(data, message):
    with pytest.raises(InvalidInput, match=message):
        checked_import(data)


def test_an_import_too_large_or_too_long_or_a_bomb_is_refused_before_unpacking(monkeypatch):
    with pytest.raises(InvalidInput, match="larger than 20 MB"):
        checked_import(b"PK" + bytes(20_000_001))
    with pytest.raises(InvalidInput, match="too large"):
        checked_import(bomb())
    many = np.zeros((2001, 28, 28), np.uint8)
    with pytest.raises(InvalidInput, match="too large|holds 2,001 drawings"):
        checked_import(npz_bytes(x=many, y=np.zeros(2001, np.uint8)))
    monkeypatch.setattr(handwriting, "MAX_DRAWINGS", 2)
    with pytest.raises(InvalidInput, match="holds 3 drawings; a collection holds at most 2"):
        checked_import(npz_bytes(x=GOOD_X, y=GOOD_Y))


def test_a_good_export_made_by_hand_is_read_with_its_pictures():
    imported = checked_import(exported_with())
    assert len(imported) == 3 and imported.y.tolist() == [1, 2, 3]
    assert imported.pngs[2] == png_of(GOOD_X[2]) and imported.created[0] == "2026-11-30T10:00:00+00:00"


# --- many writers at once ---------------------------------------------------------------------------------------


def test_concurrent_writers_lose_no_rows_and_keep_the_file_sound(tmp_path):
    """Eight sessions save at once, each thread through its own connection (its own Handwriting), four visitors two
    threads each; every drawing is kept, and the same drawing sent by all of them at once is one row."""
    path = tmp_path / "handwriting.sqlite3"
    visitors = [Visitor(f"{index:016x}", f"visitor-{index:04x}") for index in range(4)]
    per_thread, threads_per_visitor = 25, 2
    start = threading.Barrier(len(visitors) * threads_per_visitor)
    failures = []

    same = drawing(999_999, label=5)

    def save(visitor_index: int, thread_index: int):
        try:
            store = Handwriting(path)
            mine = [drawing(10_000 * visitor_index + 1000 * thread_index + number, label=number % 10)
                    for number in range(per_thread)]
            start.wait()
            for each in mine:
                store.add(visitors[visitor_index], each)
                store.add(visitors[visitor_index], same)  # the same drawing from every thread at once
        except Exception as error:  # noqa: BLE001 - reported below with the thread that failed
            failures.append((visitor_index, thread_index, error))

    threads = [threading.Thread(target=save, args=(v, t)) for v in range(len(visitors))
               for t in range(threads_per_visitor)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    store = Handwriting(path)
    for visitor in visitors:
        collection = store.own(visitor)
        assert collection.size == per_thread * threads_per_visitor + 1
        assert len({tuple(d.image.ravel()) for d in store.drawings(collection.id)}) == collection.size
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("SELECT count(*) FROM collections").fetchone()[0] == len(visitors)


# --- damaged, foreign and old files ------------------------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_a_message_and_stays_as_it_was(tmp_path):
    path = tmp_path / "handwriting.sqlite3"
    content = b"these are somebody's notes, not a database\n" * 100
    path.write_bytes(content)
    store = Handwriting(path)
    for action in (lambda: store.own(ANNA), lambda: store.add(ANNA, drawing(1, label=1))):
        with pytest.raises(StoreFileError, match="damaged or not a database.*an admin can move it away"):
            action()
    assert path.read_bytes() == content


def test_a_damaged_database_is_a_message(tmp_path):
    good = tmp_path / "good.sqlite3"
    store = Handwriting(good)
    for seed in range(60):  # a few pages of drawings
        store.add(ANNA, drawing(seed, label=seed % 10))
    damaged = tmp_path / "damaged.sqlite3"  # a file of its own: this process has not checked it yet
    data = bytearray(good.read_bytes())
    assert len(data) > 16 * 4096
    data[4096 * 3 : 4096 * 12] = os.urandom(4096 * 9)  # pages of the tables, not the header
    damaged.write_bytes(bytes(data))
    with pytest.raises(StoreFileError, match="damaged or not a database"):
        Handwriting(damaged).drawings(1)  # the first use checks the file (PRAGMA quick_check)


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path):
    path = tmp_path / "handwriting.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE recipes (name TEXT)")
        connection.execute("INSERT INTO recipes VALUES ('bread')")
    connection.close()
    before = path.read_bytes()
    with pytest.raises(StoreFileError, match="belongs to another program"):
        Handwriting(path).add(ANNA, drawing(1, label=1))
    assert path.read_bytes() == before and not (tmp_path / "handwriting.sqlite3-wal").exists()


def test_a_file_from_a_newer_app_is_refused(tmp_path):
    path = tmp_path / "handwriting.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        connection.execute("CREATE TABLE collections (id INTEGER PRIMARY KEY)")
    connection.close()
    with pytest.raises(StoreFileError, match="newer MNIST Lab"):
        Handwriting(path).own(ANNA)


def test_a_fifo_in_place_of_the_file_is_refused_without_blocking(tmp_path):
    path = tmp_path / "handwriting.sqlite3"
    os.mkfifo(path)
    with pytest.raises(StoreFileError, match="not a regular file"):
        Handwriting(path).own(ANNA)


SCHEMA_V1 = [
    "CREATE TABLE collections (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE COLLATE NOCASE, "
    "owner_id TEXT NOT NULL, created TEXT NOT NULL)",
    "CREATE TABLE drawings (id INTEGER PRIMARY KEY, collection_id INTEGER NOT NULL REFERENCES collections (id) "
    "ON DELETE CASCADE, png BLOB NOT NULL, image BLOB NOT NULL, label INTEGER NOT NULL, predicted INTEGER, "
    "confidence REAL, model TEXT, created TEXT NOT NULL)",
]


def test_a_version_1_file_is_migrated_keeping_its_drawings_and_dropping_duplicates(tmp_path):
    """Version 1 had no hashes (the same drawing could be saved twice), no owner names and no sources."""
    path = tmp_path / "handwriting.sqlite3"
    with sqlite3.connect(path) as connection:
        for statement in SCHEMA_V1:
            connection.execute(statement)
        connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        connection.execute("PRAGMA user_version = 1")
        connection.execute("INSERT INTO collections VALUES (1, 'annas digits', ?, '2026-11-01T10:00:00+00:00')",
                           (ANNA.id,))
        rows = [(1, png_of(digit_image(1)), digit_image(1).tobytes(), 7, 1, 0.6, "cnn", "2026-11-01T10:01:00+00:00"),
                (1, png_of(digit_image(2)), digit_image(2).tobytes(), 2, 2, 0.9, "cnn", "2026-11-01T10:02:00+00:00"),
                (1, png_of(digit_image(1)), digit_image(1).tobytes(), 7, 1, 0.6, "cnn", "2026-11-01T10:03:00+00:00")]
        connection.executemany("INSERT INTO drawings (collection_id, png, image, label, predicted, confidence, model, "
                               "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    connection.close()

    store = Handwriting(path)
    collection = store.find("Annas Digits")
    assert collection.owner_id == ANNA.id and collection.named and collection.size == 2
    kept = store.drawings(collection.id)
    assert [(d.id, d.label, d.predicted, d.source) for d in kept] == [(1, 7, 1, "canvas"), (2, 2, 2, "canvas")]
    assert store.png(1) == png_of(digit_image(1))
    assert not store.add(ANNA, drawing(2, label=2)).added  # hashed now: the same drawing is recognised
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert "drawings_v1" not in [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]


def test_a_copied_store_keeps_working(tmp_path, store):
    """The file can be copied away (a backup) and opened elsewhere: nothing in it depends on its path."""
    store.add(ANNA, drawing(1, label=1))
    copy = tmp_path / "backup" / "handwriting.sqlite3"
    copy.parent.mkdir()
    shutil.copy2(store.path, copy)
    assert Handwriting(copy).own(ANNA).size == 1
