"""What the cache holds, per pipeline and per step, and clearing it.

Plain functions over a cache root, for the ``distilabel-nb cache`` command line and the
``%pipeline_cache`` magic. They never create a cache where there is none, and they read
a cache of another format version not at all (they say so instead).

A cache root is a folder (SQLite manifest) or a URI (``s3://bucket/prefix``, ``gs://``,
``file://``: the object-store manifest); both are read through the ``Catalog`` interface,
so every command behaves the same on either. A step's output under a cache key may be
shared by several pipelines (same steps, same upstream); its bytes then count in each.
"""

from __future__ import annotations

import concurrent.futures
import os
import posixpath
import re
import time
from typing import Any

import pyarrow.fs as pafs

from distilabel_nb.cache.access import (
    CacheLocationError,
    cache_location,
    filesystem_of,
    open_cache,
    opened,
)
from distilabel_nb.cache.catalog import OutputEntry
from distilabel_nb.cache.layout import CACHE_VERSION
from distilabel_nb.cache.lineage import downstream_keys
from distilabel_nb.cache.records import RunRecord

__all__ = [
    "CacheLocationError",
    "cache_clear",
    "cache_location",
    "cache_ls",
    "cache_show",
    "cache_verify",
    "format_age",
    "format_size",
    "open_cache",
    "opened",
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
    try:
        filesystem, path = filesystem_of(root)
        infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except (CacheLocationError, OSError):
        return []
    names = {posixpath.basename(i.path.rstrip("/")) for i in infos
             if i.type == pafs.FileType.Directory}
    return sorted(n for n in names if re.fullmatch(r"v\d+", n) and n != f"v{CACHE_VERSION}")


def _pipeline_keys(keys: dict[str, OutputEntry], runs: list[RunRecord], pipeline: str,
                   step: str | None = None) -> set[str]:
    found = {k for k, e in keys.items()
             if e.pipeline == pipeline and (step is None or e.step == step)}
    found |= {r.key for r in runs if r.pipeline == pipeline and (step is None or r.step == step)}
    return found


def _unknown(root: str | os.PathLike[str] | None, name: str,
             keys: dict[str, OutputEntry]) -> KeyError:
    known = ", ".join(sorted({e.pipeline for e in keys.values() if e.pipeline}))
    msg = f"no pipeline {name!r} in the cache at {cache_location(root)}"
    msg += f" (it has: {known})" if known else " (it is empty)"
    return KeyError(msg)


def cache_ls(root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One dict per pipeline: name, steps, bytes, files, cached keys, last use."""
    with opened(root) as cache:
        if cache is None:
            return []
        keys, runs = cache[0].outputs(), cache[0].runs()
    names = sorted({e.pipeline for e in keys.values() if e.pipeline} | {r.pipeline for r in runs})
    listing = []
    for name in names:
        own = _pipeline_keys(keys, runs, name) & set(keys)
        steps = {r.step for r in runs if r.pipeline == name}
        steps |= {s for k in own if (s := keys[k].step)}
        finished = [r.finished for r in runs if r.pipeline == name]
        used = [keys[k].last_used or 0 for k in own] + finished
        listing.append({
            "pipeline": name,
            "steps": len(steps),
            "entries": len(own),
            "bytes": sum(keys[k].nbytes for k in own),
            "files": sum(keys[k].files for k in own),
            "last_run": max(finished, default=None),
            "last_used": max(used, default=None),
        })
    return listing


def _step_row(step: str, run: RunRecord | None, entry: OutputEntry | None) -> dict[str, Any]:
    return {
        "step": step, "key": run.key if run else None,
        "last_run": run.status if run else "-",
        "finished": run.finished if run else None, "seconds": run.seconds if run else None,
        "cache": entry.status if entry else "not cached",
        "rows": entry.rows if entry else 0, "bytes": entry.nbytes if entry else 0,
        "last_used": (entry.last_used if entry else None) or (run.finished if run else None),
        "older_versions": 0, "older_bytes": 0,
    }


def _run_money(catalog: Any, pipeline: str,
               runs: list[RunRecord]) -> dict[tuple[str | None, str], dict[str, Any]]:
    """Money each step's last run spent and saved (LLM steps with a price), from the
    run history: {(run id, step): {"cost_used", "cost_saved"}}."""
    money: dict[tuple[str | None, str], dict[str, Any]] = {}
    for run_id in {r.run_id for r in runs if r.run_id}:
        entry = catalog.history_run(pipeline, run_id)
        for step, fields in (entry.steps if entry is not None else {}).items():
            if fields.get("cost_used") is not None or fields.get("cost_saved") is not None:
                money[(run_id, step)] = {"cost_used": fields.get("cost_used"),
                                         "cost_saved": fields.get("cost_saved")}
    return money


def cache_show(root: str | os.PathLike[str] | None, name: str) -> dict[str, Any]:
    """A pipeline's steps: last run status, cache status, rows, bytes, last use; plus
    the bytes of older cached versions of each step, and for LLM steps with a price the
    money their last run spent and saved (``cost_used``, ``cost_saved``)."""
    with opened(root) as cache:
        if cache is None:
            msg = f"no cache at {cache_location(root)}"
            raise KeyError(msg)
        keys, runs = cache[0].outputs(), cache[0].runs(name)
        money = _run_money(cache[0], name, runs)
    if not runs and not any(e.pipeline == name for e in keys.values()):
        raise _unknown(root, name, keys)
    steps = {r.step: {**_step_row(r.step, r, keys.get(r.key)),
                      **money.get((r.run_id, r.step), {})} for r in runs}
    for key, entry in keys.items():
        if entry.pipeline != name or not entry.step:
            continue
        current = steps.setdefault(entry.step, _step_row(entry.step, None, None))
        if key != current["key"]:
            current["older_versions"] += 1
            current["older_bytes"] += entry.nbytes
    total = sum(s["bytes"] + s["older_bytes"] for s in steps.values())
    return {"pipeline": name, "root": cache_location(root), "bytes": total,
            "last_run": max((r.finished for r in runs), default=None),
            "steps": list(steps.values())}


def cache_clear(root: str | os.PathLike[str] | None, name: str,
                step: str | None = None) -> dict[str, Any]:
    """Remove a pipeline's cached outputs (all versions), or one step's and those of
    the steps computed from it (so the next run recomputes that step and everything
    downstream of it, and reuses the rest).

    Outputs in use by a running process are kept and counted in ``skipped``. Commit
    records go before the data files: a clear that dies half-way leaves files no record
    names (``cache gc`` removes them), never a record naming a missing file.
    """
    with opened(root) as cache:
        if cache is None:
            return {"removed": 0, "bytes": 0, "skipped": 0, "steps": []}
        manifest, store = cache
        keys, runs = manifest.outputs(), manifest.runs(name)
        if not runs and not any(e.pipeline == name for e in keys.values()):
            raise _unknown(root, name, keys)
        wanted = _pipeline_keys(keys, runs, name, step)
        if step is not None and not wanted:
            msg = f"pipeline {name!r} has no step {step!r} in the cache"
            raise KeyError(msg)
        if step is not None:
            wanted |= downstream_keys(runs, wanted)
        gone, paths = manifest.evict(wanted)
        if step is None and len(gone) == len(wanted):
            manifest.forget_runs(name)  # the pipeline leaves the listing
    store.remove(paths)
    removed = [k for k in gone if k in keys]
    cleared = [r.step for r in runs if r.key in wanted] or ([step] if step else [])
    return {"removed": len(removed), "bytes": sum(keys[k].nbytes for k in removed),
            "skipped": len(wanted) - len(gone), "steps": cleared}


def cache_verify(root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read every cached file and check it against its checksum (a run checks only the
    files it reads). Damaged or missing files are forgotten, so the next run recomputes
    them; returns the counts and, per damaged file, its pipeline, step and why.

    A segment whose own file is intact but which references a column of a damaged file
    is forgotten too; its file is not deleted, as other segments may reference it (the
    garbage collector removes it once nothing does)."""
    result: dict[str, Any] = {"files": 0, "damaged": []}
    with opened(root) as cache:
        if cache is None:
            return result
        manifest, store = cache
        segments = sorted({(s.path, s.checksum, e.pipeline, e.step)
                           for e in manifest.outputs().values() for s in e.segments})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:  # object stores: slow per GET
            found = list(pool.map(lambda s: store.damage(s[0], s[1]), segments))
        sources = set()
        for (path, _, pipeline, step), error in zip(segments, found, strict=True):
            result["files"] += 1
            if error is not None:
                result["damaged"].append({"pipeline": pipeline, "step": step, "path": path,
                                          "why": error.why})
                manifest.drop_segment(path)  # its commit record first, then the file
                sources.add(error.source)
        store.delete(sorted(sources))
    return result
