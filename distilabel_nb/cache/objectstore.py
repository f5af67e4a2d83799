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

import os
import posixpath
import time
import uuid
import warnings
from collections.abc import Iterable
from typing import Any

import pyarrow.fs as pafs

from distilabel_nb.cache.catalog import OutputEntry, SegmentEntry
from distilabel_nb.cache.history import RunEntry
from distilabel_nb.cache.layout import CacheWarning
from distilabel_nb.cache.markers import inside, intact, quote, signed, snapshot, valid
from distilabel_nb.cache.objects import ObjectFiles
from distilabel_nb.cache.paths import CachePaths
from distilabel_nb.cache.records import HOST, KeyState, RunRecord, lease_alive
from distilabel_nb.cache.refs import unreferenced

__all__ = ["ObjectStoreManifest"]



class ObjectStoreManifest(ObjectFiles):
    """The ``Manifest`` of a cache on an object store: safe with many writers, no locks."""

    def __init__(self, filesystem: pafs.FileSystem, base: str) -> None:
        self._paths = CachePaths(base, local=False)
        super().__init__(filesystem, self._paths.base)
        self.base = self._paths.base
        self._rel, self._abs = self._paths.rel, self._paths.full
        self.path = f"{self.base}/meta"
        self._token = uuid.uuid4().hex
        self._leased: set[str] = set()
        self._seen: dict[str, set[str]] = {}  # marker names each key's state() listed
        self._records: dict[str, dict[str, dict[str, Any]]] = {}  # key -> marker -> record
        #: History summaries already read, by object path (a run's object never changes).
        self._history: dict[str, RunEntry] = {}

    def _key_dir(self, key: str) -> str:
        return f"{self.path}/keys/{key}"

    def _damaged(self, key: str, step: str | None, what: str, path: str | None = None,
                 everything: bool = False) -> None:
        owner = f"step {step!r}" if step else f"cache key {key[:12]}"
        warnings.warn(f"cache of {owner}: {what} is damaged; it is ignored and the batches "
                      "it described are recomputed", CacheWarning, stacklevel=4)
        if path is not None:
            self.delete([path])

    # -- leases ------------------------------------------------------------------------
    def lease(self, keys: Iterable[str]) -> None:
        new = [k for k in keys if k not in self._leased]
        if not new:
            return
        self._leased.update(new)
        self.write(f"{self.path}/leases/{self._token}.json",
                    {"pid": os.getpid(), "host": HOST, "since": time.time(),
                     "keys": sorted(self._leased)})

    def release(self) -> None:
        if self._leased:
            self.delete([f"{self.path}/leases/{self._token}.json"])
            self._leased.clear()

    def leased_keys(self) -> set[str]:
        folder = f"{self.path}/leases"
        names = sorted(self.children(folder))
        live: set[str] = set()
        dead: list[str] = []
        now = time.time()
        for name, lease in zip(names, self.map(lambda n: self.read(f"{folder}/{n}"), names),
                               strict=True):
            if not isinstance(lease, dict):
                continue
            since = lease.get("since")
            alive = name == f"{self._token}.json" or lease_alive(
                int(lease.get("pid", 0)), str(lease.get("host")),
                None if since is None else float(since), now)
            if alive:
                live.update(lease.get("keys", []))
            else:
                dead.append(f"{folder}/{name}")
        self.delete(dead)
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
        self.delete(f"{self.path}/used/{key}.json" for key in gone)
        return gone, paths

    def forget_runs(self, pipeline: str, step: str | None = None) -> None:
        """Remove the run records of a pipeline, its history included (or the last run
        record of one of its steps)."""
        folder = f"{self.path}/runs/{quote(pipeline)}"
        names = [f"{quote(step)}.json"] if step is not None else list(self.children(folder))
        self.delete(f"{folder}/{n}" for n in names)
        if step is None:
            history = f"{self.path}/history/{quote(pipeline)}"
            self.delete(f"{history}/{n}" for n in self.children(history))

    # -- batches -----------------------------------------------------------------------
    def _load_marker(self, key: str, name: str) -> dict[str, Any] | None:
        record = self.read(f"{self._key_dir(key)}/{name}")
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
        """What the cache holds of ``key``: one listing, then the markers not yet known
        (a read: it leases nothing)."""
        listing = self.children(self._key_dir(key))
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
        for name, marker in zip(unknown, self.map(lambda n: self._load_marker(key, n),
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
            state.add_segment(int(record["first"]), [int(c) for c in record["rows"]],
                              self._abs(record["path"]), record["checksum"], int(record["bytes"]))
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
        self.write(f"{self._key_dir(key)}/{name}", record)
        with self._lock:
            self._records.setdefault(key, {})[name] = record
            self._seen.setdefault(key, set()).add(name)

    def complete(self, key: str, n_batches: int, chunk: int, pipeline: str, step: str) -> None:
        with self._lock:
            known = {n: r for n, r in self._records.get(key, {}).items() if r["chunk"] == chunk}
        name = f"done-{self._token}.json"
        self.write(f"{self._key_dir(key)}/{name}",
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
        for key, listing in zip(unseen, self.map(lambda k: set(self.children(self._key_dir(k))),
                                                  unseen), strict=True):
            states[key][0].update(listing)
        unread = [(key, name) for key, (seen, records) in states.items() for name in seen
                  if name.startswith("seg-") and name not in records]
        read = self.map(lambda item: self.read(f"{self._key_dir(item[0])}/{item[1]}"), unread)
        for (key, name), record in zip(unread, read, strict=True):
            if isinstance(record, dict) and "path" in record:
                states[key][1][name] = record
        # A marker names a file of its own key's folder only; any other path is not deleted.
        paths = [p for key, (seen, records) in states.items()
                 for name, r in records.items() if name in seen and inside(r, key)
                 for p in [self._abs(r["path"]), *self._targets(r)]]
        self.delete(f"{self._key_dir(key)}/{name}" for key, (seen, _) in states.items()
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
        self.delete([f"{self._key_dir(key)}/{name}"])

    def touch(self, keys: Iterable[str]) -> None:
        now = time.time()
        self.map(lambda k: self.write(f"{self.path}/used/{k}.json", {"last_used": now}),
                  list(dict.fromkeys(keys)))

    # -- runs --------------------------------------------------------------------------
    def record_runs(self, records: Iterable[RunRecord]) -> None:
        """Record the last run of each step (one object each, numbered in the run's
        order, which is topological); the run's leases end."""
        def write(item: tuple[int, RunRecord]) -> None:
            order, r = item
            self.write(f"{self.path}/runs/{quote(r.pipeline)}/{quote(r.step)}.json",
                        signed({"pipeline": r.pipeline, "step": r.step, "key": r.key,
                                 "description": r.description, "status": r.status,
                                 "rows": r.rows, "bytes": r.nbytes, "seconds": r.seconds,
                                 "finished": r.finished, "order": order,
                                 "upstream": None if r.upstream is None else list(r.upstream),
                                 "run_id": r.run_id}))

        self.map(write, list(enumerate(records)))
        self.release()

    def last_runs(self, pipeline: str) -> dict[str, RunRecord]:
        return {r.step: r for r in self.runs(pipeline)}

    def runs(self, pipeline: str | None = None) -> list[RunRecord]:
        """Run records (of ``pipeline``), each pipeline's in the order of its last run."""
        folder = f"{self.path}/runs"
        if pipeline is not None:
            folder += f"/{quote(pipeline)}"
        found = [r for r in self.map(self.read, [i.path for i in self.walk(folder)])
                 if intact(r) and pipeline in (None, r.get("pipeline"))]
        # A damaged run record is skipped: it only loses the words of a miss reason.
        found.sort(key=lambda r: (r["pipeline"], r.get("order", 0), r["finished"]))
        return [RunRecord(r["pipeline"], r["step"], r["key"], r["description"], r["status"],
                          r["rows"], r["bytes"], r["seconds"], r["finished"],
                          tuple(map(str, r["upstream"])) if isinstance(r.get("upstream"), list)
                          else None, r.get("run_id")) for r in found]

    def record_history(self, entry: RunEntry) -> None:
        """Keep a finished run whole: one object per run."""
        self.write(f"{self.path}/history/{quote(entry.pipeline)}/{entry.run_id}.json",
                    signed(entry.to_json()))

    def history(self, pipeline: str) -> list[RunEntry]:
        """The pipeline's runs, oldest first (damaged records skipped): one listing, and
        only the runs not read before by this manifest (a graph re-reads it often)."""
        folder = f"{self.path}/history/{quote(pipeline)}"
        paths = [i.path for i in self.walk(folder)]
        new = [p for p in paths if p not in self._history]
        for path, record in zip(new, self.map(self.read, new), strict=True):
            if intact(record) and record.get("pipeline") == pipeline:
                self._history[path] = RunEntry.from_json(record, summary_only=True)
        entries = [self._history[p] for p in paths if p in self._history]
        return sorted(entries, key=lambda e: (e.finished, e.run_id))

    def history_run(self, pipeline: str, run_id: str) -> RunEntry | None:
        record = self.read(f"{self.path}/history/{quote(pipeline)}/{quote(run_id)}.json")
        if not intact(record) or record.get("pipeline") != pipeline:
            return None
        return RunEntry.from_json(record)

    # -- listing (the ``Catalog`` of cache administration) -----------------------------
    def outputs(self) -> dict[str, OutputEntry]:
        """Every key with markers, without leasing any: one listing of all markers, then
        the completion markers (their snapshots spare most segment marker reads), the
        other segment markers and the last-use records, sixteen reads at a time. Damaged
        markers are skipped here; a run that reads the key drops them with a warning."""
        folder = f"{self.path}/keys"
        listings: dict[str, dict[str, pafs.FileInfo]] = {}
        for info in self.walk(folder):
            key, _, name = info.path[len(folder) + 1:].partition("/")
            if name and "/" not in name:
                listings.setdefault(key, {})[name] = info

        def read(item: tuple[str, str]) -> Any:
            return self.read(f"{self._key_dir(item[0])}/{item[1]}")

        def names(prefix: str, skip: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
            return [(key, name) for key, listing in listings.items() for name in listing
                    if name.startswith(prefix) and name not in skip.get(key, {})]

        completions: dict[str, dict[str, Any]] = {}
        done = names("done-", {})
        for (key, _), marker in zip(done, self.map(read, done), strict=True):
            if valid(marker, key) and marker["completed"] >= completions.get(
                    key, {}).get("completed", 0):
                completions[key] = marker
        records = {key: snapshot(marker, key, listings[key])
                   for key, marker in completions.items()}
        unknown = names("seg-", records)
        for (key, name), marker in zip(unknown, self.map(read, unknown), strict=True):
            if valid(marker, key):
                records.setdefault(key, {})[name] = marker
        used_folder = f"{self.path}/used"
        stamps = self.children(used_folder)
        used = [k for k in listings if f"{k}.json" in stamps]
        last_used = {k: r.get("last_used") for k, r in zip(
            used, self.map(lambda k: self.read(f"{used_folder}/{k}.json"), used),
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

