"""What a plan says an LLM step will send and cost, from what the cache already holds.

For each LLM step a run would compute, the plan gathers the step's input rows where they
can be known without running anything: the cached output of predecessors that are hits,
or the rows of an in-memory loader (a generator step with ``plan_rows()``). The step
itself (``Task.estimate``) looks each row up in its row cache and counts the tokens of the
rows it lacks. A step whose input would be computed first by this run (an upstream miss)
gets ``rows_to_send=None``: unknown until that step has run.
"""

from __future__ import annotations

import dataclasses
import pathlib
import threading
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from distilabel_nb.cache.layout import local_dir
from distilabel_nb.cache.store import CorruptSegmentError, SegmentStore
from distilabel_nb.engine.channel import Channel
from distilabel_nb.llms.budget import Budget

if TYPE_CHECKING:
    from distilabel_nb.engine.plan import StepPlan
    from distilabel_nb.graph.description import PipelineGraph

__all__ = ["CostEstimate", "describe_estimate", "estimate_costs", "money", "row_cache_dir",
           "run_budget"]


@dataclasses.dataclass(frozen=True)
class CostEstimate:
    """One LLM step's estimate: rows to send, tokens, and money (None: unknown)."""

    rows_to_send: int | None
    est_input_tokens: int | None = None
    est_output_tokens: int | None = None
    est_cost: float | None = None
    #: Why the figures are unknown ("" when they are known).
    unknown: str = ""

    def as_extra(self) -> dict[str, Any]:
        return {"rows_to_send": self.rows_to_send, "est_input_tokens": self.est_input_tokens,
                "est_output_tokens": self.est_output_tokens, "est_cost": self.est_cost}


def run_budget(pipeline: PipelineGraph, max_budget: float | None) -> Budget | None:
    """The ``Budget`` of ``run(max_budget=...)``; every LLM step needs a price for it."""
    if max_budget is None:
        return None
    unpriced = [name for name, step in pipeline.steps.items()
                if getattr(step, "llm", None) is not None and not _priced(step)]
    if unpriced:
        msg = (f"run(max_budget={max_budget}) needs a price on every LLM, and the LLM of "
               f"{', '.join(map(repr, unpriced))} has none: give it "
               "price_per_million_input_tokens= and price_per_million_output_tokens= (or "
               "price_per_million_tokens=)")
        raise ValueError(msg)
    return Budget(max_budget)


def row_cache_dir(store: SegmentStore) -> pathlib.Path:
    """Where LLM steps keep their row cache (SQLite needs a local folder, also when the
    cache is on an object store)."""
    return pathlib.Path(store.base) if store.local else local_dir()


def _input_tables(pipeline: PipelineGraph, name: str, plans: dict[str, StepPlan],
                  store: SegmentStore) -> list[pa.Table] | str:
    """The step's input tables, or why they cannot be known before the run."""
    tables = []
    for pred in pipeline.dag.pred[name]:
        router = pipeline.routers.get(pred)
        if router is not None and name in router.targets:
            return f"a routing function picks the rows of {pred!r}"
        step = pipeline.steps[pred]
        plan_rows = getattr(step, "plan_rows", None)
        if plans[pred].status == "hit":
            channel = Channel(pred, store, threading.Event(), plans[pred].state, True)
            try:
                tables.append(channel.all_rows())
            except CorruptSegmentError:
                return f"the cache of {pred!r} is damaged"
        elif callable(plan_rows) and not pipeline.dag.pred[pred]:
            tables.append(plan_rows())
        else:
            return f"upstream {pred!r} runs first"
    return tables


def estimate_costs(pipeline: PipelineGraph, plans: dict[str, StepPlan],
                   store: SegmentStore) -> dict[str, CostEstimate]:
    """Per LLM step (a step with ``estimate``), what a run with these plans would send."""
    folder = row_cache_dir(store) / "rows"
    out: dict[str, CostEstimate] = {}
    for name, plan in plans.items():
        step = pipeline.steps[name]
        estimate = getattr(step, "estimate", None)
        if not callable(estimate):
            continue
        if plan.status == "hit":
            out[name] = CostEstimate(0, 0, 0, 0.0 if _priced(step) else None)
            continue
        tables = _input_tables(pipeline, name, plans, store)
        if isinstance(tables, str):
            out[name] = CostEstimate(None, unknown=tables)
            continue
        figures = estimate(tables, plan.signature, folder, use_cache=not plan.forced)
        out[name] = CostEstimate(**figures)
    return out


def _priced(step: Any) -> bool:
    llm = getattr(step, "llm", None)
    return llm is not None and llm.cost(1, 1) is not None


def _amount(tokens: int) -> str:
    if tokens >= 100_000:
        return f"{tokens / 1e6:.1f}M"
    if tokens >= 1_000:
        return f"{tokens / 1e3:.1f}k"
    return f"{tokens:,}"


def money(value: float) -> str:
    """``$0.42``; small sums keep their first significant digits."""
    if value == 0:
        return "$0"
    return f"${value:,.2f}" if value >= 0.1 else f"${value:.2g}"


def describe_estimate(rows_to_send: int | None, input_tokens: int | None,
                      output_tokens: int | None, cost: float | None,
                      unknown: str = "") -> str:
    """"sends 1,200 rows, about 0.8M tokens, about $0.42" (or why it is unknown)."""
    if rows_to_send is None:
        return f"rows to send unknown ({unknown})" if unknown else "rows to send unknown"
    if rows_to_send == 0:
        return "sends nothing"
    text = f"sends {rows_to_send:,} row{'' if rows_to_send == 1 else 's'}"
    if input_tokens is not None or output_tokens is not None:
        text += f", about {_amount((input_tokens or 0) + (output_tokens or 0))} tokens"
    if cost is not None:
        text += f", about {money(cost)}"
    return text
