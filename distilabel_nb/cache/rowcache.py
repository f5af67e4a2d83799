"""Row-level cache for row-wise steps (LLM tasks): one SQLite file of JSON rows.

A row is keyed by the step's signature plus the hash of the values of the columns the
step reads, so adding rows or changing some upstream rows computes only those rows,
while a changed prompt, model or generation parameter (a new signature) computes them
all. Only successful rows are stored; failed ones are simply absent and computed again.
Each row keeps the tokens it cost, which a later reuse reports as tokens saved.

The file lives at ``<versioned cache folder>/rows/rows.sqlite`` (WAL mode, so several
processes may read and write it at once). Values are JSON (orjson), never pickle.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from distilabel_nb.cache.signature import hash_value

__all__ = ["CachedRow", "RowCache", "row_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    signature TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    PRIMARY KEY (signature, key)
) WITHOUT ROWID
"""

#: One RowCache of this process opens its file at a time.
_OPENING = threading.Lock()

_CHUNK = 500  # keys per SELECT (SQLite's variable limit is 999 on old builds)

CachedRow = tuple[Any, int, int]
"""A stored row: (value, input_tokens, output_tokens)."""


def row_key(values: Any) -> str:
    """The key of one row: the hash of the values of the columns the step reads."""
    return hash_value(values)


class RowCache:
    """Rows of row-wise steps by (signature, row key)."""

    def __init__(self, folder: str | pathlib.Path) -> None:
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.folder / "rows.sqlite"
        self._lock = threading.Lock()
        # Two LLM steps load at once in threads of their own: the switch to WAL of a new
        # file then fails at once with "database is locked" (no busy wait for it).
        with _OPENING:
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        for suffix in ("", "-wal", "-shm"):  # answers paid for are the user's alone
            with contextlib.suppress(OSError):
                os.chmod(f"{self.path}{suffix}", 0o600)

    def get_many(self, signature: str, keys: Iterable[str]) -> dict[str, CachedRow]:
        """The stored rows among ``keys`` (absent keys are simply missing)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, CachedRow] = {}
        with self._lock:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                cursor = self._db.execute(
                    "SELECT key, value, input_tokens, output_tokens FROM rows "
                    f"WHERE signature = ? AND key IN ({marks})", [signature, *chunk])
                for key, value, input_tokens, output_tokens in cursor:
                    try:
                        found[key] = (orjson.loads(value), input_tokens, output_tokens)
                    except orjson.JSONDecodeError:
                        continue  # a damaged row is computed again
        return found

    def put_many(self, signature: str,
                 rows: Sequence[tuple[str, Any, int, int]]) -> None:
        """Store ``(key, value, input_tokens, output_tokens)`` rows (successes only)."""
        if not rows:
            return
        now = time.time()
        records = [(signature, key, orjson.dumps(value), int(i), int(o), now)
                   for key, value, i, o in rows]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO rows (signature, key, value, input_tokens, "
                    "output_tokens, created) VALUES (?, ?, ?, ?, ?, ?)", records)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def output_tokens_mean(self, signature: str) -> float | None:
        """The mean output tokens of the stored answers of ``signature`` (None: none)."""
        with self._lock:
            n, mean = self._db.execute(
                "SELECT count(*), avg(output_tokens) FROM rows WHERE signature = ?",
                [signature]).fetchone()
        return float(mean) if n else None

    def count(self, signature: str | None = None) -> int:
        with self._lock:
            if signature is None:
                return int(self._db.execute("SELECT count(*) FROM rows").fetchone()[0])
            return int(self._db.execute("SELECT count(*) FROM rows WHERE signature = ?",
                                        [signature]).fetchone()[0])

    def clear(self, signature: str | None = None) -> int:
        """Forget the rows of one signature, or all rows; returns how many."""
        with self._lock:
            if signature is None:
                cursor = self._db.execute("DELETE FROM rows")
            else:
                cursor = self._db.execute("DELETE FROM rows WHERE signature = ?", [signature])
            return int(cursor.rowcount)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RowCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
