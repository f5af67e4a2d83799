"""Garbage collection: least recently used outputs first, never what a run is using.

Every run leases the cache keys it plans (``make_plan(lease=True)``) until it is
recorded. On a local cache the eviction re-checks the leases inside the SQLite transaction that
forgets the keys, so a run that starts meanwhile either sees its key gone (and recomputes
it) or holds a lease that keeps it; on an object store leases are objects (time-bound
across machines) and the check comes just before the commit markers go. Data files no
commit record names (left by a killed process between writing a file and recording it)
are removed once older than ``orphan_grace`` seconds, as are files that only forgotten
segments referenced columns of. Forgetting a key deletes only the files no remaining
segment owns or references (the manifests decide), so evicting an upstream output keeps
the columns its downstream outputs read. Works on any cache root, a folder
or a URI, through the ``Catalog`` both manifests implement.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pyarrow.fs as pafs

from distilabel_nb.cache.access import opened
from distilabel_nb.cache.admin import parse_age, parse_size
from distilabel_nb.cache.records import process_alive
from distilabel_nb.cache.store import SegmentStore

__all__ = ["cache_gc"]

#: Unrecorded files younger than this may belong to a write in progress.
ORPHAN_GRACE = 3600.0


def _orphans(store: SegmentStore, known: set[str], leased: set[str], grace: float,
             now: float) -> list[str]:
    """Data files (``data/ab/<key>/<name>``) no commit record names, old enough."""
    selector = pafs.FileSelector(f"{store.base}/data", allow_not_found=True, recursive=True)
    found = []
    for info in store.fs.get_file_info(selector):
        parts = info.path[len(store.base) + 1:].split("/")
        if info.type != pafs.FileType.File or len(parts) != 4 or info.path in known:
            continue
        if parts[2] in leased:
            continue
        temp = re.search(r"\.tmp-(\d+)$", parts[3])
        old = info.mtime_ns is not None and now - info.mtime_ns / 1e9 >= grace
        if old or (temp is not None and not process_alive(int(temp.group(1)))):
            found.append(info.path)
    return found


def cache_gc(root: str | os.PathLike[str] | None = None, max_size: str | int | None = None,
             older_than: str | float | None = None, dry_run: bool = False,
             orphan_grace: float = ORPHAN_GRACE) -> dict[str, Any]:
    """Free space: outputs unused for longer than ``older_than`` go, then the least
    recently used ones until the cache holds at most ``max_size`` bytes.

    Sizes take units (``"10GB"``), ages too (``"30d"``). Outputs leased by a running
    process are never removed. Returns what was (or, with ``dry_run``, would be) freed.
    """
    limit = parse_size(max_size) if max_size is not None else None
    age = parse_age(older_than) if older_than is not None else None
    result: dict[str, Any] = {"removed": 0, "bytes_freed": 0, "orphans": 0, "skipped": 0,
                              "bytes_before": 0, "bytes_after": 0, "dry_run": dry_run}
    now = time.time()
    with opened(root) as cache:
        if cache is None:
            return result
        manifest, store = cache
        keys = manifest.outputs()
        leased = manifest.leased_keys()
        total = sum(e.nbytes for e in keys.values())
        result["bytes_before"] = total
        order = sorted(keys.values(), key=lambda e: (e.last_used or 0, e.key))
        chosen: list[str] = []
        freed = 0
        for entry in order:
            too_old = age is not None and (entry.last_used or 0) < now - age
            too_big = limit is not None and total - freed > limit
            if not (too_old or too_big):
                continue
            if entry.key in leased:
                result["skipped"] += 1
                continue
            chosen.append(entry.key)
            freed += entry.nbytes
        # Files a segment references columns of are in use too, also when no segment
        # owns them any more (their key was forgotten while a referrer was alive).
        known = {p for e in keys.values() for s in e.segments for p in (s.path, *s.refs)}
        orphans = _orphans(store, known, leased, orphan_grace, now)
        if dry_run:
            gone, paths = chosen, list[str]()
        else:
            gone, paths = manifest.evict(chosen)  # commit records first, files after
            result["skipped"] += len(chosen) - len(gone)
    if not dry_run:
        store.remove(paths)
        store.remove(orphans)
    result["removed"] = len([k for k in gone if k in keys])
    result["bytes_freed"] = sum(keys[k].nbytes for k in gone if k in keys)
    result["orphans"] = len(orphans)
    result["bytes_after"] = total - result["bytes_freed"]
    return result
