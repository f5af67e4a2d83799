"""What a graph draws of the one run (or plan) it shows: each step's report as the
run's events arrive, the steps still as planned, the running ones with their progress,
and from that each node's ``NodeView`` and side-panel fields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from distilabel_nb.drawing.render import NodeView
from distilabel_nb.drawing.views import node_detail, summary_line
from distilabel_nb.engine.events import RunEvent
from distilabel_nb.engine.report import ReportBuilder, RunReport, StepReport

__all__ = ["RunState"]

_FINAL = ("hit", "miss", "partial", "failed")


class RunState:
    """The state of one run as a graph shows it; ``apply(event)`` returns the graph's
    new (mode, message) when the event changes them."""

    def __init__(self, pipeline: str, report: RunReport | None = None) -> None:
        self.builder = ReportBuilder(pipeline)
        self.planned: set[str] = set()       # steps whose status is still the plan's
        self.running: dict[str, dict[str, Any]] = {}
        self.started_compute = False
        if report is not None:
            self.builder = ReportBuilder(report.pipeline)
            self.builder.steps = {n: StepReport(**r.as_dict()) for n, r in report.items()}
            self.planned = set(report) if report.planned else set()

    @property
    def steps(self) -> dict[str, StepReport]:
        return self.builder.steps

    def apply(self, event: RunEvent) -> tuple[str, str] | None:
        self.builder(event)
        step = event.step
        if event.kind == "run_started":
            return "plan", "planning..."
        if event.kind == "step_planned" and step is not None:
            self.planned.add(step)
        elif event.kind in ("step_started", "batch_done") and step is not None:
            self.planned.discard(step)
            running = self.running.setdefault(step, {})
            running["rows_done"] = event.rows_done
            if event.rows_total is not None:
                running["rows_total"] = event.rows_total
            running["batches_done"] = event.batches_done
            if event.batches_total is not None:
                running["batches_total"] = event.batches_total
            if not self.started_compute:
                self.started_compute = True
                return "running", "running..."
        elif event.kind == "step_finished" and step is not None:
            self.planned.discard(step)
            self.running.pop(step, None)
        elif event.kind == "run_finished":
            self.planned, self.running = set(), {}
            report = self.builder.report()
            # a run that went on past failed batches still shows as failed
            failed = any(r.status == "failed" for r in report.values())
            return ("failed" if event.message or failed else "done"), summary_line(report)
        return None

    def status(self, name: str) -> str:
        report = self.builder.steps.get(name)
        if name in self.running:
            return "running"
        if report is None:
            return "pending"
        if self.started_compute and name in self.planned and report.status != "hit":
            return "pending"
        return report.status if report.status in (*_FINAL, "pending") else "pending"

    def views(self, nodes: Iterable[str], use_cache: Mapping[str, bool],
              rerun: Iterable[str]) -> dict[str, NodeView]:
        """Each node's view; ``rerun``: steps re-running because an upstream cache is off."""
        reruns = set(rerun)
        views: dict[str, NodeView] = {}
        for name in nodes:
            report = self.builder.steps.get(name)
            status = self.status(name)
            running = self.running.get(name, {})
            progress = None
            if running.get("rows_total"):
                progress = running.get("rows_done", 0) / running["rows_total"]
            elif running.get("batches_total"):
                progress = running.get("batches_done", 0) / running["batches_total"]
            detail = node_detail(status, report or StepReport(name, "pending", ""),
                                 name in self.planned, running)
            reason = report.reason if report is not None else ""
            views[name] = NodeView(status=status, detail=detail,
                                   use_cache=use_cache.get(name, True), rerun=name in reruns,
                                   tooltip=f"{name}: {status}" + (f" \u2014 {reason}"
                                                                  if reason else ""),
                                   progress=progress)
        return views

    def details(self, views: Mapping[str, NodeView], previews: Mapping[str, Any],
                changes: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The side panel's fields per step (``changes``: two runs compared instead)."""
        out: dict[str, Any] = {}
        for name, view in views.items():
            report = self.builder.steps.get(name)
            entry: dict[str, Any] = report.as_dict() if report is not None else {"name": name}
            entry["estimate"] = report.estimate if report is not None else ""
            entry.pop("key", None)
            entry["signature"] = (entry.get("signature") or "")[:12]
            if entry.get("error"):
                entry["error"] = str(entry["error"])[-2000:]
            if changes is not None:
                entry = {"name": name, "reason": changes.get(name, ""), "compare": True}
            entry.update(status=view.status, use_cache=view.use_cache, rerun=view.rerun,
                         planned=name in self.planned, preview=previews.get(name))
            entry.update(self.running.get(name, {}))
            out[name] = entry
        return out
