"""The small JSON facts of an object-store cache (commit, completion, run and lease
markers): signed with a checksum of their fields, so a damaged one is dropped, never
trusted; a segment marker may only name a file of its own key's data folder."""

from __future__ import annotations

import json
import posixpath
import urllib.parse
from typing import Any

import xxhash

__all__ = ["inside", "intact", "quote", "sign", "signed", "snapshot", "valid"]


def sign(record: dict[str, Any]) -> str:
    """The checksum of a marker's fields (all but ``sig``)."""
    fields = {k: v for k, v in record.items() if k != "sig"}
    return xxhash.xxh3_64_hexdigest(json.dumps(fields, sort_keys=True, default=str).encode())


def signed(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "sig": sign(record)}


def intact(record: Any) -> bool:
    return isinstance(record, dict) and record.get("sig") == sign(record)


def valid(record: Any, key: str) -> bool:
    """A marker of ``key``, intact, naming only a file of its own key."""
    return intact(record) and record.get("key") == key and inside(record, key)


def inside(record: dict[str, Any], key: str) -> bool:
    """A segment marker names a file of its own key's data folder, nothing else."""
    if "path" not in record:
        return True  # a completion marker
    path = str(record["path"])
    return path == f"data/{key[:2]}/{key}/{posixpath.basename(path)}" and ".." not in path


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="-_.") or "_"


def snapshot(marker: dict[str, Any], key: str,
             listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The segment markers a completion marker knew, those still listed and valid."""
    return {name: record for name, record in marker.get("segments", {}).items()
            if name in listing and valid(record, key)}
