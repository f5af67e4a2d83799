"""Deciding, per step, what a run will do (hit, miss, partial) and why, in words.

A step's key is a Merkle hash: its signature (the hash of its description), the data
fingerprint for loaders, and its predecessors' keys in connection order. The plan looks
each key up in the manifest and compares the description with the last run of the same
pipeline and step to explain a miss.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection
from typing import Any

from distilabel_nb.cache.layout import CACHE_VERSION
from distilabel_nb.cache.manifest import KeyState, Manifest
from distilabel_nb.cache.signature import hash_value
from distilabel_nb.engine.reasons import miss_reason
from distilabel_nb.graph.description import PipelineGraph

__all__ = ["StepPlan", "make_plan", "step_keys", "takes_whole_input"]


@dataclasses.dataclass
class StepPlan:
    name: str
    key: str
    signature: str
    description: dict[str, Any]
    status: str
    reason: str
    forced: bool
    state: KeyState
    #: Rows per batch (the manifest's ``chunk`` column: its batches were cut so).
    batch_size: int
    batches_total: int | None = None
    #: The key holds batches this run cannot use (another batch size): drop them first.
    stale: bool = False
    _rows_counted: tuple[KeyState, int, int] | None = dataclasses.field(
        default=None, repr=False, compare=False)

    @property
    def batches_done(self) -> int:
        return len(self.state.batches)

    @property
    def rows_reused(self) -> int:
        if self.status not in ("hit", "partial"):
            return 0
        # Asked after every batch of a run (progress events): counted once per state, not
        # once per batch over every reused batch (a resumed run of 1,000s of batches).
        counted = self._rows_counted
        if counted is None or counted[0] is not self.state \
                or counted[1] != len(self.state.batches):
            counted = self._rows_counted = (self.state, len(self.state.batches),
                                            self.state.rows)
        return counted[2]


def step_keys(pipeline: PipelineGraph) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """For each step: (key, signature, description), in topological order."""
    keys: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for name in pipeline.dag.topological():
        step = pipeline.steps[name]
        description = step.signature_fields()
        signature = hash_value(description)
        upstream = [_edge_key(pipeline, p, name, keys[p][0]) for p in pipeline.dag.pred[name]]
        key = hash_value({"version": CACHE_VERSION, "signature": signature, "upstream": upstream})
        keys[name] = (key, signature, description)
    return keys


def _edge_key(pipeline: PipelineGraph, source: str, target: str, key: str) -> str:
    """What ``target`` gets from ``source``: its output, or the part a routing function
    sends it (then the function's signature counts too)."""
    router = pipeline.routers.get(source)
    if router is None or target not in router.targets:
        return key
    return hash_value({"routed": key, "by": router.signature})


def takes_whole_input(step: Any) -> bool:
    """Whether ``step`` gets its whole input as one batch: global steps, and steps that
    ask for it (``whole_input``: an LLM task sending its rows to a provider's batch API
    in one job)."""
    return step.kind == "global" or bool(getattr(step, "whole_input", False))


def _batch_size(step: Any) -> int:
    if takes_whole_input(step):
        return 0
    return int(getattr(step, "input_batch_size", None) or getattr(step, "batch_size", 0) or 0)


def make_plan(pipeline: PipelineGraph, manifest: Manifest, use_cache: bool = True,
              recompute: Collection[str] = (), lease: bool = False) -> dict[str, StepPlan]:
    """What a run would do for each step, from the manifest. A run passes ``lease``: the
    keys are leased (one transaction for all steps) before their state is read, so
    garbage collection either took a key already or keeps it for the run."""
    keys = step_keys(pipeline)
    if lease:
        manifest.lease([key for key, _, _ in keys.values()])
    last = manifest.last_runs(pipeline.name)
    plans: dict[str, StepPlan] = {}
    for name, (key, signature, description) in keys.items():
        step = pipeline.steps[name]
        preds = pipeline.dag.pred[name]
        state = manifest.state(key)
        batch_size = _batch_size(step)
        forced_by = [p for p in preds if plans[p].forced]
        reason: str | None = None
        if not use_cache:
            reason = "run(use_cache=False): everything recomputes"
        elif not step.use_cache:
            reason = "cache disabled on this step"
        elif name in recompute:
            reason = "recompute requested"
        elif forced_by:
            reason = f"upstream {forced_by[0]!r} recomputes"
        plan = StepPlan(name, key, signature, description, "miss", "", reason is not None,
                        state, batch_size, state.n_batches)
        if plan.forced:
            plan.reason = reason or ""
            plan.state = KeyState(key=key)
        elif state.complete:
            plan.status = "hit"
            plan.reason = "unchanged" if last.get(name, None) is None or last[name].key == key \
                else "same as an earlier cached version"
        elif state.batches and state.chunk == batch_size:
            plan.status = "partial"
            plan.batches_total = _expected_batches(plan, preds, plans)
            total = plan.batches_total if plan.batches_total is not None else "?"
            plan.reason = f"resumed: {len(state.batches)} of {total} batches were already done"
        else:
            if state.batches:
                plan.stale = True
                plan.reason = (f"batch size changed: {len(state.batches)} cached batches of "
                               f"{state.chunk} rows cannot be reused")
            else:
                plan.reason = miss_reason(name, key, description, last,
                                          {n: k[0] for n, k in keys.items()}, preds)
            plan.state = KeyState(key=key)
        plans[name] = plan
    return plans


def _expected_batches(plan: StepPlan, preds: list[str], plans: dict[str, StepPlan]) -> int | None:
    if plan.state.n_batches is not None:
        return plan.state.n_batches
    if not preds or not all(plans[p].status == "hit" for p in preds) or plan.batch_size == 0:
        return None
    rows = max(plans[p].state.rows for p in preds)
    return math.ceil(rows / plan.batch_size)
