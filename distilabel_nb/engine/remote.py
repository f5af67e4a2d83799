"""One batch computed where the data is: a worker reads its inputs from the cache and
writes its output there, and only a reference travels back to the driver.

A backend that runs steps on other machines (Ray) can take the data plane off the
driver: the executor hands it, per batch, ``Piece`` lists instead of tables (a stored
upstream batch travels as its ``BatchRef``, a batch still only in memory as a table)
and a ``BatchTarget``; the worker runs ``compute_stored`` and returns a ``StoredBatch``.
The driver then records the segment in the manifest, so the commit marker is still
written after the data file and a worker that dies leaves an orphan file, never a batch
that looks complete. Batches with failed rows (or built from such rows) are not
written: their table comes back to the driver as in a local run.

A worker stores every column of its output (no column references: the upstream
columns' locations and layouts are the driver's knowledge); it reads referencing
segments of other steps as any reader does, through ``SegmentStore.read``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa

from distilabel_nb.cache.manifest import BatchRef
from distilabel_nb.cache.store import SegmentFile, SegmentStore
from distilabel_nb.tables import concat, empty_table

__all__ = ["BatchTarget", "Piece", "StoredBatch", "assemble", "compute_stored",
           "has_failed_rows"]

#: Rows ``[start, start + count)`` of one upstream batch: stored (a ``BatchRef``) or in
#: memory (a table).
Piece = tuple[BatchRef | pa.Table, int, int]


@dataclasses.dataclass(frozen=True)
class BatchTarget:
    """Where a batch's output goes: batch ``index`` of cache key ``key``; not written
    when ``write`` is False (an input came from a batch with failed rows)."""

    key: str
    index: int
    write: bool


@dataclasses.dataclass(frozen=True)
class StoredBatch:
    """A batch computed by a worker: its segment when written, else its table."""

    rows: int
    segment: SegmentFile | None
    table: pa.Table | None
    tainted: bool


def has_failed_rows(step: Any, table: pa.Table) -> bool:
    """Whether the step marked rows of ``table`` as failed (LLM errors): not cached."""
    check = getattr(step, "failed_rows", None)
    return bool(check(table)) if callable(check) else False


def assemble(store: SegmentStore, pieces: list[Piece]) -> pa.Table:
    """The rows the pieces name, read from the store where they are stored."""
    parts = []
    for source, start, count in pieces:
        if isinstance(source, BatchRef):
            segment = store.read(source.path, source.checksum)
            parts.append(segment.slice(source.offset + start, count))
        else:
            parts.append(source.slice(start, count))
    return concat(parts) if parts else empty_table()


def compute_stored(step: Any, store: SegmentStore, inputs: list[list[Piece]],
                   target: BatchTarget) -> StoredBatch:
    """Read the inputs, run one batch of ``step``, write its output as a segment."""
    table = step.run_batch([assemble(store, pieces) for pieces in inputs])
    tainted = not target.write or has_failed_rows(step, table)
    if tainted:
        return StoredBatch(table.num_rows, None, table, True)
    segment = store.write(target.key, target.index, [table])
    return StoredBatch(table.num_rows, segment, None, False)
