"""What a cache holds, as both manifests list it for administration (no SQL, no objects).

The SQLite manifest of a local cache and the object-store manifest of a URI cache both
implement ``Catalog``: ``cache ls/show/clear/gc/verify`` go through it only, so every
command works the same on either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Protocol

from distilabel_nb.cache.history import RunEntry
from distilabel_nb.cache.records import RunRecord

__all__ = ["Catalog", "OutputEntry", "SegmentEntry"]


@dataclasses.dataclass(frozen=True)
class SegmentEntry:
    """One committed segment file of a cache key."""

    path: str  # absolute, as the key's SegmentStore reads it
    first: int  # index of its first batch
    rows: tuple[int, ...]  # row count of each of its batches
    nbytes: int
    checksum: str
    chunk: int  # the batch size it was cut with
    created: float
    refs: tuple[str, ...] = ()  # files it references columns of (absolute)


@dataclasses.dataclass
class OutputEntry:
    """One cache key: who wrote it, whether it is complete, its segments, its last use."""

    key: str
    pipeline: str | None = None
    step: str | None = None
    chunk: int | None = None
    n_batches: int | None = None  # known once a run finished it
    completed: float | None = None
    last_used: float | None = None
    segments: list[SegmentEntry] = dataclasses.field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.segments)

    @property
    def files(self) -> int:
        return len(self.segments)

    def _batches(self) -> dict[int, int]:
        """Row count per distinct batch index (of this key's batch size)."""
        counts: dict[int, int] = {}
        for segment in sorted(self.segments, key=lambda s: (s.first, s.created)):
            if self.chunk is not None and segment.chunk != self.chunk:
                continue  # batches of another batch size: not the same batches
            for position, count in enumerate(segment.rows):
                counts.setdefault(segment.first + position, count)
        return counts

    @property
    def batches(self) -> int:
        return len(self._batches())

    @property
    def rows(self) -> int:
        return sum(self._batches().values())

    @property
    def status(self) -> str:
        """``"complete"``, ``"partial (3 of 10 batches)"`` or ``"not cached"``."""
        batches = self.batches
        if not batches:
            return "not cached"
        total = self.n_batches
        if total is not None and self.completed is not None and batches >= total:
            return "complete"
        return f"partial ({batches} of {total if total is not None else '?'} batches)"


class Catalog(Protocol):
    """What ``distilabel_nb.cache.admin`` and ``gc`` need of a manifest."""

    def outputs(self) -> dict[str, OutputEntry]:
        """Every key the cache holds, with its committed segments (leases nothing)."""

    def runs(self, pipeline: str | None = None) -> list[RunRecord]:
        """The last run record of every step (of ``pipeline``), in the order recorded."""

    def history(self, pipeline: str) -> list[RunEntry]:
        """The pipeline's finished runs, oldest first (summaries, without steps)."""

    def history_run(self, pipeline: str, run_id: str) -> RunEntry | None:
        """One run of the history, with its steps."""

    def leased_keys(self) -> set[str]:
        """Keys in use by a live process."""

    def evict(self, keys: Iterable[str]) -> tuple[list[str], list[str]]:
        """Forget ``keys`` except leased ones: (keys forgotten, their data files)."""

    def forget_runs(self, pipeline: str, step: str | None = None) -> None: ...

    def drop_segment(self, path: str) -> None: ...

    def release(self) -> None: ...

    def close(self) -> None: ...
