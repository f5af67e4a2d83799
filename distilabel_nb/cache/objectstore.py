"""A manifest for object stores (S3, GCS) and shared folders, through ``pyarrow.fs``.

SQLite needs file locks an object store does not have, so this manifest keeps every
fact in a small JSON object of its own, written once under a unique name, and reading
the state of a key is listing a prefix::

    <root>/v1/data/ab/<key>/<first>-<n>-<uuid>.arrow   the segments (SegmentStore)
    <root>/v1/meta/keys/<key>/seg-<segment>.json       commit marker of one segment
    <root>/v1/meta/keys/<key>/done-<writer>.json       the key is complete (+ a snapshot)
    <root>/v1/meta/runs/<pipeline>/<step>.json         the last run of a step
    <root>/v1/meta/history/<pipeline>/<run id>.json    one finished run, whole
    <root>/v1/meta/leases/<writer>.json                keys in use by a running process
    <root>/v1/meta/used/<key>.json                     when a key was last reused

A segment's commit marker is written after the segment itself, so a writer that dies
half-way leaves at most an orphan file that no marker names: a reader never takes it
for a finished batch. Markers carry a checksum of their fields; a damaged one is
dropped with a ``CacheWarning``. Several writers of the same key write different objects
(unique names), and a batch written twice holds the same rows either way, so many
processes or machines can fill one cache at once. A completion marker carries a
snapshot of the markers its writer knew, so a full hit costs one listing and one read.
A segment marker lists the files its segment references columns of (``refs``); a file
is deleted only when no remaining marker names it as its own or as a reference.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import posixpath
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import pyarrow.fs as pafs

from distilabel_nb.cache.catalog import OutputEntry, SegmentEntry
from distilabel_nb.cache.filesystems import CacheUnreachableError, open_filesystem
from distilabel_nb.cache.history import RunEntry
from distilabel_nb.cache.layout import CACHE_VERSION, CacheWarning
from distilabel_nb.cache.manifest import Manifest
from distilabel_nb.cache.markers import inside, intact, quote, signed, snapshot, valid
from distilabel_nb.cache.records import (
    HOST,
    REMOTE_LEASE_SECONDS,
    BatchRef,
    KeyState,
    RunRecord,
    process_alive,
)
from distilabel_nb.cache.refs import unreferenced
from distilabel_nb.cache.store import SegmentStore

__all__ = ["ObjectStoreManifest", "is_uri", "open_uri_cache"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def is_uri(cache_dir: object) -> bool:
    """Whether a cache root is a URI (``s3://bucket/prefix``, ``gs://``, ``file://``)."""
    return isinstance(cache_dir, str) and "://" in cache_dir


def open_uri_cache(uri: str) -> tuple[ObjectStoreManifest, SegmentStore]:
    """The manifest and segment store of a cache root given as a URI.

    Options of the filesystem go in the query string as ``pyarrow.fs`` reads them
    (``s3://bucket/prefix?endpoint_override=host:port&scheme=http``); credentials come
    from the usual environment (``AWS_ACCESS_KEY_ID``, ...).
    """
    filesystem, path = open_filesystem(uri)
    base = f"{path.rstrip('/')}/v{CACHE_VERSION}"
    return ObjectStoreManifest(filesystem, base), SegmentStore(base, filesystem)


class ObjectStoreManifest(Manifest):
    """The ``Manifest`` interface over objects: safe with many writers, no locks.

    It subclasses ``Manifest`` for its type only: every public method is its own.
    """

    def __init__(self, filesystem: pafs.FileSystem, base: str) -> None:
        # The SQLite manifest's __init__ is deliberately not called (no database here).
        self.fs = filesystem
        self.base = base.rstrip("/")
        self.path = f"{self.base}/meta"  # type: ignore[assignment]  # a str, not a Path
        self._token = uuid.uuid4().hex
        self._lock = threading.RLock()
        self._leased: set[str] = set()
        self._seen: dict[str, set[str]] = {}  # marker names each key's state() listed
        self._records: dict[str, dict[str, dict[str, Any]]] = {}  # key -> marker -> record
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._local = isinstance(filesystem, pafs.LocalFileSystem)
        self.where = self.base if self._local else f"{filesystem.type_name}://{self.base}"

    # -- objects -----------------------------------------------------------------------
    def _map(self, func: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        """``func`` over ``items``, sixteen at a time (object stores are slow per call)."""
        items = list(items)
        if len(items) <= 1:
            return [func(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    16, thread_name_prefix="distilabel_nb:objectstore")
        return list(self._pool.map(func, items))

    def _write(self, path: str, record: dict[str, Any]) -> None:
        try:
            self._put(path, json.dumps(record, default=str).encode())
        except OSError as error:
            if self._local:
                raise
            raise CacheUnreachableError(self.where, error, "write to") from error

    def _put(self, path: str, data: bytes) -> None:
        if self._local:  # a shared folder: write aside, then rename (atomic)
            self.fs.create_dir(posixpath.dirname(path), recursive=True)
            temp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            with self.fs.open_output_stream(temp) as out:
                out.write(data)
            self.fs.move(temp, path)
        else:  # an object store: a PUT is atomic, the object appears whole or not at all
            with self.fs.open_output_stream(path) as out:
                out.write(data)

    def _read(self, path: str) -> Any:
        """The JSON in ``path``; None when missing; ``_BAD`` when not JSON."""
        try:
            with self.fs.open_input_stream(path) as source:
                data = source.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            if self._local:
                return None
            raise CacheUnreachableError(self.where, error, "read") from error
        try:
            return json.loads(data)
        except ValueError:
            return _BAD

    def _delete(self, paths: Iterable[str]) -> None:
        def delete(path: str) -> None:
            with contextlib.suppress(FileNotFoundError, OSError):
                self.fs.delete_file(path)

        self._map(delete, paths)

    def _list(self, folder: str) -> dict[str, pafs.FileInfo]:
        """The objects directly below ``folder``, by name (temporary files left out)."""
        selector = pafs.FileSelector(folder, allow_not_found=True, recursive=False)
        try:
            infos = self.fs.get_file_info(selector)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except OSError as error:
            if self._local:
                raise
            raise CacheUnreachableError(self.where, error, "list") from error
        return {posixpath.basename(i.path): i for i in infos
                if i.type == pafs.FileType.File and ".tmp-" not in i.path}

    def _key_dir(self, key: str) -> str:
        return f"{self.path}/keys/{key}"

    def _rel(self, path: str) -> str:
        return path[len(self.base) + 1:] if path.startswith(self.base + "/") else path

    def _abs(self, path: str) -> str:
        return path if path.startswith(self.base + "/") else f"{self.base}/{path}"

    def _damaged(self, key: str, step: str | None, what: str, path: str | None = None,
                 everything: bool = False) -> None:
        owner = f"step {step!r}" if step else f"cache key {key[:12]}"
        warnings.warn(f"cache of {owner}: {what} is damaged; it is ignored and the batches "
                      "it described are recomputed", CacheWarning, stacklevel=4)
        if path is not None:
            self._delete([path])

    # -- leases ------------------------------------------------------------------------
    def lease(self, keys: Iterable[str]) -> None:
        new = [k for k in keys if k not in self._leased]
        if not new:
            return
        self._leased.update(new)
        self._write(f"{self.path}/leases/{self._token}.json",
                    {"pid": os.getpid(), "host": HOST, "since": time.time(),
                     "keys": sorted(self._leased)})

    def release(self) -> None:
        if self._leased:
            self._delete([f"{self.path}/leases/{self._token}.json"])
            self._leased.clear()

    def leased_keys(self) -> set[str]:
        folder = f"{self.path}/leases"
        names = sorted(self._list(folder))
        live: set[str] = set()
        dead: list[str] = []
        now = time.time()
        for name, lease in zip(names, self._map(lambda n: self._read(f"{folder}/{n}"), names),
                               strict=True):
            if not isinstance(lease, dict):
                continue
            if name == f"{self._token}.json":
                alive = True
            elif lease.get("host") == HOST:
                since = lease.get("since")
                alive = process_alive(int(lease.get("pid", 0)),
                                      None if since is None else float(since))
            else:
                alive = now - float(lease.get("since", 0)) < REMOTE_LEASE_SECONDS
            if alive:
                live.update(lease.get("keys", []))
            else:
                dead.append(f"{folder}/{name}")
        self._delete(dead)
        return live

    def evict(self, keys: Iterable[str]) -> tuple[list[str], list[str]]:
        """Forget ``keys`` unless leased. Not atomic with the lease check on an object
        store: a run that starts meanwhile finds its key gone and recomputes it."""
        leased = self.leased_keys()
        gone = [k for k in dict.fromkeys(keys) if k not in leased]
        with self._lock:
            for key in gone:  # every marker listed now goes, not only those state() saw
                self._seen.pop(key, None)
                self._records.pop(key, None)
        paths = self.invalidate(gone)  # the markers go here; the caller deletes the data
        self._delete(f"{self.path}/used/{key}.json" for key in gone)
        return gone, paths

    def forget_runs(self, pipeline: str, step: str | None = None) -> None:
        """Remove the run records of a pipeline, its history included (or the last run
        record of one of its steps)."""
        folder = f"{self.path}/runs/{quote(pipeline)}"
        names = [f"{quote(step)}.json"] if step is not None else list(self._list(folder))
        self._delete(f"{folder}/{n}" for n in names)
        if step is None:
            history = f"{self.path}/history/{quote(pipeline)}"
            self._delete(f"{history}/{n}" for n in self._list(history))

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        msg = ("SQL queries need the SQLite manifest of a local cache; a cache on an object "
               "store is listed with outputs() and runs(), as the SQLite one is too")
        raise NotImplementedError(msg)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    # -- batches -----------------------------------------------------------------------
    def _load_marker(self, key: str, name: str) -> dict[str, Any] | None:
        record = self._read(f"{self._key_dir(key)}/{name}")
        if record is None:
            return None
        if not valid(record, key):
            what = "its completion marker" if name.startswith("done-") else \
                f"the commit marker {name}"
            step = record.get("step") if isinstance(record, dict) else None
            self._damaged(key, step, what, path=f"{self._key_dir(key)}/{name}")
            return None
        return dict(record)

    def state(self, key: str) -> KeyState:
        """What the cache holds of ``key``: one listing, then the markers not yet known."""
        self.lease([key])
        listing = self._list(self._key_dir(key))
        records: dict[str, dict[str, Any]] = {}
        state = KeyState(key=key)
        done = sorted((n for n in listing if n.startswith("done-")),
                      key=lambda n: listing[n].mtime_ns or 0, reverse=True)
        for name in done:
            marker = self._load_marker(key, name)
            if marker is None:
                continue
            state.n_batches, state.chunk = int(marker["n_batches"]), int(marker["chunk"])
            records.update(snapshot(marker, key, listing))
            break
        unknown = [n for n in listing if n.startswith("seg-") and n not in records]
        for name, marker in zip(unknown, self._map(lambda n: self._load_marker(key, n),
                                                   unknown), strict=True):
            if marker is not None:
                records[name] = marker
        with self._lock:
            self._seen[key] = set(listing)
            self._records[key] = dict(records)
        for record in sorted(records.values(), key=lambda r: (r["first"], r["created"])):
            if state.chunk is not None and record["chunk"] != state.chunk:
                continue  # batches of another batch size: not the same batches
            if state.chunk is None:
                state.chunk = int(record["chunk"])
            state.nbytes += int(record["bytes"])
            offset = 0
            path = self._abs(record["path"])
            for position, count in enumerate(record["rows"]):
                index = int(record["first"]) + position
                if index not in state.batches:
                    state.batches[index] = BatchRef(index, int(count), path, offset,
                                                    record["checksum"])
                offset += int(count)
        return state

    def add_segment(self, key: str, first: int, rows: list[int], path: str, nbytes: int,
                    checksum: str, chunk: int, pipeline: str, step: str,
                    refs: Iterable[str] = ()) -> None:
        """Commit a segment: called after the segment file is whole in the store."""
        name = f"seg-{posixpath.basename(path)}.json"
        record = {"key": key, "first": first, "rows": list(rows), "path": self._rel(path),
                  "bytes": nbytes, "checksum": checksum, "chunk": chunk,
                  "created": time.time(), "pipeline": pipeline, "step": step}
        targets = [self._rel(p) for p in refs]
        if targets:
            record["refs"] = targets
        record = signed(record)
        self._write(f"{self._key_dir(key)}/{name}", record)
        with self._lock:
            self._records.setdefault(key, {})[name] = record
            self._seen.setdefault(key, set()).add(name)

    def complete(self, key: str, n_batches: int, chunk: int, pipeline: str, step: str) -> None:
        with self._lock:
            known = {n: r for n, r in self._records.get(key, {}).items() if r["chunk"] == chunk}
        name = f"done-{self._token}.json"
        self._write(f"{self._key_dir(key)}/{name}",
                    signed({"key": key, "n_batches": n_batches, "chunk": chunk,
                             "pipeline": pipeline, "step": step, "completed": time.time(),
                             "segments": known}))
        with self._lock:
            self._seen.setdefault(key, set()).add(name)

    def invalidate(self, keys: Iterable[str]) -> list[str]:
        """Forget what this manifest saw of ``keys`` when it read their state; returns
        the segment files now unused. Markers another writer committed since are kept.
        Keys never read are listed, and their markers read, sixteen at a time."""
        states: dict[str, tuple[set[str], dict[str, dict[str, Any]]]] = {}
        unseen: list[str] = []
        with self._lock:
            for key in dict.fromkeys(keys):
                seen = self._seen.pop(key, None)
                records = self._records.pop(key, {})
                states[key] = (seen, records) if seen is not None else (set(), {})
                if seen is None:
                    unseen.append(key)
        for key, listing in zip(unseen, self._map(lambda k: set(self._list(self._key_dir(k))),
                                                  unseen), strict=True):
            states[key][0].update(listing)
        unread = [(key, name) for key, (seen, records) in states.items() for name in seen
                  if name.startswith("seg-") and name not in records]
        read = self._map(lambda item: self._read(f"{self._key_dir(item[0])}/{item[1]}"), unread)
        for (key, name), record in zip(unread, read, strict=True):
            if isinstance(record, dict) and "path" in record:
                states[key][1][name] = record
        # A marker names a file of its own key's folder only; any other path is not deleted.
        paths = [p for key, (seen, records) in states.items()
                 for name, r in records.items() if name in seen and inside(r, key)
                 for p in [self._abs(r["path"]), *self._targets(r)]]
        self._delete(f"{self._key_dir(key)}/{name}" for key, (seen, _) in states.items()
                     for name in seen)
        if not paths:
            return []
        # Files a remaining segment owns or references stay (one listing of all markers).
        return unreferenced(paths, ((s.path, s.refs) for entry in self.outputs().values()
                                    for s in entry.segments))

    def _targets(self, record: dict[str, Any]) -> list[str]:
        """The files a segment marker references, full paths, data files only."""
        refs = record.get("refs", [])
        return [self._abs(p) for p in refs if isinstance(p, str) and p.startswith("data/")
                and ".." not in p] if isinstance(refs, list) else []

    def drop_segment(self, path: str) -> None:
        """Forget one damaged segment: its commit marker goes, its key is incomplete."""
        parts = self._rel(path).split("/")
        if len(parts) < 2:
            return
        key, name = parts[-2], f"seg-{parts[-1]}.json"
        with self._lock:
            self._records.get(key, {}).pop(name, None)
            self._seen.get(key, set()).discard(name)
        self._delete([f"{self._key_dir(key)}/{name}"])

    def touch(self, keys: Iterable[str]) -> None:
        now = time.time()
        self._map(lambda k: self._write(f"{self.path}/used/{k}.json", {"last_used": now}),
                  list(dict.fromkeys(keys)))

    # -- runs --------------------------------------------------------------------------
    def record_runs(self, records: Iterable[RunRecord]) -> None:
        """Record the last run of each step (one object each, numbered in the run's
        order, which is topological); the run's leases end."""
        def write(item: tuple[int, RunRecord]) -> None:
            order, r = item
            self._write(f"{self.path}/runs/{quote(r.pipeline)}/{quote(r.step)}.json",
                        signed({"pipeline": r.pipeline, "step": r.step, "key": r.key,
                                 "description": r.description, "status": r.status,
                                 "rows": r.rows, "bytes": r.nbytes, "seconds": r.seconds,
                                 "finished": r.finished, "order": order,
                                 "upstream": None if r.upstream is None else list(r.upstream),
                                 "run_id": r.run_id}))

        self._map(write, list(enumerate(records)))
        self.release()

    def last_runs(self, pipeline: str) -> dict[str, RunRecord]:
        return {r.step: r for r in self.runs(pipeline)}

    def runs(self, pipeline: str | None = None) -> list[RunRecord]:
        """Run records (of ``pipeline``), each pipeline's in the order of its last run."""
        folder = f"{self.path}/runs"
        if pipeline is not None:
            folder += f"/{quote(pipeline)}"
        found = [r for r in self._map(self._read, [i.path for i in self._walk(folder)])
                 if intact(r) and pipeline in (None, r.get("pipeline"))]
        # A damaged run record is skipped: it only loses the words of a miss reason.
        found.sort(key=lambda r: (r["pipeline"], r.get("order", 0), r["finished"]))
        return [RunRecord(r["pipeline"], r["step"], r["key"], r["description"], r["status"],
                          r["rows"], r["bytes"], r["seconds"], r["finished"],
                          tuple(map(str, r["upstream"])) if isinstance(r.get("upstream"), list)
                          else None, r.get("run_id")) for r in found]

    def record_history(self, entry: RunEntry) -> None:
        """Keep a finished run whole: one object per run."""
        self._write(f"{self.path}/history/{quote(entry.pipeline)}/{entry.run_id}.json",
                    signed(entry.to_json()))

    def history(self, pipeline: str) -> list[RunEntry]:
        """The pipeline's runs, oldest first (damaged records skipped)."""
        folder = f"{self.path}/history/{quote(pipeline)}"
        found = [r for r in self._map(self._read, [i.path for i in self._walk(folder)])
                 if intact(r) and r.get("pipeline") == pipeline]
        entries = [RunEntry.from_json(r, summary_only=True) for r in found]
        return sorted(entries, key=lambda e: (e.finished, e.run_id))

    def history_run(self, pipeline: str, run_id: str) -> RunEntry | None:
        record = self._read(f"{self.path}/history/{quote(pipeline)}/{quote(run_id)}.json")
        if not intact(record) or record.get("pipeline") != pipeline:
            return None
        return RunEntry.from_json(record)

    # -- listing (the ``Catalog`` of cache administration) -----------------------------
    def _walk(self, folder: str) -> list[pafs.FileInfo]:
        """Every object below ``folder``, at any depth (one paginated LIST)."""
        selector = pafs.FileSelector(folder, allow_not_found=True, recursive=True)
        return [i for i in self.fs.get_file_info(selector)
                if i.type == pafs.FileType.File and ".tmp-" not in i.path]

    def outputs(self) -> dict[str, OutputEntry]:
        """Every key with markers, without leasing any: one listing of all markers, then
        the completion markers (their snapshots spare most segment marker reads), the
        other segment markers and the last-use records, sixteen reads at a time. Damaged
        markers are skipped here; a run that reads the key drops them with a warning."""
        folder = f"{self.path}/keys"
        listings: dict[str, dict[str, pafs.FileInfo]] = {}
        for info in self._walk(folder):
            key, _, name = info.path[len(folder) + 1:].partition("/")
            if name and "/" not in name:
                listings.setdefault(key, {})[name] = info

        def read(item: tuple[str, str]) -> Any:
            return self._read(f"{self._key_dir(item[0])}/{item[1]}")

        def names(prefix: str, skip: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
            return [(key, name) for key, listing in listings.items() for name in listing
                    if name.startswith(prefix) and name not in skip.get(key, {})]

        completions: dict[str, dict[str, Any]] = {}
        done = names("done-", {})
        for (key, _), marker in zip(done, self._map(read, done), strict=True):
            if valid(marker, key) and marker["completed"] >= completions.get(
                    key, {}).get("completed", 0):
                completions[key] = marker
        records = {key: snapshot(marker, key, listings[key])
                   for key, marker in completions.items()}
        unknown = names("seg-", records)
        for (key, name), marker in zip(unknown, self._map(read, unknown), strict=True):
            if valid(marker, key):
                records.setdefault(key, {})[name] = marker
        used_folder = f"{self.path}/used"
        stamps = self._list(used_folder)
        used = [k for k in listings if f"{k}.json" in stamps]
        last_used = {k: r.get("last_used") for k, r in zip(
            used, self._map(lambda k: self._read(f"{used_folder}/{k}.json"), used),
            strict=True) if isinstance(r, dict)}
        entries: dict[str, OutputEntry] = {}
        for key in listings:
            marker, found = completions.get(key, {}), records.get(key, {})
            if not marker and not found:
                continue  # only damaged markers
            ordered = sorted(found.values(), key=lambda r: (r["first"], r["created"]))
            owner = marker or ordered[0]
            times = [last_used.get(key), marker.get("completed"),
                     *(r["created"] for r in ordered)]
            entries[key] = OutputEntry(
                key, owner.get("pipeline"), owner.get("step"),
                marker.get("chunk", ordered[0]["chunk"] if ordered else None),
                marker.get("n_batches"), marker.get("completed"),
                max((float(t) for t in times if t), default=None),
                [SegmentEntry(self._abs(r["path"]), int(r["first"]), tuple(r["rows"]),
                              int(r["bytes"]), r["checksum"], int(r["chunk"]),
                              float(r["created"]), tuple(self._targets(r))) for r in ordered])
        return entries

    def keys(self) -> Iterator[str]:
        """Every key with at least one marker (for administration)."""
        yield from (name for name, info in self._folders(f"{self.path}/keys"))

    def _folders(self, folder: str) -> list[tuple[str, pafs.FileInfo]]:
        selector = pafs.FileSelector(folder, allow_not_found=True, recursive=False)
        return [(posixpath.basename(i.path), i) for i in self.fs.get_file_info(selector)
                if i.type == pafs.FileType.Directory]


_BAD = object()
