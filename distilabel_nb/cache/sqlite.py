"""The manifest of a cache folder, in SQLite (the database itself: ``sqlite_db.py``).

Segment paths are stored relative to the manifest's folder, so a cache can be moved or
mounted elsewhere. A run leases the keys it plans until it is recorded: garbage
collection never deletes a leased key while its holder is alive; reading a key's state
leases nothing. Every segment and output row carries a checksum of its own fields
(column ``sig``): a damaged row is dropped with a ``CacheWarning`` and its batches
recomputed, never trusted.

A segment row lists the files its segment references columns of (``refs``): forgetting
keys deletes only the files that no remaining segment owns or references.
"""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import xxhash

from distilabel_nb.cache.catalog import OutputEntry, SegmentEntry
from distilabel_nb.cache.history import RunEntry
from distilabel_nb.cache.layout import CacheWarning
from distilabel_nb.cache.paths import CachePaths
from distilabel_nb.cache.records import HOST, KeyState, RunRecord, lease_alive
from distilabel_nb.cache.refs import unreferenced
from distilabel_nb.cache.sqlite_db import open_database

__all__ = ["SQLiteManifest"]


def _row_checksum(*fields: Any) -> str:
    """The checksum of a manifest row's meaningful fields."""
    return xxhash.xxh3_64_hexdigest("\x1f".join(map(str, fields)).encode())


_RUN_COLUMNS = ("pipeline, step, key, description, status, rows, bytes, seconds, finished, "
                "upstream, run_id")


def _upstream(text: str | None) -> tuple[str, ...] | None:
    """A run record's predecessor keys; None when unknown (or unreadable)."""
    try:
        keys = json.loads(text) if text else None
    except ValueError:
        return None
    return tuple(map(str, keys)) if isinstance(keys, list) else None


def _counts(rows: str) -> list[int] | None:
    """The batch row counts of a segment row; None when they are not a list of counts."""
    try:
        counts = json.loads(rows)
    except (TypeError, ValueError):
        return None
    if not isinstance(counts, list):
        return None
    if counts and (set(map(type, counts)) != {int} or min(counts) < 0):  # at C speed
        return None
    return counts


def _refs(refs: str | None) -> list[str]:
    """The referenced files of a segment row (relative paths); none when unreadable."""
    try:
        found = json.loads(refs) if refs else []
    except (TypeError, ValueError):
        return []
    return [p for p in found if isinstance(p, str)] if isinstance(found, list) else []


