"""The batch writer: grouping of cheap batches, and the timer that commits a finished
batch within ``max_delay`` even when no other batch follows."""

from __future__ import annotations

import errno
import pathlib
import time
from collections.abc import Iterator

import pyarrow as pa
import pytest

from distilabel_nb.cache.records import BatchRef
from distilabel_nb.cache.sqlite import SQLiteManifest
from distilabel_nb.cache.store import SegmentStore
from distilabel_nb.engine.writer import BatchWriter


@pytest.fixture
def cache(tmp_path: pathlib.Path) -> Iterator[tuple[SQLiteManifest, SegmentStore]]:
    manifest = SQLiteManifest(tmp_path / "manifest.sqlite")
    yield manifest, SegmentStore(str(tmp_path))
    manifest.close()


def _writer(cache: tuple[SQLiteManifest, SegmentStore], stored: list[BatchRef],
            max_delay: float) -> BatchWriter:
    manifest, store = cache
    return BatchWriter(store, manifest, "k", 10, "p", "s", stored.extend, max_delay=max_delay)


def _batch(i: int) -> pa.Table:
    return pa.table({"x": list(range(i * 10, i * 10 + 10))})


def _committed(manifest: SQLiteManifest) -> list[int]:
    return sorted(manifest.state("k").batches)


def test_a_lone_finished_batch_is_committed_within_max_delay(
        cache: tuple[SQLiteManifest, SegmentStore]) -> None:
    stored: list[BatchRef] = []
    writer = _writer(cache, stored, max_delay=0.1)
    writer.add(0, _batch(0))
    assert _committed(cache[0]) == []  # grouped for a while, not written at once
    deadline = time.monotonic() + 5
    while not stored and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [ref.index for ref in stored] == [0]
    assert _committed(cache[0]) == [0]
    writer.close()


def test_cheap_batches_are_still_grouped_into_one_segment(
        cache: tuple[SQLiteManifest, SegmentStore]) -> None:
    stored: list[BatchRef] = []
    writer = _writer(cache, stored, max_delay=30)
    for i in range(5):
        writer.add(i, _batch(i))
    writer.close()
    assert [ref.index for ref in stored] == [0, 1, 2, 3, 4]
    assert len({ref.path for ref in stored}) == 1


def test_a_write_the_timer_failed_is_raised_in_the_steps_thread(
        cache: tuple[SQLiteManifest, SegmentStore], monkeypatch: pytest.MonkeyPatch) -> None:
    manifest, store = cache

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "write", full)
    writer = _writer(cache, [], max_delay=0.01)
    writer.add(0, _batch(0))
    time.sleep(0.3)
    with pytest.raises(OSError, match="No space"):
        writer.add(1, _batch(1))
    assert _committed(manifest) == []
