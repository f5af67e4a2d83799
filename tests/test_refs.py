"""Column references: passed-through columns are stored once, read back whole, and the
files they live in outlive their own key while a referrer needs them; damage anywhere
is detected; rows are those of a cache without references, whatever happened."""

from __future__ import annotations

import json
import pathlib
import sqlite3
import warnings
from typing import Any

import pyarrow as pa
import pytest

from distilabel_nb import CacheWarning, Pipeline
from distilabel_nb.cache import refs
from distilabel_nb.cache import store as store_module
from distilabel_nb.cache.admin import cache_clear, cache_verify, open_cache
from distilabel_nb.cache.gc import cache_gc
from distilabel_nb.cache.refs import ColumnPiece
from distilabel_nb.steps import KeepColumns, LoadDataFromDicts, StepInput, StepOutput, step

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def make_rows(n: int, salt: str = "") -> list[dict[str, Any]]:
    return [{"text": " ".join(WORDS[(i * 7 + j) % 8] + str(i * j % 13) for j in range(12))
             + salt, "i": i} for i in range(n)]


@step(inputs=["text"], outputs=["n_chars"])
def AddLength(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["n_chars"] = len(row["text"])
    yield inputs


@step(inputs=["text"], outputs=["upper"])
def Upper(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["upper"] = row["text"].upper()
    yield inputs


@step(inputs=["text"], outputs=["n_words"])
def CountWords(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["n_words"] = len(row["text"].split())
    yield inputs


@step(inputs=["text"], outputs=[])
def Reverse(inputs: StepInput) -> StepOutput:
    yield list(reversed(inputs))


@step(inputs=["i"], outputs=[])
def KeepEven(inputs: StepInput) -> StepOutput:
    yield [row for row in inputs if row["i"] % 2 == 0]


@step(inputs=["text"], outputs=[])
def Exclaim(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["text"] = row["text"] + "!"
    yield inputs


@step(inputs=["i"], outputs=[])
def AsFloat(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["i"] = float(row["i"])  # equal values, another type: not the same column
    yield inputs


def build(cache: str | pathlib.Path, rows: list[dict[str, Any]],
          name: str = "refs") -> Pipeline:
    with Pipeline(name=name, cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=rows, batch_size=50)
        # 70-row chunks over 50-row batches: an input chunk spans two upstream batches.
        add = AddLength(name="add", input_batch_size=70)
        upper = Upper(name="upper", input_batch_size=30)
        load >> add >> upper >> CountWords(name="count")
        upper >> Reverse(name="reverse") >> KeepEven(name="even")
        add >> Exclaim(name="exclaim") >> AsFloat(name="float")
        upper >> KeepColumns(name="keep", columns=["upper", "text"])
    return pipeline


def forget_memory() -> None:
    """What a new process starts with: no decoded segment (file layouts are known per
    store, and every pipeline built here opens its own)."""
    with store_module._DECODED.lock:
        store_module._DECODED.entries.clear()
        store_module._DECODED.used = 0


def result(pipeline: Pipeline, **options: Any) -> dict[str, list[dict[str, Any]]]:
    distiset = pipeline.run(progress=False, **options)
    tables = {name: distiset.arrow_table(name) for name in distiset}
    return {name: [*t.schema, *t.to_pylist()] for name, t in tables.items()}


def data_files(cache: pathlib.Path) -> set[str]:
    return {str(p) for p in cache.rglob("data/*/*/*.arrow")}


def db_rows(cache: pathlib.Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(cache / "v1" / "manifest.sqlite") as conn:
        rows = conn.execute("SELECT o.step, s.path, s.refs FROM segments s JOIN outputs o "
                            "ON s.key = o.key").fetchall()
    return [(step_name, str(cache / "v1" / path), refs_) for step_name, path, refs_ in rows]


def stored_columns(path: str) -> list[str]:
    """The columns a segment file holds itself."""
    data = pathlib.Path(path).read_bytes()
    data = data.removesuffix(store_module.REFS_TRAILER)
    return list(pa.ipc.open_file(pa.py_buffer(data)).schema.names)


def step_key(pipeline: Pipeline, name: str) -> str:
    from distilabel_nb.engine.plan import step_keys

    return step_keys(pipeline)[name][0]


def check_integrity(cache: pathlib.Path, leaks_allowed: bool = False) -> None:
    """Every file a segment owns or references exists; no file is neither."""
    needed: set[str] = set()
    for _, path, targets in db_rows(cache):
        needed.add(path)
        needed.update(str(cache / "v1" / t) for t in json.loads(targets or "[]"))
    on_disk = data_files(cache)
    assert needed <= on_disk, needed - on_disk
    if not leaks_allowed:
        assert on_disk <= needed, on_disk - needed


@pytest.fixture
def reference(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
              ) -> dict[str, list[dict[str, Any]]]:
    """The rows of the same pipeline in a cache without references."""
    monkeypatch.setenv("DISTILABEL_NB_DEDUP", "0")
    rows = result(build(tmp_path / "plain", make_rows(600)))
    monkeypatch.delenv("DISTILABEL_NB_DEDUP")
    return rows


# -- the metadata and the pieces ---------------------------------------------------------
def test_pieces_merge_and_slice() -> None:
    a, b = "data/ab/ab01/0-1-x.arrow", "data/cd/cd01/0-1-y.arrow"
    merged = refs.merge([ColumnPiece(a, "1", 0, 50), ColumnPiece(a, "1", 50, 20),
                         ColumnPiece(a, "1", 80, 5), ColumnPiece(b, "2", 0, 0),
                         ColumnPiece(b, "2", 0, 10)])
    assert merged == [ColumnPiece(a, "1", 0, 70), ColumnPiece(a, "1", 80, 5),
                      ColumnPiece(b, "2", 0, 10)]
    assert refs._slice(merged, 60, 20) == [ColumnPiece(a, "1", 60, 10),
                                           ColumnPiece(a, "1", 80, 5),
                                           ColumnPiece(b, "2", 0, 5)]


def test_metadata_round_trip_and_planted_paths_refused() -> None:
    piece = ColumnPiece("data/ab/ab01/0-1-x.arrow", "c", 3, 4)
    blob = refs.encode(["x", "y"], 4, {"x": [piece]})
    assert refs.decode({refs.META_KEY: blob}) == (["x", "y"], 4, {"x": [piece]})
    assert refs.decode(None) is None and refs.decode({b"other": b"1"}) is None
    for rel in ("../../etc/passwd.arrow", "/etc/passwd", "data/ab/../../x.arrow"):
        bad = refs.encode(["x"], 4, {"x": [piece._replace(rel=rel)]})
        with pytest.raises(ValueError):
            refs.decode({refs.META_KEY: bad})


def test_shared_columns_need_equal_values_and_type() -> None:
    inputs = pa.table({"a": [1, 2], "b": ["x", "y"], "c": [1, 2]})
    output = pa.table({"b": ["x", "y"], "a": [1, 3], "c": pa.array([1, 2], pa.int32()),
                       "d": [0, 0]})
    assert refs.shared_columns(inputs, output) == ["b"]
    assert refs.shared_columns(inputs, output.slice(0, 1)) == []


def test_store_writes_and_reads_references(tmp_path: pathlib.Path) -> None:
    store = store_module.SegmentStore(str(tmp_path / "v1"))
    source = store.write("ab" * 16, 0, [pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})])
    piece = ColumnPiece(store.rel(source.path), source.checksum, 1, 2)
    full = pa.table({"c": [0.5, 1.5], "b": ["y", "z"], "a": [2, 3]})
    referrer = store.write("cd" * 16, 0, [full], {"b": ([piece], pa.string()),
                                                   "a": ([piece], pa.int64())})
    assert referrer.refs == (source.path,)
    assert stored_columns(referrer.path) == ["c"]
    forget_memory()
    assert store.read(referrer.path, referrer.checksum).equals(full)
    # A piece naming anything but a cache data file, or of another type: stored in full.
    odd = store.write("ef" * 16, 0, [full], {
        "b": ([piece._replace(rel="../../outside.arrow")], pa.string()),
        "a": ([piece], pa.int32())})
    assert odd.refs == () and stored_columns(odd.path) == ["c", "b", "a"]
    pathlib.Path(source.path).unlink()
    forget_memory()
    error = store.damage(referrer.path, referrer.checksum)
    assert error is not None and error.path == referrer.path and error.source == source.path
    with pytest.raises(store_module.CorruptSegmentError, match="refers to"):
        store.read(referrer.path, referrer.checksum)


# -- bytes -------------------------------------------------------------------------------
def test_each_column_is_stored_once(tmp_path: pathlib.Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    rows = make_rows(2000)

    def chain(cache: pathlib.Path) -> Pipeline:
        with Pipeline(name="chain", cache_dir=cache) as pipeline:
            LoadDataFromDicts(name="load", data=rows, batch_size=50) >> AddLength(
                name="add") >> Upper(name="upper") >> CountWords(name="count")
        return pipeline

    table = chain(tmp_path / "dedup").run(progress=False).arrow_table("default")
    monkeypatch.setenv("DISTILABEL_NB_DEDUP", "0")
    plain = chain(tmp_path / "plain").run(progress=False).arrow_table("default")
    assert table.equals(plain)

    def size(path: pathlib.Path) -> int:
        return sum(int(p.stat().st_size) for p in path.rglob("data/*/*/*.arrow"))

    # Each column written once, in one file: what a perfect deduplication would store.
    once = 0
    for name in table.column_names:
        sink = pa.BufferOutputStream()
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        with pa.ipc.new_file(sink, table.select([name]).schema, options=options) as writer:
            writer.write_table(table.select([name]))
        once += sink.getvalue().size
    files = len(data_files(tmp_path / "dedup"))
    assert size(tmp_path / "dedup") <= 1.15 * once + 1500 * files
    assert size(tmp_path / "plain") >= 2.2 * size(tmp_path / "dedup")
    # Downstream files hold their own column only.
    for step_name, path, _ in db_rows(tmp_path / "dedup"):
        stored = stored_columns(path)
        own = {"load": ["text", "i"], "add": ["n_chars"], "upper": ["upper"],
               "count": ["n_words"]}[step_name]
        assert stored == own


def test_older_readers_take_a_referencing_segment_for_damaged(cache_dir: pathlib.Path) -> None:
    """A version from before references reads a segment with ``pa.ipc.open_file``: it
    must fail there (that version then recomputes), never return the table without its
    referenced columns. Segments without references stay plain Arrow files."""
    result(build(cache_dir, make_rows(100)))
    by_step = {s: p for s, p, _ in db_rows(cache_dir)}
    with pytest.raises(pa.ArrowInvalid):
        pa.ipc.open_file(pa.memory_map(by_step["count"]))
    assert pa.ipc.open_file(pa.memory_map(by_step["load"])).read_all().num_rows == 100
    assert pa.ipc.open_file(pa.memory_map(by_step["even"])).read_all().num_rows == 50


# -- rows --------------------------------------------------------------------------------
def test_rows_equal_those_of_a_plain_cache(cache_dir: pathlib.Path,
                                           reference: dict[str, Any]) -> None:
    assert result(build(cache_dir, make_rows(600))) == reference
    forget_memory()
    again = build(cache_dir, make_rows(600))
    assert result(again) == reference
    assert set(again.last_run.statuses().values()) == {"hit"}  # type: ignore[union-attr]
    stored = {s: stored_columns(p) for s, p, _ in
              db_rows(cache_dir)}
    assert stored["keep"] == []  # every column referenced
    full = ["text", "i", "n_chars", "upper"]
    assert stored["reverse"] == full and stored["even"] == full  # reordered, filtered
    assert stored["exclaim"] == ["text"] and stored["float"] == ["i"]  # changed: stored
    check_integrity(cache_dir)


def test_forced_rerun_of_everything(cache_dir: pathlib.Path,
                                    reference: dict[str, Any]) -> None:
    result(build(cache_dir, make_rows(600)))
    forget_memory()
    assert result(build(cache_dir, make_rows(600)), use_cache=False) == reference
    check_integrity(cache_dir)  # the old files went, none is missing
    forget_memory()
    assert result(build(cache_dir, make_rows(600))) == reference


@pytest.mark.parametrize("how", ["use_cache_false", "recompute"])
def test_loader_recomputed_alone(cache_dir: pathlib.Path, reference: dict[str, Any],
                                 how: str) -> None:
    result(build(cache_dir, make_rows(600)))
    forget_memory()
    pipeline = build(cache_dir, make_rows(600))
    if how == "use_cache_false":
        pipeline.steps["load"].use_cache = False
        assert result(pipeline) == reference
    else:
        assert result(pipeline, recompute=["load"]) == reference
    check_integrity(cache_dir)
    forget_memory()
    assert result(build(cache_dir, make_rows(600))) == reference


def test_cache_clear_of_the_loader(cache_dir: pathlib.Path,
                                   reference: dict[str, Any]) -> None:
    result(build(cache_dir, make_rows(600)))
    cache_clear(cache_dir, "refs", step="load")
    check_integrity(cache_dir)
    forget_memory()
    assert result(build(cache_dir, make_rows(600))) == reference


def test_evicted_upstream_keeps_the_files_its_referrers_read(
        cache_dir: pathlib.Path, reference: dict[str, Any]) -> None:
    pipeline = build(cache_dir, make_rows(600))
    result(pipeline)
    load_key = step_key(pipeline, "load")
    cache = open_cache(cache_dir)
    assert cache is not None
    manifest, store = cache
    gone, paths = manifest.evict([load_key])  # what gc does to the oldest key
    manifest.close()
    assert gone == [load_key] and paths == []  # every loader file is referenced
    store.remove(paths)
    assert cache_gc(cache_dir, orphan_grace=0)["orphans"] == 0  # held files are no orphans
    check_integrity(cache_dir, leaks_allowed=False)
    forget_memory()
    again = build(cache_dir, make_rows(600))
    assert result(again) == reference
    statuses = again.last_run.statuses()  # type: ignore[union-attr]
    assert statuses["load"] == "miss" and statuses["count"] == "hit"
    # The referrers go: the files they held go with them, and nothing else remains.
    cache_gc(cache_dir, max_size=0)
    assert data_files(cache_dir) == set()


def test_changed_data_then_back(cache_dir: pathlib.Path, reference: dict[str, Any]) -> None:
    first = build(cache_dir, make_rows(600))
    result(first)
    old_load = step_key(first, "load")
    changed = build(cache_dir, make_rows(600, salt="?"))
    rows = result(changed)
    assert rows["count"][-1]["text"].endswith("?")
    cache = open_cache(cache_dir)
    assert cache is not None
    _, paths = cache[0].evict([old_load])
    cache[0].close()
    cache[1].remove(paths)
    forget_memory()
    back = build(cache_dir, make_rows(600))
    assert result(back) == reference
    assert back.last_run.statuses()["count"] == "hit"  # type: ignore[union-attr]
    check_integrity(cache_dir)


# -- damage ------------------------------------------------------------------------------
def _damage(path: str) -> None:
    data = bytearray(pathlib.Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    pathlib.Path(path).write_bytes(bytes(data))


@pytest.mark.parametrize("held", [False, True])
def test_damaged_referenced_file_is_detected(cache_dir: pathlib.Path,
                                             reference: dict[str, Any], held: bool) -> None:
    pipeline = build(cache_dir, make_rows(600))
    result(pipeline)
    load_file = sorted(p for s, p, _ in db_rows(cache_dir) if s == "load")[0]
    if held:  # its own key forgotten, only referrers hold it
        cache = open_cache(cache_dir)
        assert cache is not None
        cache[0].evict([step_key(pipeline, "load")])
        cache[0].close()
    _damage(load_file)
    forget_memory()
    with pytest.warns(CacheWarning, match="damaged or missing"):
        rows = result(build(cache_dir, make_rows(600)))
    assert rows == reference
    check_integrity(cache_dir, leaks_allowed=True)
    forget_memory()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert result(build(cache_dir, make_rows(600))) == reference


def test_verify_checks_references(cache_dir: pathlib.Path) -> None:
    result(build(cache_dir, make_rows(600)))
    assert cache_verify(cache_dir)["damaged"] == []
    load_file = sorted(p for s, p, _ in db_rows(cache_dir) if s == "load")[0]
    pathlib.Path(load_file).unlink()
    damaged = cache_verify(cache_dir)["damaged"]
    steps = {d["step"] for d in damaged}
    # The loader's file and the downstream segments that read a column from it.
    assert {"load", "add", "upper", "count", "keep"} <= steps
    assert all(load_file in d["why"] or d["path"] == load_file for d in damaged)
    check_integrity(cache_dir, leaks_allowed=True)


def test_deleted_referenced_file_in_memory_cache_is_read_again(
        cache_dir: pathlib.Path, reference: dict[str, Any]) -> None:
    pipeline = build(cache_dir, make_rows(600))
    result(pipeline)
    result(pipeline)  # full hit: the decoded segments are in memory now
    for path in {p for s, p, _ in db_rows(cache_dir) if s == "load"}:
        pathlib.Path(path).unlink()
    with pytest.warns(CacheWarning):
        assert result(build(cache_dir, make_rows(600))) == reference


# -- an object store ---------------------------------------------------------------------
def test_object_store_references(tmp_path: pathlib.Path,
                                 reference: dict[str, Any]) -> None:
    uri = f"file://{tmp_path}/objects"
    pipeline = build(uri, make_rows(600))
    assert result(pipeline) == reference
    root = tmp_path / "objects"
    # Each step's files hold only the columns it changed or added, as on a local disk.
    owned = {e.step: {tuple(stored_columns(s.path))
                      for s in e.segments} for e in open_cache(uri)[0].outputs().values()}  # type: ignore[index]
    assert owned["count"] == {("n_words",)} and owned["keep"] == {()}
    assert owned["float"] == {("i",)}
    cache = open_cache(uri)
    assert cache is not None
    manifest, store = cache
    outputs = manifest.outputs()
    assert any(s.refs for e in outputs.values() for s in e.segments)
    gone, paths = manifest.evict([step_key(pipeline, "load")])
    manifest.close()
    assert gone and paths == []
    store.remove(paths)
    assert cache_gc(uri, orphan_grace=0)["orphans"] == 0
    forget_memory()
    again = build(uri, make_rows(600))
    assert result(again) == reference
    assert again.last_run.statuses()["count"] == "hit"  # type: ignore[union-attr]
    # A forced run replaces every output: the old files go, the new ones read back.
    forget_memory()
    assert result(build(uri, make_rows(600)), use_cache=False) == reference
    forget_memory()
    assert result(build(uri, make_rows(600))) == reference
    # A damaged referenced file: detected by verify, recomputed by a run.
    cache = open_cache(uri)
    assert cache is not None
    load_file = next(s.path for e in cache[0].outputs().values() if e.step == "load"
                     for s in e.segments)
    cache[0].close()
    _damage(load_file)
    forget_memory()
    with pytest.warns(CacheWarning):
        assert result(build(uri, make_rows(600))) == reference
    assert cache_verify(uri)["damaged"] == []
    cache_gc(uri, max_size=0, orphan_grace=0)
    assert not list(root.rglob("data/*/*/*.arrow"))