class SQLiteManifest:
    """The ``Manifest`` of a cache folder, in ``<root>/v1/manifest.sqlite``."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._paths = CachePaths(str(path.parent), local=True)
        self.base = self._paths.base
        self._rel, self._abs, self._inside = (self._paths.rel, self._paths.full,
                                              self._paths.inside)
        self._lock = threading.RLock()
        self._token = uuid.uuid4().hex
        self._leased: set[str] = set()
        self._conn = open_database(path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (for cache administration)."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _transaction(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    self._conn.execute(sql, params)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- leases ----------------------------------------------------------------------
    def lease(self, keys: Iterable[str]) -> None:
        """Mark ``keys`` as in use by this process until ``release``."""
        new = [k for k in keys if k not in self._leased]
        if not new:
            return
        now = time.time()
        self._transaction([("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?)",
                            (k, self._token, os.getpid(), HOST, now)) for k in new])
        self._leased.update(new)

    def release(self) -> None:
        """Give back every lease this manifest took."""
        if self._leased:
            self._transaction([("DELETE FROM leases WHERE token=?", (self._token,))])
            self._leased.clear()

    def leased_keys(self) -> set[str]:
        """Keys leased by a live process; leases of dead processes are removed."""
        live: set[str] = set()
        dead: set[str] = set()
        now = time.time()
        with self._lock:
            rows = self._conn.execute("SELECT key, token, pid, host, since FROM leases").fetchall()
            for key, token, pid, host, since in rows:
                if token == self._token or token in dead:
                    alive = token not in dead
                else:
                    alive = lease_alive(pid, host, since, now)
                if alive:
                    live.add(key)
                else:
                    dead.add(token)
            if dead:
                marks = ",".join("?" * len(dead))
                self._conn.execute(f"DELETE FROM leases WHERE token IN ({marks})", list(dead))
        return live

    def evict(self, keys: Iterable[str]) -> tuple[list[str], list[str]]:
        """Forget ``keys`` except those leased by a live process, atomically with the
        lease check; returns (keys forgotten, their files, now unused)."""
        wanted = list(dict.fromkeys(keys))
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                leased = self.leased_keys()
                gone = [k for k in wanted if k not in leased]
                paths: list[str] = []
                for key in gone:
                    paths += self._files(self._conn.execute(
                        "SELECT path, refs FROM segments WHERE key=?", (key,)).fetchall())
                    self._conn.execute("DELETE FROM segments WHERE key=?", (key,))
                    self._conn.execute("DELETE FROM outputs WHERE key=?", (key,))
                paths = self._unused(paths)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return gone, paths

    def forget_runs(self, pipeline: str, step: str | None = None) -> None:
        """Remove the run records of a pipeline, its history included (or the last run
        record of one of its steps)."""
        if step is None:
            self._transaction([("DELETE FROM runs WHERE pipeline=?", (pipeline,)),
                               ("DELETE FROM history WHERE pipeline=?", (pipeline,))])
        else:
            self._transaction([("DELETE FROM runs WHERE pipeline=? AND step=?",
                                (pipeline, step))])

    # -- batches ---------------------------------------------------------------------
    def state(self, key: str) -> KeyState:
        """What the cache holds of ``key`` (a read: it leases nothing)."""
        state = KeyState(key=key)
        with self._lock:
            output = self._conn.execute("SELECT n_batches, chunk, step, sig FROM outputs "
                                        "WHERE key=?", (key,)).fetchone()
            segments = self._conn.execute(
                "SELECT first, rows, path, bytes, checksum, chunk, sig, refs FROM segments "
                "WHERE key=? ORDER BY first, created", (key,)).fetchall()
        step = output[2] if output is not None else None
        if output is not None:
            n_batches, chunk, _, stamp = output
            if stamp is not None and stamp != _row_checksum(key, n_batches, chunk):
                self._damaged(key, step, "its completion record", everything=True)
                return state
            state.n_batches, state.chunk = n_batches, chunk
        for first, rows, path, nbytes, checksum, chunk, stamp, targets in segments:
            counts = _counts(rows)
            extra = (targets,) if targets else ()
            intact = stamp is None or stamp == _row_checksum(
                key, first, rows, path, nbytes, checksum, chunk, *extra)
            if counts is None or not intact or not self._inside(path):
                self._damaged(key, step, f"the record of {path}", path=path)
                continue
            if state.chunk is not None and chunk != state.chunk:
                continue  # batches of another batch size: not the same batches
            state.add_segment(first, counts, self._abs(path), checksum, nbytes)
        return state

    def _damaged(self, key: str, step: str | None, what: str, path: str | None = None,
                 everything: bool = False) -> None:
        """A manifest row failed its checksum: warn, and forget it (and with
        ``everything``, every batch of the key)."""
        owner = f"step {step!r}" if step else f"cache key {key[:12]}"
        warnings.warn(f"cache of {owner}: {what} in the manifest is damaged; it is ignored "
                      "and the batches it described are recomputed", CacheWarning,
                      stacklevel=4)
        if everything:
            self._transaction([("DELETE FROM segments WHERE key=?", (key,)),
                               ("DELETE FROM outputs WHERE key=?", (key,))])
        else:
            self._transaction([("DELETE FROM segments WHERE key=? AND path=?", (key, path))])

    def add_segment(self, key: str, first: int, rows: list[int], path: str, nbytes: int,
                    checksum: str, chunk: int, pipeline: str, step: str,
                    refs: Sequence[str] = ()) -> None:
        now = time.time()
        counts, rel = json.dumps(rows), self._rel(path)
        targets = json.dumps([self._rel(p) for p in refs]) if refs else None
        extra = (targets,) if targets else ()
        self._transaction([
            ("INSERT OR IGNORE INTO outputs (key, n_batches, chunk, pipeline, step, completed, "
             "last_used, sig) VALUES (?, NULL, ?, ?, ?, NULL, ?, ?)",
             (key, chunk, pipeline, step, now, _row_checksum(key, None, chunk))),
            ("INSERT OR REPLACE INTO segments (key, first, rows, path, bytes, checksum, chunk, "
             "created, sig, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (key, first, counts, rel, nbytes, checksum, chunk, now,
              _row_checksum(key, first, counts, rel, nbytes, checksum, chunk, *extra), targets)),
        ])

    def complete(self, key: str, n_batches: int, chunk: int, pipeline: str, step: str) -> None:
        now = time.time()
        self._transaction([
            ("INSERT OR IGNORE INTO outputs (key, n_batches, chunk, pipeline, step, completed, "
             "last_used, sig) VALUES (?, NULL, ?, ?, ?, NULL, ?, ?)",
             (key, chunk, pipeline, step, now, _row_checksum(key, None, chunk))),
            ("UPDATE outputs SET n_batches=?, chunk=?, completed=?, last_used=?, sig=? "
             "WHERE key=?",
             (n_batches, chunk, now, now, _row_checksum(key, n_batches, chunk), key)),
        ])

    def invalidate(self, keys: Iterable[str]) -> list[str]:
        """Forget every batch of ``keys``; returns the files that are now unused."""
        keys = list(keys)
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                paths = self._files(self._conn.execute(
                    f"SELECT path, refs FROM segments WHERE key IN ({marks})", keys).fetchall())
                self._conn.execute(f"DELETE FROM segments WHERE key IN ({marks})", keys)
                self._conn.execute(f"DELETE FROM outputs WHERE key IN ({marks})", keys)
                paths = self._unused(paths)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return paths

    def _files(self, rows: Iterable[tuple[str, str | None]]) -> list[str]:
        """The files of segment rows (path, refs): their own and those they reference,
        full paths, only files of this cache's data folder."""
        found = []
        for path, refs in rows:
            found += [self._abs(p) for p in [path, *_refs(refs)] if self._inside(p)]
        return found

    def _unused(self, paths: list[str]) -> list[str]:
        """Of ``paths``, those no remaining segment owns or references (called inside
        the transaction that forgot their segments)."""
        if not paths:
            return []
        live = self._conn.execute("SELECT path, refs FROM segments").fetchall()
        return unreferenced(paths, ((self._abs(p), [self._abs(r) for r in _refs(refs)])
                                    for p, refs in live))

    def drop_segment(self, path: str) -> None:
        """Forget one damaged segment; its key is no longer complete."""
        forms = (path, self._rel(path))
        with self._lock:
            rows = self._conn.execute("SELECT key FROM segments WHERE path IN (?, ?)",
                                      forms).fetchall()
            statements: list[tuple[str, Sequence[Any]]] = [
                ("DELETE FROM segments WHERE path IN (?, ?)", forms)]
            statements += [("UPDATE outputs SET completed=NULL WHERE key=?", (key,))
                           for (key,) in rows]
            self._transaction(statements)

    def touch(self, keys: Iterable[str]) -> None:
        now = time.time()
        self._transaction([("UPDATE outputs SET last_used=? WHERE key=?", (now, key))
                           for key in keys])

    # -- runs ------------------------------------------------------------------------
    def record_runs(self, records: Iterable[RunRecord]) -> None:
        """Record the last run of each step; the run is over, so its leases end."""
        self._transaction([
            (f"INSERT OR REPLACE INTO runs ({_RUN_COLUMNS}) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (r.pipeline, r.step, r.key, json.dumps(r.description, default=str), r.status,
              r.rows, r.nbytes, r.seconds, r.finished,
              None if r.upstream is None else json.dumps(list(r.upstream)), r.run_id))
            for r in records
        ])
        self.release()

    def last_runs(self, pipeline: str) -> dict[str, RunRecord]:
        return {r.step: r for r in self.runs(pipeline)}

    def record_history(self, entry: RunEntry) -> None:
        """Keep a finished run whole in the pipeline's history."""
        data = entry.to_json()
        self._transaction([(
            "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?)",
            (entry.run_id, entry.pipeline, entry.started, entry.finished,
             json.dumps(data["summary"], default=str),
             json.dumps({k: data[k] for k in ("steps", "edges", "routes")}, default=str)))])

    def history(self, pipeline: str) -> list[RunEntry]:
        """The pipeline's runs, oldest first, summaries only (steps left unread)."""
        rows = self.query("SELECT run_id, started, finished, summary FROM history "
                          "WHERE pipeline=? ORDER BY finished, run_id", (pipeline,))
        return [RunEntry(run_id, pipeline, started, finished, json.loads(summary))
                for run_id, started, finished, summary in rows]

    def history_run(self, pipeline: str, run_id: str) -> RunEntry | None:
        """One run of the history, whole; None when it is not recorded."""
        rows = self.query("SELECT started, finished, summary, steps FROM history "
                          "WHERE pipeline=? AND run_id=?", (pipeline, run_id))
        if not rows:
            return None
        started, finished, summary, steps = rows[0]
        return RunEntry.from_json({"run_id": run_id, "pipeline": pipeline, "started": started,
                                   "finished": finished, "summary": json.loads(summary),
                                   **json.loads(steps)})

    # -- listing (the ``Catalog`` of cache administration) ----------------------------
    def runs(self, pipeline: str | None = None) -> list[RunRecord]:
        """Run records in the order written (a run's are topological)."""
        sql, params = f"SELECT {_RUN_COLUMNS} FROM runs", tuple[str, ...]()
        if pipeline is not None:
            sql, params = sql + " WHERE pipeline=?", (pipeline,)
        return [RunRecord(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5],
                          row[6], row[7], row[8], _upstream(row[9]), row[10])
                for row in self._execute(sql + " ORDER BY rowid", params)]

    def outputs(self) -> dict[str, OutputEntry]:
        with self._lock:
            outputs = self._conn.execute("SELECT key, pipeline, step, chunk, n_batches, "
                                         "completed, last_used FROM outputs").fetchall()
            segments = self._conn.execute("SELECT key, first, rows, path, bytes, checksum, "
                                          "chunk, created, refs FROM segments").fetchall()
        entries = {row[0]: OutputEntry(*row) for row in outputs}
        recorded = set(entries)
        for key, first, rows, path, nbytes, checksum, chunk, created, refs in segments:
            counts = _counts(rows)
            if counts is None or not self._inside(path):
                continue  # a damaged row: state() warns about it when a run reads it
            entry = entries.setdefault(key, OutputEntry(key, chunk=chunk))
            if key not in recorded:  # no output row (an older cache): used when written
                entry.last_used = max(entry.last_used or 0.0, created)
            entry.segments.append(SegmentEntry(
                self._abs(path), first, tuple(counts), nbytes, checksum, chunk, created,
                tuple(self._abs(r) for r in _refs(refs) if self._inside(r))))
        return entries
