"""Why a step's key differs from an earlier one, in words: the reason a plan gives for a
miss, and what differed between two recorded runs (the same words, the same code)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from distilabel_nb.cache.describe import diff_descriptions
from distilabel_nb.cache.history import RunEntry

__all__ = ["Recorded", "compare_runs", "miss_reason"]


class Recorded(Protocol):
    """What an earlier run recorded of a step (a ``RunRecord`` has it)."""

    @property
    def key(self) -> str: ...

    @property
    def description(self) -> dict[str, Any]: ...


def miss_reason(name: str, key: str, description: dict[str, Any],
                last: Mapping[str, Recorded], keys: Mapping[str, str],
                preds: Sequence[str]) -> str:
    """Why ``name`` (now ``key``, described by ``description``, its predecessors' keys
    in ``keys``) is not what ``last`` recorded: "temperature changed 0.8 -> 0.7",
    "code of process() changed", "upstream 'load' changed", "new step"..."""
    record = last.get(name)
    if record is None:
        return "new step"
    changes = diff_descriptions(record.description, description)
    if changes:
        return "; ".join(changes)
    changed = [p for p in preds if p in last and last[p].key != keys[p]]
    if changed:
        return ", ".join(f"upstream {p!r} changed" for p in changed)
    if record.key == key:
        return "not in the cache (cleared, damaged, or never finished)"
    return "upstream changed"


class _Step:
    """A step as a history entry recorded it, shaped as ``Recorded``."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.key = str(fields.get("key") or "")
        self.description = dict(fields.get("description") or {})


def compare_runs(old: RunEntry, new: RunEntry) -> dict[str, str]:
    """What differed for each step of ``new`` since ``old`` ("unchanged" when its key
    is the same), plus "removed" for steps only ``old`` had. Both entries must have
    their steps (``history_run``)."""
    before = {name: _Step(fields) for name, fields in old.steps.items()}
    keys = {name: str(fields.get("key") or "") for name, fields in new.steps.items()}
    changes: dict[str, str] = {}
    for name, fields in new.steps.items():
        if name in before and before[name].key == keys[name]:
            changes[name] = "unchanged"
            continue
        preds = [str(p) for p in fields.get("preds") or ()]
        changes[name] = miss_reason(name, keys[name], dict(fields.get("description") or {}),
                                    before, keys, preds)
    for name in old.steps:
        if name not in new.steps:
            changes[name] = "removed"
    return changes
