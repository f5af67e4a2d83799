"""Offline batch jobs in flight: which provider job holds which rows of an LLM step.

An LLM step in offline batch mode sends the rows its row cache lacks as one job of a
provider's batch API. The job id and the row keys it covers are kept here, beside the
row cache (same SQLite file, table ``batch_jobs``), keyed by the step's signature: the
next run polls that job instead of sending the rows again, and once the job is done its
answers go to the row cache and the job is forgotten.
"""

from __future__ import annotations

import pathlib
import sqlite3
import threading
import time

import orjson

__all__ = ["BatchJobs"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_jobs (
    signature TEXT NOT NULL,
    job_id TEXT NOT NULL,
    keys BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (signature, job_id)
)
"""


class BatchJobs:
    """The provider jobs of each step signature (at most one open per signature)."""

    def __init__(self, folder: str | pathlib.Path) -> None:
        path = pathlib.Path(folder)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path / "rows.sqlite", timeout=60,
                                   check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def open_job(self, signature: str) -> tuple[str, list[str]] | None:
        """The oldest job of ``signature`` still to collect: (job id, row keys)."""
        with self._lock:
            found = self._db.execute(
                "SELECT job_id, keys FROM batch_jobs WHERE signature = ? "
                "ORDER BY created LIMIT 1", [signature]).fetchone()
        return (found[0], list(orjson.loads(found[1]))) if found else None

    def add(self, signature: str, job_id: str, keys: list[str]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO batch_jobs VALUES (?, ?, ?, ?)",
                             [signature, job_id, orjson.dumps(keys), time.time()])

    def drop(self, signature: str, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM batch_jobs WHERE signature = ? AND job_id = ?",
                             [signature, job_id])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> BatchJobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
