"""Garbage collection: least recently used first, ages, leases, stray files, sizes."""

from __future__ import annotations

import os
import pathlib
import sqlite3
import subprocess
import sys
import time

import pytest

from distilabel_nb import Pipeline
from distilabel_nb.cache.admin import cache_ls, format_size, parse_age, parse_size
from distilabel_nb.cache.gc import cache_gc
from distilabel_nb.cache.sqlite import SQLiteManifest
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step


@step(inputs=["x"], outputs=["y"])
def Double(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["y"] = row["x"] * 2
    yield inputs


def build(cache: pathlib.Path, name: str, n: int = 200) -> Pipeline:
    with Pipeline(name=name, cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"x": i, "p": name} for i in range(n)],
                                 batch_size=50)
        load >> Double(name="double", input_batch_size=50)
    return pipeline


def _db(cache: pathlib.Path) -> sqlite3.Connection:
    return sqlite3.connect(cache / "v1" / "manifest.sqlite")


def _files(cache: pathlib.Path) -> list[pathlib.Path]:
    return sorted((cache / "v1" / "data").glob("*/*/*.arrow"))


def _sizes(cache: pathlib.Path) -> dict[str, int]:
    return {e["pipeline"]: e["bytes"] for e in cache_ls(cache)}


def test_sizes_are_accounted_per_pipeline(cache_dir: pathlib.Path) -> None:
    build(cache_dir, "a").run(progress=False)
    build(cache_dir, "b", n=2000).run(progress=False)
    sizes = _sizes(cache_dir)
    assert set(sizes) == {"a", "b"} and sizes["b"] > sizes["a"] > 0
    on_disk = sum(p.stat().st_size for p in _files(cache_dir))
    assert sizes["a"] + sizes["b"] == on_disk


def test_least_recently_used_goes_first(cache_dir: pathlib.Path) -> None:
    build(cache_dir, "old").run(progress=False)
    time.sleep(0.02)
    build(cache_dir, "new").run(progress=False)
    sizes = _sizes(cache_dir)
    result = cache_gc(cache_dir, max_size=sizes["new"])
    assert result["bytes_freed"] == sizes["old"]
    assert set(_sizes(cache_dir)) == {"new"} or _sizes(cache_dir)["old"] == 0
    again = build(cache_dir, "new")
    again.run(progress=False)
    assert set(again.last_run.statuses().values()) == {"hit"}  # type: ignore[union-attr]
    # A hit counts as a use: "old" runs again (recomputed), then "new" is the oldest.
    old = build(cache_dir, "old")
    assert old.run(progress=False)["default"]["train"]["y"][:] == [
        2 * i for i in range(200)]
    assert set(old.last_run.statuses().values()) == {"miss"}  # type: ignore[union-attr]
    cache_gc(cache_dir, max_size=_sizes(cache_dir)["old"])
    assert _sizes(cache_dir).get("new", 0) == 0 and _sizes(cache_dir)["old"] > 0


def test_older_than(cache_dir: pathlib.Path) -> None:
    build(cache_dir, "a").run(progress=False)
    build(cache_dir, "b").run(progress=False)
    with _db(cache_dir) as conn:
        conn.execute("UPDATE outputs SET last_used=? WHERE pipeline='a'",
                     (time.time() - 40 * 86400,))
    result = cache_gc(cache_dir, older_than="30d")
    assert result["removed"] == 2
    sizes = _sizes(cache_dir)
    assert sizes.get("a", 0) == 0 and sizes["b"] > 0
    assert cache_gc(cache_dir, older_than="30d")["removed"] == 0


def test_dry_run_removes_nothing(cache_dir: pathlib.Path) -> None:
    build(cache_dir, "a").run(progress=False)
    before = _files(cache_dir)
    result = cache_gc(cache_dir, max_size=0, dry_run=True)
    assert result["removed"] == 2 and result["bytes_freed"] > 0
    assert _files(cache_dir) == before


@pytest.mark.parametrize("leased", ["load", "double"])
def test_leased_outputs_are_kept_until_released(cache_dir: pathlib.Path, leased: str) -> None:
    pipeline = build(cache_dir, "a")
    pipeline.run(progress=False)
    holder = SQLiteManifest(cache_dir / "v1" / "manifest.sqlite")
    with _db(cache_dir) as conn:
        key, = [k for (k,) in conn.execute("SELECT key FROM outputs WHERE step=?", (leased,))]
    holder.lease([key])  # what a run does before it reads the key's state
    result = cache_gc(cache_dir, max_size=0)
    assert result["skipped"] == 1 and result["removed"] == 1
    # "double" stores only its own column and references the loader's: the loader's file
    # stays while "double" is kept, though the loader's output is forgotten.
    assert len(_files(cache_dir)) == (2 if leased == "double" else 1)
    if leased == "double":
        from distilabel_nb.cache.store import SegmentStore
        store = SegmentStore(str(cache_dir / "v1"))
        rows = [store.read(r.path, r.checksum).slice(r.offset, r.rows)
                for _, r in sorted(holder.state(key).batches.items())]
        assert [row for t in rows for row in t.to_pylist()] == [
            {"x": i, "p": "a", "y": 2 * i} for i in range(200)]
    holder.release()
    assert cache_gc(cache_dir, max_size=0)["removed"] == 1
    assert _files(cache_dir) == []
    holder.close()


