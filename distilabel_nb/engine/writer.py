"""Buffers a step's finished batches and writes them as segments.

Cheap batches are grouped into one file (fewer files, fewer manifest transactions);
a batch waits at most ``max_delay`` seconds after it finished: a timer writes what is
pending then, whether or not another batch follows, so an interruption (even SIGKILL)
loses at most about ``max_delay`` seconds of finished work. Tainted batches (with failed
rows) are never written.

A batch computed from one input chunk comes with that chunk (``Source``): the columns it
passed through unchanged are, at write time, referenced where the input batches are
stored rather than written again (``distilabel_nb.cache.refs``); a column whose input
batches are not stored (yet) is written in full.
"""

from __future__ import annotations

import errno
import itertools
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import pyarrow as pa

from distilabel_nb.cache import refs as column_refs
from distilabel_nb.cache.manifest import BatchRef, Manifest
from distilabel_nb.cache.store import CacheFullError, SegmentFile, SegmentStore

if TYPE_CHECKING:
    from distilabel_nb.engine.channel import Channel, ChunkSpec

__all__ = ["BatchWriter", "Source"]

Shared = dict[str, tuple[list[column_refs.ColumnPiece], pa.DataType]]


class Source(NamedTuple):
    """The input a batch was computed from: one chunk of one upstream channel."""

    channel: Channel
    spec: ChunkSpec
    table: pa.Table


class _Passed(NamedTuple):
    """A pending batch's columns equal to its input's, and where that input is."""

    channel: Channel
    spec: ChunkSpec
    names: tuple[str, ...]


class BatchWriter:
    def __init__(self, store: SegmentStore, manifest: Manifest, key: str, batch_size: int,
                 pipeline: str, step: str, on_stored: Callable[[list[BatchRef]], None],
                 max_rows: int = 20_000, max_bytes: int = 32 << 20,
                 max_delay: float = 0.25) -> None:
        self.store = store
        self.manifest = manifest
        self.key = key
        self.batch_size = batch_size
        self.pipeline = pipeline
        self.step = step
        self.on_stored = on_stored
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_delay = max_delay
        self.pending: list[tuple[int, pa.Table, _Passed | None]] = []
        self._since: float | None = None
        self._rows = 0
        self._bytes = 0
        self.bytes_written = 0
        #: A consumer's writer may flush this one from its own thread
        #: (``Channel.commit_pending``), and the timer from its own.
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        #: A write the timer tried and failed, raised again by the next ``add``/``flush``.
        self._error: BaseException | None = None

    def add(self, index: int, table: pa.Table, source: Source | None = None) -> None:
        with self._lock:
            self._raise_timer_error()
            self._add(index, table, source)
            if self.pending and self._timer is None:
                self._start_timer()

    def _add(self, index: int, table: pa.Table, source: Source | None) -> None:
        if not self.pending:
            self._since = time.monotonic()
        passed = None
        if source is not None and column_refs.dedup_enabled():
            names = column_refs.shared_columns(source.table, table)
            if names:
                passed = _Passed(source.channel, source.spec, tuple(names))
        self.pending.append((index, table, passed))
        self._rows += table.num_rows
        if len(self.pending) % 16 == 1:  # nbytes is slow on slices: sample it
            self._bytes += table.nbytes * 16
        waited = time.monotonic() - (self._since or 0.0)
        if self._rows >= self.max_rows or self._bytes >= self.max_bytes or waited >= self.max_delay:
            self._flush()

    def flush(self) -> None:
        """Write what is pending, one segment per run of consecutive batch indices."""
        with self._lock:
            self._raise_timer_error()
            self._flush()

    def close(self) -> None:
        """Stop the timer and write what is pending (the step is over)."""
        with self._lock:
            self._cancel_timer()
            self.flush()

    # -- the timer: a finished batch is written within max_delay ----------------------
    def _start_timer(self) -> None:
        waited = time.monotonic() - (self._since or time.monotonic())
        self._timer = threading.Timer(max(0.0, self.max_delay - waited), self._on_timer)
        self._timer.daemon = True
        self._timer.name = f"distilabel_nb:writer:{self.step}"
        self._timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        with self._lock:
            if threading.current_thread() is not self._timer:
                return  # cancelled (or replaced) while it waited for the lock
            self._timer = None
            if self._error is not None:
                return
            try:
                self._flush()
            except BaseException as error:  # raised again in the step's thread
                self._error = error

    def _raise_timer_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _flush(self) -> None:
        self._cancel_timer()
        runs: list[list[tuple[int, pa.Table, _Passed | None]]] = []
        for item in self.pending:
            if runs and runs[-1][-1][0] == item[0] - 1:
                runs[-1].append(item)
            else:
                runs.append([item])
        self.pending = []
        self._rows = self._bytes = 0
        for run in runs:
            tables = [t for _, t, _ in run]
            shared = _shared([p for _, _, p in run])
            segment = self.store.write(self.key, run[0][0], tables, shared)
            self.on_stored(self.record(run[0][0], [t.num_rows for t in tables], segment))

    def record(self, first: int, rows: list[int], segment: SegmentFile) -> list[BatchRef]:
        """Commit a written segment holding batches ``first..`` to the manifest (also
        for segments a worker wrote); returns the batches' references."""
        try:
            self.manifest.add_segment(self.key, first, rows, segment.path, segment.nbytes,
                                      segment.checksum, self.batch_size, self.pipeline, self.step,
                                      refs=segment.refs)
        except sqlite3.OperationalError as error:
            self.store.delete([segment.path])  # unrecorded: nobody would ever read it
            if "full" in str(error):
                raise CacheFullError(f"{self.store.base}/manifest.sqlite",
                                     OSError(errno.ENOSPC, str(error))) from error
            raise
        self.bytes_written += segment.nbytes
        offsets = list(itertools.accumulate([0, *rows[:-1]]))
        return [BatchRef(first + i, n, segment.path, offsets[i], segment.checksum)
                for i, n in enumerate(rows)]


def _shared(passed: list[_Passed | None]) -> Shared:
    """For the columns every batch of a run passed through, where their rows live: the
    files that physically hold them, in row order. A column is left out (written in
    full) when any of its input batches is not stored or not known to this process."""
    if not passed or any(p is None for p in passed):
        return {}
    items = [p for p in passed if p is not None]
    shared: Shared = {}
    for name in set.intersection(*(set(p.names) for p in items)):
        found = _column_pieces(name, items)
        if found is not None:
            shared[name] = found
    return shared


def _column_pieces(name: str, items: list[_Passed]
                   ) -> tuple[list[column_refs.ColumnPiece], pa.DataType] | None:
    """Where column ``name`` of the inputs of ``items`` lives, in row order; None when a
    part of it is not stored, not known to this process, or of another type."""
    pieces: list[column_refs.ColumnPiece] = []
    kinds: set[pa.DataType] = set()
    for item in items:
        for index, start, count in item.spec:
            ref = item.channel.stored_ref(index)
            if ref is None:  # still pending in the producer's writer: write it now
                item.channel.commit_pending()
                ref = item.channel.stored_ref(index)
            store = item.channel.store
            found = None if ref is None else column_refs.column_pieces(
                store.layouts, ref.path, store.rel(ref.path), ref.checksum, name,
                ref.offset + start, count)
            if found is None:
                return None
            pieces += found[0]
            kinds.add(found[1])
    if len(kinds) != 1:
        return None
    return column_refs.merge(pieces), kinds.pop()
