"""A finished run as the cache's history keeps it (``RunEntry``), from its report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from distilabel_nb.cache.history import RunEntry, summarize

if TYPE_CHECKING:
    from distilabel_nb.engine.plan import StepPlan
    from distilabel_nb.engine.report import StepReport

__all__ = ["history_entry"]

_ERROR_CHARS = 2000


def history_entry(run_id: str, pipeline: str, plans: Mapping[str, StepPlan],
                  reports: Mapping[str, StepReport], preds: Mapping[str, Sequence[str]],
                  leaves: Sequence[str], routes: Mapping[tuple[str, str], str],
                  started: float, finished: float, error: str | None) -> RunEntry:
    """Each step's report fields plus its key, description and predecessors (what
    comparing two runs needs); ``routes`` are the edges a routing function feeds."""
    steps: dict[str, dict[str, Any]] = {}
    for name, plan in plans.items():
        report = reports.get(name)
        fields: dict[str, Any] = report.as_dict() if report is not None else {
            "name": name, "status": plan.status, "reason": plan.reason}
        if fields.get("error"):
            fields["error"] = str(fields["error"])[-_ERROR_CHARS:]
        fields.update(key=plan.key, description=plan.description, preds=list(preds[name]))
        steps[name] = fields
    edges = tuple((p, name) for name in plans for p in preds[name])
    summary = summarize(steps, leaves, finished - started, error)
    return RunEntry(run_id, pipeline, started, finished, summary, steps, edges,
                    tuple((a, b, label) for (a, b), label in routes.items()))
