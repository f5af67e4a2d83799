"""Rows and batches each step of a run should end with, for progress displays."""

from __future__ import annotations

from distilabel_nb.engine.plan import StepPlan
from distilabel_nb.graph.description import PipelineGraph

__all__ = ["expected_sizes"]


def expected_sizes(pipeline: PipelineGraph, plans: dict[str, StepPlan]
                   ) -> dict[str, tuple[int | None, int | None]]:
    """Rows and batches each step should end with, for progress displays: exact for
    hits and sized loaders, an estimate (as many rows as its input) for the others."""
    sizes: dict[str, tuple[int | None, int | None]] = {}
    for name in pipeline.dag.topological():
        plan, step = plans[name], pipeline.steps[name]
        rows: int | None
        if plan.status == "hit":
            rows = plan.state.rows
        elif step.kind == "generator":
            counter = getattr(step, "total_rows", None)
            rows = counter() if callable(counter) else None
        elif _routed(pipeline, name):
            rows = None  # a part of its input only
        else:
            upstream = [sizes[p][0] for p in pipeline.dag.pred[name]]
            rows = max(upstream) if upstream and None not in upstream else None  # type: ignore[type-var]
        batches = plan.batches_total
        if batches is None and rows is not None:
            batches = 1 if plan.batch_size == 0 else -(-rows // plan.batch_size)
        sizes[name] = (rows, batches)
    return sizes


def _routed(pipeline: PipelineGraph, name: str) -> bool:
    """Whether step ``name`` or one of its ancestors gets only the batches routed to it."""
    targets = {t for router in pipeline.routers.values() for t in router.targets}
    return bool(targets) and (name in targets or bool(targets & pipeline.dag.ancestors(name)))
