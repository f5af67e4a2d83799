"""The SQLite database of a local cache's manifest: opened, checked, migrated.

WAL mode, safe for several threads of one process (the manifest keeps one connection
behind a lock) and for several processes (SQLite's own locking, a long busy timeout).
A damaged database is moved aside with a ``CacheWarning`` and a fresh one started; a
database of another cache format is refused untouched (``CacheVersionError``).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import time
import warnings

from distilabel_nb.cache.history import HISTORY_SCHEMA
from distilabel_nb.cache.layout import CACHE_VERSION, CacheVersionError, CacheWarning

__all__ = ["open_database"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    key TEXT NOT NULL, first INTEGER NOT NULL, rows TEXT NOT NULL, path TEXT NOT NULL,
    bytes INTEGER NOT NULL, checksum TEXT NOT NULL, chunk INTEGER NOT NULL,
    created REAL NOT NULL, sig TEXT, refs TEXT, PRIMARY KEY (key, path));
CREATE TABLE IF NOT EXISTS outputs (
    key TEXT PRIMARY KEY, n_batches INTEGER, chunk INTEGER NOT NULL, pipeline TEXT,
    step TEXT, completed REAL, last_used REAL NOT NULL, sig TEXT);
CREATE TABLE IF NOT EXISTS runs (
    pipeline TEXT NOT NULL, step TEXT NOT NULL, key TEXT NOT NULL, description TEXT NOT NULL,
    status TEXT NOT NULL, rows INTEGER, bytes INTEGER, seconds REAL, finished REAL NOT NULL,
    upstream TEXT, PRIMARY KEY (pipeline, step));
CREATE TABLE IF NOT EXISTS leases (
    key TEXT NOT NULL, token TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,
    since REAL NOT NULL, PRIMARY KEY (key, token));
"""


def open_database(path: pathlib.Path) -> sqlite3.Connection:
    """The manifest database at ``path``, readable by its owner only."""
    try:
        return _private(path, _connect(path))
    except CacheVersionError:
        raise
    except sqlite3.DatabaseError as error:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        warnings.warn(
            f"the cache manifest {path} is damaged ({error}); it was moved to "
            f"{aside.name} and a new one started: cached results will be recomputed",
            CacheWarning,
            stacklevel=3,
        )
        for suffix in ("", "-wal", "-shm"):
            part = path.with_name(path.name + suffix)
            if part.exists():
                part.rename(aside.with_name(aside.name + suffix))
        return _private(path, _connect(path))


def _connect(path: pathlib.Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60, check_same_thread=False,
                           isolation_level=None)
    try:
        _check_version(conn, path)  # before anything writes to a foreign cache
        conn.execute("PRAGMA journal_mode=WAL")
        check = conn.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        for table in ("segments", "outputs"):  # databases from before row checksums
            columns = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
            if "sig" not in columns:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN sig TEXT")
            if table == "segments" and "refs" not in columns:  # before column refs
                conn.execute("ALTER TABLE segments ADD COLUMN refs TEXT")
        columns = [c[1] for c in conn.execute("PRAGMA table_info(runs)")]
        if "upstream" not in columns:
            conn.execute("ALTER TABLE runs ADD COLUMN upstream TEXT")  # before lineage
        if "run_id" not in columns:
            conn.execute("ALTER TABLE runs ADD COLUMN run_id TEXT")  # before history
        conn.executescript(HISTORY_SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('cache_version', ?)",
                     (str(CACHE_VERSION),))
    except BaseException:
        conn.close()
        raise
    return conn


def _check_version(conn: sqlite3.Connection, path: pathlib.Path) -> None:
    """Refuse a manifest written in another cache format, without touching it."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
    if not has_meta:
        return
    row = conn.execute("SELECT v FROM meta WHERE k='cache_version'").fetchone()
    if row is not None and row[0] != str(CACHE_VERSION):
        msg = (
            f"the cache at {path.parent} was written in cache format {row[0]!r}; "
            f"this version of distilabel_nb reads format {CACHE_VERSION} only and leaves "
            "it untouched: use another cache_dir, or delete that folder"
        )
        raise CacheVersionError(msg)


def _private(path: pathlib.Path, conn: sqlite3.Connection) -> sqlite3.Connection:
    """The database and its journal files are readable by their owner only."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.chmod(path.with_name(path.name + suffix), 0o600)
    return conn
