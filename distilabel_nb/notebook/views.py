"""What a node and the side panel say: the detail line per status, and first rows."""

from __future__ import annotations

import re
from typing import Any

from distilabel_nb.engine.estimate import money
from distilabel_nb.engine.report import StepReport

__all__ = ["PREVIEW_ROWS", "node_detail", "node_money", "table_preview"]

PREVIEW_ROWS = 5
_ERROR_NAME = re.compile(r"\b(?!StepFailedError)(\w*(?:Error|Exception|Interrupt))\b")


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def table_preview(table: Any, n: int = PREVIEW_ROWS) -> dict[str, Any] | None:
    """First rows of a pyarrow Table, a ``datasets.Dataset`` (or a list of dicts) as
    {columns, rows}."""
    if table is None:
        return None
    if hasattr(table, "features") and hasattr(table, "select"):  # a datasets.Dataset
        rows = table.select(range(min(n, len(table)))).to_list()
        columns = list(table.column_names)
        total = len(table)
    elif hasattr(table, "slice") and hasattr(table, "to_pylist"):
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
    """The node's short line: what the step did (or will do), and its money if any."""
    detail = _status_detail(status, report, planned, running)
    money_line = node_money(report, planned)
    return f"{detail} \u00b7 {money_line}" if money_line and status != "running" else detail


def node_money(report: StepReport, planned: bool) -> str:
    """"sends 1,200 rows ~$0.42" in a plan; "$0.12 spent, $0.30 saved" after a run."""
    if planned:
        if not report.rows_to_send:
            return ""
        cost = f" ~{money(report.est_cost)}" if report.est_cost is not None else ""
        return f"sends {report.rows_to_send:,}{cost}"
    parts = []
    if report.cost_used:
        parts.append(f"{money(report.cost_used)} spent")
    if report.cost_saved:
        parts.append(f"{money(report.cost_saved)} saved")
    return ", ".join(parts)


def _status_detail(status: str, report: StepReport, planned: bool,
                   running: dict[str, Any]) -> str:
    rows = report.rows
    if report.halted and status != "running":
        return report.halted
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
