"""What the cache holds, per pipeline and per step, and clearing it.

Plain functions over a cache root, for the ``distilabel-nb cache`` command line and the
``%pipeline_cache`` magic. They never create a cache where there is none, and they read
a cache of another format version not at all (they say so instead).

A step's output under a cache key may be shared by several pipelines (same steps, same
upstream); its bytes then count in each of them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

from distilabel_nb.cache.layout import CACHE_VERSION, cache_root
from distilabel_nb.cache.manifest import Manifest
from distilabel_nb.cache.store import CorruptSegmentError

__all__ = [
    "cache_clear",
    "cache_ls",
    "cache_show",
    "cache_verify",
    "format_age",
    "format_size",
    "open_manifest",
    "other_versions",
    "parse_age",
    "parse_size",
]

_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6,
               "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_AGE_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str | int) -> int:
    """``"10GB"`` -> 10_000_000_000; ``"1.5GiB"``, ``"500M"``, ``"0"`` work too."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        msg = f"not a size: {text!r} (write e.g. 10GB, 500MB, 2GiB)"
        raise ValueError(msg)
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_age(text: str | float) -> float:
    """``"30d"`` -> seconds; units s, m, h, d, w."""
    if isinstance(text, int | float):
        return float(text)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _AGE_UNITS:
        msg = f"not a duration: {text!r} (write e.g. 30d, 12h, 2w)"
        raise ValueError(msg)
    return float(match.group(1)) * _AGE_UNITS[unit]


