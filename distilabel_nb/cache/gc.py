"""Garbage collection: least recently used outputs first, never what a run is using.

Every run leases the cache keys it plans (``Manifest.state``) until it is recorded; the
eviction re-checks the leases inside the same SQLite transaction that forgets the keys,
so a run that starts meanwhile either sees its key gone (and recomputes it) or holds a
lease that keeps it. Files no manifest row points to (left by a killed process between
writing a file and recording it) are removed once older than ``orphan_grace`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import time
from collections.abc import Iterable
from typing import Any

from distilabel_nb.cache.admin import _key_table, open_manifest, parse_age, parse_size

__all__ = ["cache_gc", "remove_files"]

#: Unrecorded files younger than this may belong to a write in progress.
ORPHAN_GRACE = 3600.0


def remove_files(paths: Iterable[str]) -> None:
    """Delete segment files (full paths), then their key folders once empty."""
    folders = set()
    for path in paths:
        full = pathlib.Path(path)
        with contextlib.suppress(FileNotFoundError):
            full.unlink()
        folders.add(full.parent)
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty: a writer is adding to it
            folder.rmdir()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphans(base: pathlib.Path, known: set[str], leased: set[str], grace: float,
             now: float) -> list[pathlib.Path]:
    data = base / "data"
    if not data.is_dir():
        return []
    found = []
    for path in data.glob("*/*/*"):
        key = path.parent.name
        if key in leased or not path.is_file():
            continue
        rel = path.relative_to(base).as_posix()
        if rel in known or str(path) in known:
            continue
        temp = re.search(r"\.tmp-(\d+)$", path.name)
        with contextlib.suppress(FileNotFoundError):
            old = now - path.stat().st_mtime >= grace
            if old or (temp is not None and not _pid_alive(int(temp.group(1)))):
                found.append(path)
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
    manifest = open_manifest(root)
    result: dict[str, Any] = {"removed": 0, "bytes_freed": 0, "orphans": 0, "skipped": 0,
                              "bytes_before": 0, "bytes_after": 0, "dry_run": dry_run}
    if manifest is None:
        return result
    base = pathlib.Path(manifest.base)
    now = time.time()
    try:
        keys = _key_table(manifest)
        leased = manifest.leased_keys()
        total = sum(e["bytes"] for e in keys.values())
        result["bytes_before"] = total
        order = sorted(keys.values(), key=lambda e: (e["last_used"] or 0, e["key"]))
        chosen: list[str] = []
        freed = 0
        for entry in order:
            too_old = age is not None and (entry["last_used"] or 0) < now - age
            too_big = limit is not None and total - freed > limit
            if not (too_old or too_big):
                continue
            if entry["key"] in leased:
                result["skipped"] += 1
                continue
            chosen.append(entry["key"])
            freed += entry["bytes"]
        known = {p for (p,) in manifest.query("SELECT path FROM segments")}
        orphans = _orphans(base, known, leased, orphan_grace, now)
        if dry_run:
            gone, paths = chosen, list[str]()
        else:
            gone, paths = manifest.evict(chosen)
            result["skipped"] += len(chosen) - len(gone)
    finally:
        manifest.close()
    if not dry_run:
        remove_files(paths)
        remove_files([str(p) for p in orphans])
    result["removed"] = len([k for k in gone if k in keys])
    result["bytes_freed"] = sum(keys[k]["bytes"] for k in gone if k in keys)
    result["orphans"] = len(orphans)
    result["bytes_after"] = total - result["bytes_freed"]
    return result
