"""One step's output during a run, as its consumers see it.

Batches become available in index order: reused ones (from the manifest) at once, new
ones as the producer publishes them. Tables stay in memory until they are written and
then only while few; consumers read older batches back from the store. A consumer waits
for a batch with ``wait_for``; the run's stop event wakes it.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pyarrow as pa

from distilabel_nb.cache.manifest import BatchRef, KeyState
from distilabel_nb.cache.store import SegmentStore
from distilabel_nb.engine.remote import Piece
from distilabel_nb.tables import concat, empty_table

__all__ = ["Channel", "ChunkSpec", "Flushable", "RunStopped", "UpstreamFailed", "zip_chunks"]


class Flushable(Protocol):
    """A step's batch writer, as its output channel sees it."""

    def flush(self) -> None: ...


#: A chunk: (batch index, first row, row count) slices of consecutive upstream batches.
ChunkSpec = list[tuple[int, int, int]]

_KEEP_IN_MEMORY = 64


class RunStopped(Exception):
    """The run is stopping (interrupt, or a failure elsewhere)."""


class UpstreamFailed(RunStopped):
    """The producer of this channel failed; its consumers stop too."""


class Channel:
    def __init__(self, name: str, store: SegmentStore, stop: threading.Event,
                 state: KeyState | None = None, finished: bool = False,
                 keep_all: bool = False) -> None:
        self.name = name
        self.store = store
        self.stop = stop
        self.refs: dict[int, BatchRef] = dict(state.batches) if state else {}
        self.rows: dict[int, int] = {i: ref.rows for i, ref in self.refs.items()}
        self.tables: dict[int, pa.Table] = {}
        self.tainted: set[int] = set()
        self.total: int | None = state.n_batches if finished and state else None
        self.failed = False
        #: Keep every new batch in memory (leaf steps, whose rows the Distiset returns).
        self.keep_all = keep_all
        self._cond = threading.Condition()
        #: Called after every change, to wake the executor's scheduler.
        self.on_change: Callable[[], None] = lambda: None
        self._writer: Flushable | None = None

    # -- producer side -----------------------------------------------------------------
    def attach_writer(self, writer: Flushable) -> None:
        """The writer that commits the producer's batches (see ``commit_pending``)."""
        self._writer = writer

    def commit_pending(self) -> None:
        """Commit the batches the producer's writer still holds: a consumer's writer
        references columns of stored batches only."""
        if self._writer is not None:
            self._writer.flush()

    def publish(self, index: int, table: pa.Table, tainted: bool = False) -> None:
        with self._cond:
            self.tables[index] = table
            self.rows[index] = table.num_rows
            if tainted:
                self.tainted.add(index)
            self._cond.notify_all()
        self.on_change()

    def publish_stored(self, ref: BatchRef) -> None:
        """A new batch that a worker wrote to the cache: only its reference is here."""
        with self._cond:
            self.refs[ref.index] = ref
            self.rows[ref.index] = ref.rows
            self._cond.notify_all()
        self.on_change()

    def stored(self, refs: list[BatchRef]) -> None:
        """Batches now written: their in-memory copies may go."""
        with self._cond:
            for ref in refs:
                self.refs[ref.index] = ref
            if len(self.tables) > _KEEP_IN_MEMORY and not self.keep_all:
                for index in sorted(self.tables)[: len(self.tables) - _KEEP_IN_MEMORY]:
                    if index in self.refs:
                        del self.tables[index]

    def finish(self, total: int) -> None:
        with self._cond:
            self.total = total
            self._cond.notify_all()
        self.on_change()

    def abort(self) -> None:
        with self._cond:
            self.failed = True
            self._cond.notify_all()
        self.on_change()

    # -- consumer side -----------------------------------------------------------------
    def wait_for(self, index: int, block: bool = True) -> bool | None:
        """True when batch ``index`` exists, False when the output ended before it;
        None when it is not there yet and ``block`` is False."""
        with self._cond:
            while True:
                if index in self.rows:
                    return True
                if self.total is not None and index >= self.total:
                    return False
                if self.failed:
                    raise UpstreamFailed(self.name)
                if self.stop.is_set():
                    raise RunStopped(self.name)
                if not block:
                    return None
                self._cond.wait(0.2)

    def _lookup(self, index: int) -> tuple[pa.Table | None, BatchRef | None]:
        """Batch ``index`` in memory and in the cache (at least one of them)."""
        with self._cond:
            table = self.tables.get(index)
            ref = self.refs.get(index)
        if table is None and ref is None:
            msg = f"batch {index} of {self.name!r} is neither in memory nor in the cache"
            raise RuntimeError(msg)
        return table, ref

    def stored_ref(self, index: int) -> BatchRef | None:
        """Where batch ``index`` is stored, None while it is only in memory."""
        with self._cond:
            return self.refs.get(index)

    def table(self, index: int) -> pa.Table:
        table, ref = self._lookup(index)
        if table is not None:
            return table
        assert ref is not None
        return self.store.read(ref.path, ref.checksum).slice(ref.offset, ref.rows)

    def chunks(self, size: int | None, block: bool = True) -> Iterator[ChunkSpec | None]:
        """Chunks of ``size`` rows (all rows at once when None) over every batch.

        Without ``block``, yields None whenever the next batch is not there yet.
        """
        pending: ChunkSpec = []
        pending_rows = 0
        for index in self.batches(block):
            if index is None:
                yield None
                continue
            rows = self.rows[index]
            start = 0
            while start < rows:
                take = rows - start if size is None else min(size - pending_rows, rows - start)
                pending.append((index, start, take))
                pending_rows += take
                start += take
                if size is not None and pending_rows == size:
                    yield pending
                    pending, pending_rows = [], 0
        if pending:
            yield pending

    def batches(self, block: bool = True) -> Iterator[int | None]:
        """The index of every batch, in order, as it becomes available; without
        ``block``, None whenever the next one is not there yet."""
        index = 0
        while True:
            available = self.wait_for(index, block)
            if available is None:
                yield None
                continue
            if not available:
                return
            yield index
            index += 1

    def materialize(self, spec: ChunkSpec | None) -> tuple[pa.Table, bool]:
        """The rows of a chunk, and whether any of them comes from a tainted batch."""
        if not spec:
            return empty_table(), False
        parts = [self.table(i).slice(start, count) for i, start, count in spec]
        tainted = any(i in self.tainted for i, _, _ in spec)
        return concat(parts), tainted

    def pieces(self, spec: ChunkSpec | None) -> tuple[list[Piece], bool]:
        """A chunk as pieces a worker can read itself (stored batches by reference), and
        whether any of them comes from a tainted batch."""
        pieces: list[Piece] = []
        for i, start, count in spec or []:
            table, ref = self._lookup(i)
            source = ref if ref is not None else table
            assert source is not None
            pieces.append((source, start, count))
        return pieces, any(i in self.tainted for i, _, _ in spec or [])

    def _read_stored(self) -> dict[str, pa.Table]:
        """When the output is complete (a hit), its segment files read a few at a time:
        decompression releases the GIL, and an object store answers several requests at
        once (a full hit of 100k rows: ~20% less time in ``run()`` on two cores)."""
        with self._cond:
            files = {} if self.total is None else {
                ref.path: ref.checksum for i, ref in self.refs.items() if i not in self.tables}
        if len(files) < 2:
            return {}
        with concurrent.futures.ThreadPoolExecutor(min(4, len(files))) as pool:
            read = pool.map(lambda item: self.store.read(*item), files.items())
            return dict(zip(files, read, strict=True))

    def all_rows(self) -> pa.Table:
        """Every batch, concatenated (for the Distiset)."""
        tables: list[pa.Table] = []
        run: list[BatchRef] = []  # consecutive stored batches of one segment file
        segments = self._read_stored()

        def close_run() -> None:
            if run:
                segment = segments.get(run[0].path)
                if segment is None:
                    segment = self.store.read(run[0].path, run[0].checksum)
                tables.append(segment.slice(run[0].offset, sum(r.rows for r in run)))
                run.clear()

        index = 0
        while self.wait_for(index):
            with self._cond:
                table = self.tables.get(index)
                ref = self.refs.get(index)
            if table is None and ref is not None:
                if run and (run[-1].path != ref.path
                            or run[-1].offset + run[-1].rows != ref.offset):
                    close_run()
                run.append(ref)
            else:
                close_run()
                tables.append(self.table(index))
            index += 1
        close_run()
        return concat(tables)


_WAITING = object()
_ENDED = object()


def zip_chunks(iterators: list[Iterator[ChunkSpec | None]]
            ) -> Iterator[list[ChunkSpec | None] | None]:
    """The predecessors' chunks in lockstep: chunk i of each (None for one that ended)."""
    specs: list[Any] = [_WAITING] * len(iterators)
    while True:
        for i, iterator in enumerate(iterators):
            while specs[i] is _WAITING:
                spec = next(iterator, _ENDED)
                if spec is None:
                    yield None
                else:
                    specs[i] = spec
        if all(spec is _ENDED for spec in specs):
            return
        yield [None if spec is _ENDED else spec for spec in specs]
        specs = [_ENDED if spec is _ENDED else _WAITING for spec in specs]