def test_leases_of_dead_processes_are_ignored(cache_dir: pathlib.Path) -> None:
    build(cache_dir, "a").run(progress=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with _db(cache_dir) as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM outputs")]
        for key in keys:
            conn.execute("INSERT INTO leases VALUES (?, 'gone', ?, ?, ?)",
                         (key, dead.pid, os.uname().nodename, time.time()))
    assert cache_gc(cache_dir, max_size=0)["removed"] == 2
    with _db(cache_dir) as conn:
        assert conn.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0


def test_stray_files_are_collected_after_a_grace_period(cache_dir: pathlib.Path) -> None:
    build(cache_dir, "a").run(progress=False)
    folder = _files(cache_dir)[0].parent
    stray = folder / "00000099-1-abcdef.arrow"
    stray.write_bytes(b"left by a killed process")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    temp = folder / f"00000100-1-abcdef.arrow.tmp-{dead.pid}"
    temp.write_bytes(b"half written")
    result = cache_gc(cache_dir, max_size="1TB")
    assert result["orphans"] == 1 and not temp.exists() and stray.exists()
    result = cache_gc(cache_dir, max_size="1TB", orphan_grace=0)
    assert result["orphans"] == 1 and not stray.exists()
    assert result["removed"] == 0 and len(_files(cache_dir)) == 2


def test_collected_outputs_are_recomputed(cache_dir: pathlib.Path) -> None:
    build(cache_dir, "a").run(progress=False)
    cache_gc(cache_dir, max_size=0)
    pipeline = build(cache_dir, "a")
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [{"x": i, "p": "a", "y": 2 * i} for i in range(200)]
    assert set(pipeline.last_run.statuses().values()) == {"miss"}  # type: ignore[union-attr]


def test_gc_of_no_cache_creates_nothing(tmp_path: pathlib.Path) -> None:
    assert cache_gc(tmp_path / "nothing", max_size=0)["removed"] == 0
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize(("text", "value"), [("10GB", 10**10), ("500MB", 5 * 10**8),
                                             ("1.5GiB", int(1.5 * 2**30)), ("0", 0),
                                             ("2k", 2000), (" 3 tb ", 3 * 10**12)])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize(("text", "value"), [("30d", 30 * 86400), ("12h", 43200),
                                             ("2w", 14 * 86400), ("90s", 90), ("5m", 300)])
def test_parse_age(text: str, value: float) -> None:
    assert parse_age(text) == value


@pytest.mark.parametrize("bad", ["ten GB", "10XB", "", "-1GB"])
def test_bad_sizes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(bad)


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 999, 1234, 5_600_000, 7 * 10**9)] == [
        "0 B", "999 B", "1.2 kB", "5.6 MB", "7.0 GB"]


_HOLDER = """
import sys, time
from distilabel_nb.cache.sqlite import SQLiteManifest
manifest = SQLiteManifest(__import__("pathlib").Path(sys.argv[1]))
manifest.lease(sys.argv[2:])     # what a run does before it reads the keys' state
print("leased", flush=True)
time.sleep(600)
"""


def test_gc_after_a_kernel_that_died_holding_leases_still_collects(
        cache_dir: pathlib.Path) -> None:
    """A process takes leases and is SIGKILLed; while it is a zombie (not reaped yet, as
    a kernel whose parent is busy) and after, its leases keep nothing."""
    build(cache_dir, "a").run(progress=False)
    with _db(cache_dir) as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM outputs")]
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(cache_dir / "v1" / "manifest.sqlite"), *keys],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert holder.stdout is not None and holder.stdout.readline() == b"leased\n"
    assert cache_gc(cache_dir, max_size=0)["skipped"] == 2  # alive: its leases hold
    holder.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # killed, not reaped: a zombie
        with open(f"/proc/{holder.pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    try:
        assert cache_gc(cache_dir, max_size=0)["removed"] == 2
        assert _files(cache_dir) == []
        with _db(cache_dir) as conn:
            assert conn.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0
    finally:
        holder.wait()


def test_a_lease_is_dead_when_its_pid_now_names_a_newer_process() -> None:
    from distilabel_nb.cache.records import process_alive

    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process_alive(newer.pid)
        assert process_alive(newer.pid, since=time.time())
        # a lease taken before this process existed was another process's
        assert not process_alive(newer.pid, since=time.time() - 3600)
    finally:
        newer.kill()
        newer.wait()