def format_size(nbytes: int | None) -> str:
    """1234567 -> ``"1.2 MB"``."""
    value = float(nbytes or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_age(when: float | None, now: float | None = None) -> str:
    """A timestamp as ``"3 min ago"``, ``"2 days ago"``; ``"-"`` when unknown."""
    if not when:
        return "-"
    seconds = max(0.0, (now or time.time()) - when)
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = int(seconds // size)
            plural = "s" if unit == "day" and count > 1 else ""
            return f"{count} {unit}{plural} ago"
    return "just now"


def other_versions(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Folders of cache formats other than this version's (left untouched)."""
    base = cache_root(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir()
                  if p.is_dir() and re.fullmatch(r"v\d+", p.name) and p.name != f"v{CACHE_VERSION}")


def open_manifest(root: str | os.PathLike[str] | None = None) -> Manifest | None:
    """The manifest of the cache at ``root``, or None when there is no cache there."""
    path = cache_root(root) / f"v{CACHE_VERSION}" / "manifest.sqlite"
    if not path.exists():
        return None
    return Manifest(path)


def _key_table(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """Every key the cache knows: its owner, size, batches and last use."""
    keys: dict[str, dict[str, Any]] = {}
    for key, n_batches, pipeline, step, completed, last_used in manifest.query(
            "SELECT key, n_batches, pipeline, step, completed, last_used FROM outputs"):
        keys[key] = {"key": key, "pipeline": pipeline, "step": step, "n_batches": n_batches,
                     "completed": completed, "last_used": last_used, "bytes": 0, "files": 0,
                     "batches": 0, "rows": 0}
    for key, nbytes, files, rows_json, created in manifest.query(
            "SELECT key, SUM(bytes), COUNT(*), group_concat(rows, '|'), MAX(created) "
            "FROM segments GROUP BY key"):
        entry = keys.setdefault(key, {"key": key, "pipeline": None, "step": None,
                                      "n_batches": None, "completed": None,
                                      "last_used": created, "bytes": 0, "files": 0,
                                      "batches": 0, "rows": 0})
        counts = [int(n) for part in (rows_json or "").split("|") for n in _ints(part)]
        entry.update(bytes=int(nbytes or 0), files=int(files), batches=len(counts),
                     rows=sum(counts))
    return keys


def _ints(text: str) -> Iterator[str]:
    return iter(re.findall(r"\d+", text))


def _runs(manifest: Manifest, pipeline: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT pipeline, step, key, status, rows, bytes, seconds, finished FROM runs"
    params: tuple[Any, ...] = ()
    if pipeline is not None:
        sql += " WHERE pipeline=?"
        params = (pipeline,)
    sql += " ORDER BY rowid"  # the order of the last run: topological
    names = ("pipeline", "step", "key", "status", "rows", "bytes", "seconds", "finished")
    return [dict(zip(names, row, strict=True)) for row in manifest.query(sql, params)]


def _pipeline_keys(keys: dict[str, dict[str, Any]], runs: list[dict[str, Any]],
                   pipeline: str, step: str | None = None) -> set[str]:
    found = {k for k, e in keys.items()
             if e["pipeline"] == pipeline and (step is None or e["step"] == step)}
    found |= {r["key"] for r in runs
              if r["pipeline"] == pipeline and (step is None or r["step"] == step)}
    return found


def cache_ls(root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One dict per pipeline: name, steps, bytes, files, cached keys, last use."""
    manifest = open_manifest(root)
    if manifest is None:
        return []
    try:
        keys = _key_table(manifest)
        runs = _runs(manifest)
    finally:
        manifest.close()
    names = sorted({e["pipeline"] for e in keys.values() if e["pipeline"]}
                   | {r["pipeline"] for r in runs})
    listing = []
    for name in names:
        own = _pipeline_keys(keys, runs, name) & set(keys)
        steps = {r["step"] for r in runs if r["pipeline"] == name}
        steps |= {keys[k]["step"] for k in own if keys[k]["step"]}
        finished = [r["finished"] for r in runs if r["pipeline"] == name]
        used = [keys[k]["last_used"] or 0 for k in own] + finished
        listing.append({
            "pipeline": name,
            "steps": len(steps),
            "entries": len(own),
            "bytes": sum(keys[k]["bytes"] for k in own),
            "files": sum(keys[k]["files"] for k in own),
            "last_run": max(finished, default=None),
            "last_used": max(used, default=None),
        })
    return listing


def _cache_status(entry: dict[str, Any] | None) -> str:
    if entry is None or not entry["batches"]:
        return "not cached"
    total = entry["n_batches"]
    if total is not None and entry["completed"] is not None and entry["batches"] >= total:
        return "complete"
    return f"partial ({entry['batches']} of {total if total is not None else '?'} batches)"


def cache_show(root: str | os.PathLike[str] | None, name: str) -> dict[str, Any]:
    """A pipeline's steps: last run status, cache status, rows, bytes, last use; plus
    the bytes of older cached versions of each step."""
    manifest = open_manifest(root)
    if manifest is None:
        msg = f"no cache at {cache_root(root)}"
        raise KeyError(msg)
    try:
        keys = _key_table(manifest)
        runs = _runs(manifest, name)
    finally:
        manifest.close()
    if not runs and not any(e["pipeline"] == name for e in keys.values()):
        known = ", ".join(sorted({e["pipeline"] for e in keys.values() if e["pipeline"]}))
        msg = f"no pipeline {name!r} in the cache at {cache_root(root)}"
        msg += f" (it has: {known})" if known else " (it is empty)"
        raise KeyError(msg)
    steps: dict[str, dict[str, Any]] = {}
    for run in runs:
        entry = keys.get(run["key"])
        steps[run["step"]] = {
            "step": run["step"], "key": run["key"], "last_run": run["status"],
            "finished": run["finished"], "seconds": run["seconds"],
            "cache": _cache_status(entry),
            "rows": entry["rows"] if entry else 0,
            "bytes": entry["bytes"] if entry else 0,
            "last_used": (entry["last_used"] if entry else None) or run["finished"],
            "older_versions": 0, "older_bytes": 0,
        }
    for key, entry in keys.items():
        if entry["pipeline"] != name or not entry["step"]:
            continue
        current = steps.get(entry["step"])
        if current is None:
            steps[entry["step"]] = current = {
                "step": entry["step"], "key": None, "last_run": "-", "finished": None,
                "seconds": None, "cache": "not cached", "rows": 0, "bytes": 0,
                "last_used": None, "older_versions": 0, "older_bytes": 0,
            }
        if key != current["key"]:
            current["older_versions"] += 1
            current["older_bytes"] += entry["bytes"]
    total = sum(s["bytes"] + s["older_bytes"] for s in steps.values())
    return {"pipeline": name, "root": str(cache_root(root)), "bytes": total,
            "last_run": max((r["finished"] for r in runs), default=None),
            "steps": list(steps.values())}


def cache_clear(root: str | os.PathLike[str] | None, name: str,
                step: str | None = None) -> dict[str, Any]:
    """Remove a pipeline's cached outputs (all versions), or one step's.

    Outputs in use by a running process are kept and counted in ``skipped``.
    """
    from distilabel_nb.cache.gc import remove_files

    manifest = open_manifest(root)
    if manifest is None:
        return {"removed": 0, "bytes": 0, "skipped": 0}
    try:
        keys = _key_table(manifest)
        runs = _runs(manifest, name)
        if not runs and not any(e["pipeline"] == name for e in keys.values()):
            msg = f"no pipeline {name!r} in the cache at {cache_root(root)}"
            raise KeyError(msg)
        if step is not None and not any(r["step"] == step for r in runs) and not any(
                e["pipeline"] == name and e["step"] == step for e in keys.values()):
            msg = f"pipeline {name!r} has no step {step!r} in the cache"
            raise KeyError(msg)
        wanted = _pipeline_keys(keys, runs, name, step)
        gone, paths = manifest.evict(wanted)
        if step is None and len(gone) == len(wanted):
            manifest.forget_runs(name)  # the pipeline leaves the listing
    finally:
        manifest.close()
    remove_files(paths)
    removed = [k for k in gone if k in keys]
    return {"removed": len(removed), "bytes": sum(keys[k]["bytes"] for k in removed),
            "skipped": len(wanted) - len(gone)}


def cache_verify(root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read every cached file and check it against its checksum (a run checks only the
    files it reads). Damaged or missing files are forgotten, so the next run recomputes
    them; returns the counts and, per damaged file, its pipeline, step and why."""
    from distilabel_nb.cache.store import SegmentStore

    manifest = open_manifest(root)
    result: dict[str, Any] = {"files": 0, "damaged": []}
    if manifest is None:
        return result
    try:
        store = SegmentStore(manifest.base)
        owners = {k: (p, s) for k, p, s in manifest.query(
            "SELECT key, pipeline, step FROM outputs")}
        keys = [k for (k,) in manifest.query("SELECT DISTINCT key FROM segments")]
        for key in keys:
            pipeline, step = owners.get(key, (None, None))
            refs = {(ref.path, ref.checksum) for ref in manifest.state(key).batches.values()}
            for path, checksum in sorted(refs):
                result["files"] += 1
                try:
                    store.read(path, checksum)
                except CorruptSegmentError as error:
                    result["damaged"].append({"pipeline": pipeline, "step": step,
                                              "path": path, "why": error.why})
                    manifest.drop_segment(path)
                    store.delete([path])
        manifest.release()
    finally:
        manifest.close()
    return result
