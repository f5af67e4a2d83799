"""What a node and the side panel say: the detail line per status, and first rows."""

from __future__ import annotations

import re
from typing import Any

from distilabel_nb.engine.report import StepReport

__all__ = ["PREVIEW_ROWS", "node_detail", "table_preview"]

PREVIEW_ROWS = 5
_ERROR_NAME = re.compile(r"\b(?!StepFailedError)(\w*(?:Error|Exception|Interrupt))\b")


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def table_preview(table: Any, n: int = PREVIEW_ROWS) -> dict[str, Any] | None:
    """First rows of a pyarrow Table (or a list of dicts) as {columns, rows}."""
    if table is None:
        return None
    if hasattr(table, "slice") and hasattr(table, "to_pylist"):
        rows = table.slice(0, n).to_pylist()
        columns = list(table.column_names)
        total = int(table.num_rows)
    else:
        rows = list(table)[:n]
        columns = list(dict.fromkeys(k for row in rows for k in row))
        total = len(rows)
    shown = columns[:8]
    return {"columns": shown, "rows": [[_cell(r.get(c)) for c in shown] for r in rows],
            "total": total, "hidden_columns": len(columns) - len(shown)}


def node_detail(status: str, report: StepReport, planned: bool, running: dict[str, Any]) -> str:
    rows = report.rows
    if status == "running":
        done, total = running.get("rows_done", 0), running.get("rows_total")
        return f"{done:,}/{total:,} rows" if total else f"{done:,} rows done"
    if status == "pending":
        return "waiting"
    if planned:
        if status == "hit":
            return f"will reuse {rows:,} rows"
        if status == "partial":
            return f"will resume: {report.batches_reused}/{report.batches_total or '?'} batches"
        if status == "miss":
            return "will compute"
    if status == "hit":
        return f"{rows:,} rows reused"
    if status == "partial":
        if not report.rows_reused and not report.batches_reused:
            return f"stopped: {rows:,} rows kept"
        if report.batches_reused and report.batches_total:
            return f"{report.batches_reused}/{report.batches_total} batches reused"
        return f"{report.rows_reused:,}/{rows:,} rows reused"
    if status == "miss":
        return f"{rows:,} rows \u00b7 {report.seconds:.1f} s"
    if status == "failed":
        found = _ERROR_NAME.findall(f"{report.error or ''} {report.reason}")
        return f"FAILED \u00b7 {found[-1]}" if found else "FAILED"
    return status
