"""The manifest: which batches of which cache key are complete, and the last runs.

One protocol, two implementations: ``SQLiteManifest`` for a cache folder (``sqlite.py``)
and ``ObjectStoreManifest`` for a URI (``objectstore.py``); ``open_cache`` (``access.py``)
picks one. Reads (``state``, ``outputs``, ``runs``) never lease: a run leases the keys
it plans before reading their state, and ``record_runs`` ends its leases.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from distilabel_nb.cache.catalog import Catalog
from distilabel_nb.cache.history import RunEntry
from distilabel_nb.cache.records import BatchRef, KeyState, RunRecord

__all__ = ["BatchRef", "KeyState", "Manifest", "RunRecord"]


class Manifest(Catalog, Protocol):
    """What the engine and cache administration need of a manifest."""

    def lease(self, keys: Iterable[str]) -> None:
        """Mark ``keys`` as in use by this process until ``release``: garbage collection
        never deletes a leased key while its holder is alive."""

    def state(self, key: str) -> KeyState:
        """What the cache holds of ``key`` (damaged records are dropped with a warning)."""

    def add_segment(self, key: str, first: int, rows: list[int], path: str, nbytes: int,
                    checksum: str, chunk: int, pipeline: str, step: str,
                    refs: Sequence[str] = ()) -> None:
        """Commit a segment, once its file is whole in the store."""

    def complete(self, key: str, n_batches: int, chunk: int, pipeline: str,
                 step: str) -> None:
        """Record that ``key`` has all its ``n_batches`` batches."""

    def invalidate(self, keys: Iterable[str]) -> list[str]:
        """Forget every batch of ``keys``; returns the files now unused."""

    def touch(self, keys: Iterable[str]) -> None:
        """Record that ``keys`` were reused now (garbage collection evicts the least
        recently used first)."""

    def record_runs(self, records: Iterable[RunRecord]) -> None:
        """Record the last run of each step; the run is over, so its leases end."""

    def last_runs(self, pipeline: str) -> dict[str, RunRecord]:
        """The last run record of each step of ``pipeline``."""

    def record_history(self, entry: RunEntry) -> None:
        """Keep a finished run whole in the pipeline's history."""

    def history(self, pipeline: str) -> list[RunEntry]:
        """The pipeline's runs, oldest first, summaries only."""

    def history_run(self, pipeline: str, run_id: str) -> RunEntry | None:
        """One run of the history, whole; None when it is not recorded."""
