"""What a node, the header and the side panel say: the detail line per status, the
run's summary line, and first rows."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any

from distilabel_nb.engine.estimate import money
from distilabel_nb.engine.report import RunReport, StepReport

__all__ = ["PREVIEW_ROWS", "load_previews", "node_detail", "node_money", "static_picture",
           "summary_line", "table_preview"]

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
    """The node's short line: what the step did (or will do), and its money if any (the
    side panel has the full figures)."""
    money_line = node_money(report, planned)
    if planned and money_line and status != "running":
        return money_line
    detail = _status_detail(status, report, planned, running)
    return f"{detail} \u00b7 {money_line}" if money_line and status != "running" else detail


def node_money(report: StepReport, planned: bool) -> str:
    """"sends 1,200 · ~$0.42" in a plan; "$0.12 spent" (or "$0.30 saved") after a run."""
    if planned:
        if not report.rows_to_send:
            return ""
        cost = f" \u00b7 ~{money(report.est_cost)}" if report.est_cost is not None else ""
        return f"sends {report.rows_to_send:,}{cost}"
    if report.cost_used:
        return f"{money(report.cost_used)} spent"
    if report.cost_saved:
        return f"{money(report.cost_saved)} saved"
    return ""


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


def summary_line(report: RunReport) -> str:
    """'run: 1 hit, 2 miss · 0.42 s · 1,200 tokens saved' (or 'plan: ...')."""
    counts: dict[str, int] = {}
    for r in report.values():
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = [f"{counts[s]} {s}" for s in ("hit", "partial", "miss", "failed") if s in counts]
    verb = "plan" if report.planned else "run"
    text = f"{verb}: " + ", ".join(parts) if parts else verb
    if not report.planned:
        text += f" \u00b7 {report.seconds:.2f} s"
        saved = sum(r.tokens_saved for r in report.values())
        if saved:
            text += f" \u00b7 {saved:,} tokens saved"
    if report.error:
        text += f" \u00b7 error: {report.error[:200]}"
    return text


def load_previews(pipeline: Any, nodes: Iterable[str], reports: Mapping[str, StepReport],
                  distiset: Any = None, keys: Mapping[str, str] | None = None
                  ) -> dict[str, Any]:
    """First rows of each step for the side panel: from ``pipeline.preview`` (the cache;
    under ``keys[step]`` for a recorded run), else, for leaves, from the Distiset."""
    results: dict[str, Any] = {}
    leaves = pipeline.dag.leaves()
    for name in nodes:
        table = None
        try:
            if keys is not None:
                table = pipeline.preview(name, PREVIEW_ROWS, key=keys[name]) \
                    if keys.get(name) else None
            else:
                table = pipeline.preview(name, PREVIEW_ROWS)
        except Exception:  # a preview is a nicety: never let it break the graph
            table = None
        if table is None and distiset is not None and name in leaves:
            config = "default" if len(leaves) == 1 else name
            if config in distiset:  # Arrow, without building the datasets objects
                table = distiset.arrow_table(config)
        try:
            results[name] = table_preview(table)
        except Exception:  # same: odd values must not break the graph
            results[name] = None
        report = reports.get(name)
        if results[name] is not None and report is not None and report.rows:
            results[name]["total"] = report.rows
    return results


def static_picture(data: dict[str, Any], svg: str | Exception, message: str,
                   name: str) -> dict[str, Any]:
    """A widget's mimebundle plus its picture (SVG, and HTML with the summary line) for
    front ends without widgets; an error (no graphviz) is said in the text instead."""
    if isinstance(svg, Exception):
        data["text/plain"] = f"{data.get('text/plain', '')}\n({svg})"
        return data
    data["image/svg+xml"] = svg
    data["text/html"] = (f'<div class="dnb-static">{svg}<div style="font:12px sans-serif;'
                         f'color:#57606a">{html.escape(message)}</div></div>')
    data["text/plain"] = f"CacheGraph({name!r}): {message}"
    return data
