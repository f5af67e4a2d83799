"""Corruption of every kind of file the cache holds: always detected, recomputed with a
``CacheWarning`` naming the step, never returned as data, never a crash."""

from __future__ import annotations

import pathlib
import random
import sqlite3
import warnings
from collections.abc import Callable

import pytest

from distilabel_nb import CacheWarning

from . import faultkit

Damage = Callable[[pathlib.Path, str], None]


def _first_segment(cache: pathlib.Path, step: str) -> pathlib.Path:
    paths = faultkit.segment_paths(cache, step)
    assert paths, f"no segment of {step}"
    return paths[0]


def _sql(cache: pathlib.Path, sql: str, *params: object) -> None:
    with sqlite3.connect(cache / "v1" / "manifest.sqlite") as conn:
        conn.execute(sql, params)


def _key(cache: pathlib.Path, step: str) -> str:
    with sqlite3.connect(cache / "v1" / "manifest.sqlite") as conn:
        return str(conn.execute("SELECT key FROM outputs WHERE step=?", (step,)).fetchone()[0])


# -- damage to segment files ---------------------------------------------------------------
def truncate_half(cache: pathlib.Path, step: str) -> None:
    path = _first_segment(cache, step)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def truncate_empty(cache: pathlib.Path, step: str) -> None:
    _first_segment(cache, step).write_bytes(b"")


