"""Buffers a step's finished batches and writes them as segments.

Cheap batches are grouped into one file (fewer files, fewer manifest transactions);
slow batches are written as soon as they finish, so an interruption loses at most about
``max_delay`` seconds of work. Tainted batches (with failed rows) are never written.
"""

from __future__ import annotations

import errno
import itertools
import sqlite3
import time
from collections.abc import Callable

import pyarrow as pa

from distilabel_nb.cache.manifest import BatchRef, Manifest
from distilabel_nb.cache.store import CacheFullError, SegmentFile, SegmentStore

__all__ = ["BatchWriter"]


class BatchWriter:
    def __init__(self, store: SegmentStore, manifest: Manifest, key: str, chunk: int,
                 pipeline: str, step: str, on_stored: Callable[[list[BatchRef]], None],
                 max_rows: int = 20_000, max_bytes: int = 32 << 20,
                 max_delay: float = 0.25) -> None:
        self.store = store
        self.manifest = manifest
        self.key = key
        self.chunk = chunk
        self.pipeline = pipeline
        self.step = step
        self.on_stored = on_stored
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_delay = max_delay
        self.pending: list[tuple[int, pa.Table]] = []
        self._since: float | None = None
        self._rows = 0
        self._bytes = 0
        self.bytes_written = 0

    def add(self, index: int, table: pa.Table) -> None:
        if not self.pending:
            self._since = time.monotonic()
        self.pending.append((index, table))
        self._rows += table.num_rows
        if len(self.pending) % 16 == 1:  # nbytes is slow on slices: sample it
            self._bytes += table.nbytes * 16
        waited = time.monotonic() - (self._since or 0.0)
        if self._rows >= self.max_rows or self._bytes >= self.max_bytes or waited >= self.max_delay:
            self.flush()

    def flush(self) -> None:
        """Write what is pending, one segment per run of consecutive batch indices."""
        runs: list[list[tuple[int, pa.Table]]] = []
        for index, table in self.pending:
            if runs and runs[-1][-1][0] == index - 1:
                runs[-1].append((index, table))
            else:
                runs.append([(index, table)])
        self.pending = []
        self._rows = self._bytes = 0
        for run in runs:
            tables = [t for _, t in run]
            segment = self.store.write(self.key, run[0][0], tables)
            self.on_stored(self.record(run[0][0], [t.num_rows for t in tables], segment))

    def record(self, first: int, rows: list[int], segment: SegmentFile) -> list[BatchRef]:
        """Commit a written segment holding batches ``first..`` to the manifest (also
        for segments a worker wrote); returns the batches' references."""
        try:
            self.manifest.add_segment(self.key, first, rows, segment.path, segment.nbytes,
                                      segment.checksum, self.chunk, self.pipeline, self.step)
        except sqlite3.OperationalError as error:
            self.store.delete([segment.path])  # unrecorded: nobody would ever read it
            if "full" in str(error):
                raise CacheFullError(str(self.manifest.path),
                                     OSError(errno.ENOSPC, str(error))) from error
            raise
        self.bytes_written += segment.nbytes
        offsets = list(itertools.accumulate([0, *rows[:-1]]))
        return [BatchRef(first + i, n, segment.path, offsets[i], segment.checksum)
                for i, n in enumerate(rows)]
