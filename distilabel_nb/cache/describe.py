"""Readable descriptions of steps and LLMs: what a signature covers, and what changed.

A description is plain JSON-like data (secrets left out); its hash is the signature, and
the difference between two descriptions is the reason a step missed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from distilabel_nb.fields import Fielded

__all__ = ["describe_fields", "describe_value", "diff_descriptions"]

_MAX_SHOWN = 40


def describe_value(value: Any) -> Any:
    """A value as plain data for the signature; nested steps/LLMs by their fields."""
    if isinstance(value, Fielded):
        described = {"class": type(value).__qualname__}
        described.update(describe_fields(value, skip=frozenset()))
        fingerprints = getattr(value, "code_fingerprints", None)
        if callable(fingerprints):
            code = fingerprints()
            if code:
                described["code"] = code
        return described
    if isinstance(value, dict):
        return {str(k): describe_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [describe_value(v) for v in value]
    return value


def describe_fields(obj: Fielded, skip: Iterable[str]) -> dict[str, Any]:
    skipped = set(skip)
    return {
        name: describe_value(getattr(obj, name))
        for name, field in obj._fields.items()
        if name not in skipped and not field.secret
    }


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


_ROWS = re.compile(r"^([\d,]+) rows, content ")


def _data_change(old: Any, new: Any) -> str:
    """' (100 -> 120 rows)' for loaders that describe their data by size and content."""
    before = _ROWS.match(old) if isinstance(old, str) else None
    after = _ROWS.match(new) if isinstance(new, str) else None
    if before is None or after is None:
        return ""
    if before.group(1) == after.group(1):
        return f" (same {before.group(1)} rows, different content)"
    return f" ({before.group(1)} -> {after.group(1)} rows)"


def diff_descriptions(old: Any, new: Any, path: str = "") -> list[str]:
    """Readable changes between two descriptions, e.g. 'temperature changed 0.8 -> 0.7'."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            here = f"{path}.{key}" if path else str(key)
            if path == "code" or here.endswith(".code"):
                if old.get(key) != new.get(key):
                    changes.append(f"code of {key}() changed")
                continue
            if key not in old:
                changes.append(f"{here} added ({_shown(new[key])})")
            elif key not in new:
                changes.append(f"{here} removed (was {_shown(old[key])})")
            else:
                changes.extend(diff_descriptions(old[key], new[key], here))
        return changes
    if old != new:
        if path.endswith("data"):
            return [f"{path} changed{_data_change(old, new)}"]
        if isinstance(old, list) and len(_shown(old)) >= _MAX_SHOWN:
            return [f"{path} changed"]
        return [f"{path} changed {_shown(old)} -> {_shown(new)}"]
    return []