def flip_bytes(cache: pathlib.Path, step: str) -> None:
    path = _first_segment(cache, step)
    data = bytearray(path.read_bytes())
    for offset in (len(data) // 3, len(data) // 2, len(data) - 20):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def garbage_file(cache: pathlib.Path, step: str) -> None:
    path = _first_segment(cache, step)
    path.write_bytes(random.Random(1).randbytes(path.stat().st_size))


def delete_file(cache: pathlib.Path, step: str) -> None:
    _first_segment(cache, step).unlink()


def swap_with_other_step(cache: pathlib.Path, step: str) -> None:
    """A valid Arrow file, of another step: only the checksum tells."""
    other = "load" if step != "load" else "upper"
    _first_segment(cache, step).write_bytes(_first_segment(cache, other).read_bytes())


def file_replaced_by_folder(cache: pathlib.Path, step: str) -> None:
    path = _first_segment(cache, step)
    path.unlink()
    path.mkdir()


# -- damage to manifest rows ---------------------------------------------------------------
def delete_segment_row(cache: pathlib.Path, step: str) -> None:
    _sql(cache, "DELETE FROM segments WHERE key=? AND first=0", _key(cache, step))


def wrong_checksum(cache: pathlib.Path, step: str) -> None:
    _sql(cache, "UPDATE segments SET checksum='0123456789abcdef' WHERE key=?", _key(cache, step))


def garbage_row_counts(cache: pathlib.Path, step: str) -> None:
    _sql(cache, "UPDATE segments SET rows='[10, 10, ' WHERE key=?", _key(cache, step))


def extra_row_counts(cache: pathlib.Path, step: str) -> None:
    """Counts that would slice the file wrongly (more batches than it holds)."""
    _sql(cache, "UPDATE segments SET rows=substr(rows, 1, length(rows) - 1) || ', 10]' "
         "WHERE key=?", _key(cache, step))


def fewer_batches(cache: pathlib.Path, step: str) -> None:
    """A completion record that claims fewer batches: a silent truncation if trusted."""
    _sql(cache, "UPDATE outputs SET n_batches=n_batches - 5 WHERE key=?", _key(cache, step))


def delete_outputs_row(cache: pathlib.Path, step: str) -> None:
    _sql(cache, "DELETE FROM outputs WHERE key=?", _key(cache, step))


def path_to_other_step(cache: pathlib.Path, step: str) -> None:
    other = "load" if step != "load" else "upper"
    with sqlite3.connect(cache / "v1" / "manifest.sqlite") as conn:
        (path,) = conn.execute("SELECT path FROM segments WHERE key=? LIMIT 1",
                               (_key(cache, other),)).fetchone()
        # One row: a step cut into several segments would collide on (key, path).
        conn.execute("UPDATE segments SET path=? WHERE rowid=(SELECT rowid FROM segments "
                     "WHERE key=? ORDER BY first LIMIT 1)", (path, _key(cache, step)))


FILE_DAMAGE = [truncate_half, truncate_empty, flip_bytes, garbage_file, delete_file,
               swap_with_other_step, file_replaced_by_folder]
ROW_DAMAGE = [wrong_checksum, garbage_row_counts, extra_row_counts, fewer_batches,
              path_to_other_step]
#: Damage that loses information without leaving a trace to warn about: recomputed.
SILENT_LOSS = [delete_segment_row, delete_outputs_row]


def _run(cache: pathlib.Path, data: pathlib.Path, recompute: tuple[str, ...] = ()
         ) -> tuple[dict[str, list[dict[str, object]]], list[str], object]:
    pipeline = faultkit.build(cache, data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        distiset = pipeline.run(progress=False, recompute=recompute)
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    return faultkit.rows_of(distiset), messages, pipeline.last_run


@pytest.fixture
def warm(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, pathlib.Path]:
    """A cache after one complete run; $FAULTKIT_LOG records later computations."""
    data = faultkit.write_data(tmp_path / "data.jsonl")
    cache = tmp_path / "cache"
    rows, messages, _ = _run(cache, data)
    assert rows == faultkit.expected() and not messages
    log = tmp_path / "log"
    monkeypatch.setenv("FAULTKIT_LOG", str(log))
    return {"cache": cache, "data": data, "log": log}


def _check(warm: dict[str, pathlib.Path], damage: Damage, step: str, warn: bool) -> None:
    """Damage ``step``'s cache, then run so that its output is read: a middle step's
    output is read only when a step after it runs (damage nobody reads stays unread,
    as it should: verifying every file on every run would cost a full read)."""
    damage(warm["cache"], step)
    downstream = {"load": ("upper",), "upper": ("nchars",), "words": ()}[step]
    rows, messages, report = _run(warm["cache"], warm["data"], downstream)
    assert rows == faultkit.expected(), "damaged cache data was returned"
    if warn:
        assert messages, "no CacheWarning"
        assert any(f"'{step}'" in m for m in messages), messages
    ran = {name for name, *_ in faultkit.read_log(warm["log"])}
    if step != "load":
        assert step in ran, f"{step} was not recomputed"
    assert "upper" not in ran or step in ("load", "upper"), "an intact upstream step re-ran"
    # Healed: the next run is a full hit, without warnings.
    rows, messages, report = _run(warm["cache"], warm["data"])
    assert rows == faultkit.expected() and not messages
    assert set(report.statuses().values()) == {"hit"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("step", ["upper", "words"])
@pytest.mark.parametrize("damage", FILE_DAMAGE, ids=lambda d: d.__name__)
def test_damaged_segment_file(warm: dict[str, pathlib.Path], damage: Damage, step: str) -> None:
    _check(warm, damage, step, warn=True)


@pytest.mark.parametrize("step", ["upper", "words"])
@pytest.mark.parametrize("damage", ROW_DAMAGE, ids=lambda d: d.__name__)
def test_damaged_manifest_row(warm: dict[str, pathlib.Path], damage: Damage, step: str) -> None:
    _check(warm, damage, step, warn=True)


@pytest.mark.parametrize("step", ["upper", "words"])
@pytest.mark.parametrize("damage", SILENT_LOSS, ids=lambda d: d.__name__)
def test_deleted_manifest_row(warm: dict[str, pathlib.Path], damage: Damage, step: str) -> None:
    _check(warm, damage, step, warn=False)


def test_damaged_loader_output(warm: dict[str, pathlib.Path]) -> None:
    _check(warm, flip_bytes, "load", warn=True)


# -- damage to the manifest database -------------------------------------------------------
def _db(cache: pathlib.Path) -> pathlib.Path:
    return cache / "v1" / "manifest.sqlite"


def _checkpoint(cache: pathlib.Path) -> None:
    with sqlite3.connect(_db(cache)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def garbage_db(cache: pathlib.Path) -> None:
    _checkpoint(cache)
    _db(cache).write_bytes(random.Random(2).randbytes(_db(cache).stat().st_size))


def truncated_db(cache: pathlib.Path) -> None:
    _checkpoint(cache)
    data = _db(cache).read_bytes()
    _db(cache).write_bytes(data[: len(data) // 2])


def zeroed_db_page(cache: pathlib.Path) -> None:
    _checkpoint(cache)
    data = bytearray(_db(cache).read_bytes())
    data[4096:8192] = bytes(4096)
    _db(cache).write_bytes(bytes(data))


def garbage_header_db(cache: pathlib.Path) -> None:
    _checkpoint(cache)
    data = bytearray(_db(cache).read_bytes())
    data[:100] = random.Random(3).randbytes(100)
    _db(cache).write_bytes(bytes(data))


def garbage_wal(cache: pathlib.Path) -> None:
    wal = _db(cache).with_name("manifest.sqlite-wal")
    wal.write_bytes(random.Random(4).randbytes(max(4096, wal.stat().st_size if wal.exists()
                                                   else 0)))


def deleted_db(cache: pathlib.Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        _db(cache).with_name("manifest.sqlite" + suffix).unlink(missing_ok=True)


@pytest.mark.parametrize("damage", [garbage_db, truncated_db, zeroed_db_page, garbage_header_db,
                                    garbage_wal, deleted_db], ids=lambda d: d.__name__)
def test_damaged_manifest_database(warm: dict[str, pathlib.Path],
                                   damage: Callable[[pathlib.Path], None]) -> None:
    damage(warm["cache"])
    rows, messages, _ = _run(warm["cache"], warm["data"])
    assert rows == faultkit.expected()
    if damage in (garbage_db, truncated_db, garbage_header_db):
        assert any("manifest" in m for m in messages), messages
    rows, messages, report = _run(warm["cache"], warm["data"])
    assert rows == faultkit.expected() and not messages
    assert set(report.statuses().values()) == {"hit"}  # type: ignore[attr-defined]


def test_everything_deleted_but_the_manifest(warm: dict[str, pathlib.Path]) -> None:
    import shutil

    shutil.rmtree(warm["cache"] / "v1" / "data")
    rows, messages, _ = _run(warm["cache"], warm["data"])
    assert rows == faultkit.expected()
    assert any("'upper'" in m for m in messages) and any("'words'" in m for m in messages)
