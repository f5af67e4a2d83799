"""The graph's run history strip: a pipeline's recorded runs as the front end lists them,
and one recorded run as the graph shows it (colours, reasons, rows)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from distilabel_nb.cache.history import RunEntry
from distilabel_nb.drawing.render import step_reports
from distilabel_nb.engine.report import RunReport

__all__ = ["HISTORY_SHOWN", "entry_report", "run_label", "strip_entries"]

#: The strip lists this many of the latest runs (the rest: ``distilabel-nb runs NAME``).
HISTORY_SHOWN = 200

_MONEY = ("cost_saved", "cost_used", "cost")


def run_label(entry: RunEntry, number: int) -> str:
    """'run 3 · 14:02:11' (local time)."""
    return f"run {number} \u00b7 {time.strftime('%H:%M:%S', time.localtime(entry.started))}"


def strip_entries(entries: Sequence[RunEntry], own: str | None) -> list[dict[str, Any]]:
    """What the strip shows of each run, oldest first: its number, time, statuses,
    duration, rows out, tokens used and saved (and money, when steps report it)."""
    shown = list(entries)[-HISTORY_SHOWN:]
    first = len(entries) - len(shown) + 1
    rows: list[dict[str, Any]] = []
    for number, entry in enumerate(shown, first):
        summary = entry.summary
        item: dict[str, Any] = {
            "run_id": entry.run_id, "number": number,
            "time": time.strftime("%H:%M:%S", time.localtime(entry.started)),
            "date": time.strftime("%Y-%m-%d", time.localtime(entry.started)),
            "statuses": entry.statuses, "seconds": round(entry.seconds, 3),
            "rows": int(summary.get("rows") or 0),
            "tokens_used": int(summary.get("tokens_used") or 0),
            "tokens_saved": int(summary.get("tokens_saved") or 0),
            "error": (entry.error or "")[:200], "own": entry.run_id == own}
        money = next((summary[k] for k in _MONEY if isinstance(summary.get(k), int | float)),
                     None)
        if money is not None:
            item["money_saved"] = money
        rows.append(item)
    return rows


def entry_report(entry: RunEntry) -> RunReport:
    """A recorded run (read whole) as the report the graph draws."""
    return RunReport(entry.pipeline, step_reports(entry), entry.seconds, entry.error,
                     run_id=entry.run_id)
