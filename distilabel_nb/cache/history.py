"""Run history: one record per finished run of a pipeline, kept by both manifests.

The last-run table (``RunRecord``) keeps only each step's latest run, which is what a
plan needs to explain a miss. The history keeps every run whole, so that a graph can
show an earlier run (colours, reasons, rows) after a kernel restart or when another
process ran the pipeline, and two runs can be compared. A history entry holds a small
summary (read for the list) and its steps (read when one run is shown).

Caches written before the history existed simply have none: their first new run starts
it. Nothing else of the cache format changes.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["HISTORY_SCHEMA", "RunEntry", "new_run_id", "pick_run", "summarize"]

#: The SQLite manifest's history table (created when missing: older caches gain it).
HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, started REAL NOT NULL,
    finished REAL NOT NULL, summary TEXT NOT NULL, steps TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_by_pipeline ON history (pipeline, finished);
"""


def new_run_id(now: float | None = None) -> str:
    """A run's id: its UTC start time (sorts by time, reads as one) and 6 random hex
    digits (two processes starting in the same second still differ)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


@dataclasses.dataclass(frozen=True)
class RunEntry:
    """One finished run of a pipeline as its history keeps it.

    ``steps`` maps each step, in topological order, to its report fields (status,
    reason, rows, seconds, tokens...) plus what comparing runs needs: ``key``,
    ``description`` and ``preds`` (predecessor step names). It is empty in entries read
    for a list (``summary_only``).
    """

    run_id: str
    pipeline: str
    started: float
    finished: float
    summary: dict[str, Any]
    steps: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    edges: tuple[tuple[str, str], ...] = ()
    #: Edges a routing function feeds: (source, target, the function's label).
    routes: tuple[tuple[str, str, str], ...] = ()

    @property
    def seconds(self) -> float:
        return float(self.summary.get("seconds", max(0.0, self.finished - self.started)))

    @property
    def error(self) -> str | None:
        error = self.summary.get("error")
        return str(error) if error else None

    @property
    def statuses(self) -> dict[str, int]:
        """How many steps ended in each status."""
        return dict(self.summary.get("statuses", {}))

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "pipeline": self.pipeline, "started": self.started,
                "finished": self.finished, "summary": self.summary, "steps": self.steps,
                "edges": [list(e) for e in self.edges], "routes": [list(r) for r in self.routes]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], summary_only: bool = False) -> RunEntry:
        steps = {} if summary_only else dict(data.get("steps") or {})
        return cls(str(data["run_id"]), str(data["pipeline"]), float(data["started"]),
                   float(data["finished"]), dict(data.get("summary") or {}), steps,
                   tuple((str(a), str(b)) for a, b in data.get("edges") or ()),
                   tuple((str(a), str(b), str(c)) for a, b, c in data.get("routes") or ()))


_COUNTED = ("rows_reused", "rows_computed", "tokens_used", "tokens_saved", "bytes")


def summarize(steps: Mapping[str, Mapping[str, Any]], leaves: Sequence[str],
              seconds: float, error: str | None) -> dict[str, Any]:
    """The few numbers a history strip shows: statuses, rows out, tokens (and any
    ``cost_*``/``*_cost`` money fields steps report), duration and error."""
    statuses: dict[str, int] = {}
    for step in steps.values():
        status = str(step.get("status", "?"))
        statuses[status] = statuses.get(status, 0) + 1
    summary: dict[str, Any] = {
        "statuses": statuses, "seconds": round(seconds, 4), "error": error,
        "rows": sum(int(steps[n].get("rows") or 0) for n in leaves if n in steps),
        "steps": len(steps)}
    for field in _COUNTED:
        summary[field] = sum(int(s.get(field) or 0) for s in steps.values())
    money = {k for s in steps.values() for k, v in s.items()
             if ("cost" in k) and isinstance(v, int | float) and not isinstance(v, bool)}
    for field in sorted(money):
        summary[field] = round(sum(float(s.get(field) or 0.0) for s in steps.values()), 6)
    summary["host"] = os.uname().nodename if hasattr(os, "uname") else ""
    summary["pid"] = os.getpid()
    return summary


def pick_run(entries: Sequence[RunEntry], wanted: str) -> RunEntry:
    """The entry ``wanted`` names: a run id, a unique prefix of one, or a position
    (``1`` the first run, ``-1`` the last). Raises ``KeyError`` saying what exists."""
    if not entries:
        msg = "no runs are recorded for this pipeline yet"
        raise KeyError(msg)
    text = wanted.strip()
    if text.lstrip("-").isdigit() and len(text.lstrip("-")) <= 4:
        position = int(text)
        index = position - 1 if position > 0 else position
        if position != 0 and -len(entries) <= index < len(entries):
            return entries[index]
        msg = f"there is no run #{position}: {len(entries)} runs are recorded (1..{len(entries)})"
        raise KeyError(msg)
    found = [e for e in entries if e.run_id == text] or \
        [e for e in entries if e.run_id.startswith(text)]
    if len(found) == 1:
        return found[0]
    shown = ", ".join(e.run_id for e in entries[-5:])
    what = "several runs start with" if found else "no run has the id"
    msg = f"{what} {text!r}; the latest runs are: {shown} (or give a position: 1, -1)"
    raise KeyError(msg)
