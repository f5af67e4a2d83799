"""A run of a pipeline graph, from plan to record: what ``Pipeline.run`` and
``Pipeline.plan`` delegate to.

The engine owns every event of a run: ``run_started`` and one ``step_planned`` per step,
then the executor's ``step_started``/``batch_done``/``step_finished`` as steps go, then
``step_finished`` for each step the executor did not finish (reused whole, or stopped),
the run records and history in the manifest, and ``run_finished``. The report
(``RunReport``) is built from those events only: it is the one ledger of rows, bytes,
tokens and money. A damaged cache file found during a run is forgotten and the run
tried again (``recovery.py``), up to three times.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from distilabel_nb.cache.history import new_run_id
from distilabel_nb.cache.manifest import Manifest
from distilabel_nb.cache.records import RunRecord
from distilabel_nb.cache.store import CorruptSegmentError, SegmentStore
from distilabel_nb.distiset import Distiset
from distilabel_nb.engine.backends import Backend
from distilabel_nb.engine.estimate import CostEstimate, estimate_costs
from distilabel_nb.engine.events import Listener, RunEvent
from distilabel_nb.engine.executor import Executor
from distilabel_nb.engine.outcome import finished_event
from distilabel_nb.engine.plan import StepPlan, make_plan
from distilabel_nb.engine.recovery import forget_corrupt
from distilabel_nb.engine.report import ReportBuilder, RunReport
from distilabel_nb.engine.runlog import history_entry
from distilabel_nb.graph.description import PipelineGraph
from distilabel_nb.llms.budget import Budget

__all__ = ["PipelineRun", "dry_run", "plan_report"]

_MAX_ATTEMPTS = 3


def _broadcast(listeners: Iterable[Listener]) -> Listener:
    """One listener calling each of ``listeners``; a failing one is warned about, never
    allowed to break the run."""
    listeners = list(listeners)

    def emit(event: RunEvent) -> None:
        for listener in listeners:
            try:
                listener(event)
            except Exception as error:
                warnings.warn(f"a run listener failed: {error!r}", RuntimeWarning, stacklevel=2)

    return emit


def _plan_events(name: str, plans: dict[str, StepPlan], emit: Listener,
                 estimates: Mapping[str, CostEstimate] | None = None,
                 run_id: str | None = None) -> None:
    emit(RunEvent("run_started", name, extra={"run_id": run_id} if run_id else {}))
    for step, plan in plans.items():
        estimate = (estimates or {}).get(step)
        emit(RunEvent("step_planned", name, step, plan.status, plan.reason,  # type: ignore[arg-type]
                      rows_done=plan.rows_reused, batches_done=plan.batches_done,
                      batches_total=plan.batches_total, rows_reused=plan.rows_reused,
                      extra={"signature": plan.signature[:12], "key": plan.key,
                             "rows": plan.state.rows if plan.status == "hit" else 0,
                             "bytes": plan.state.nbytes,
                             "batches_reused": plan.batches_done,
                             **(estimate.as_extra() if estimate else {})}))


def plan_report(graph: PipelineGraph, manifest: Manifest, store: SegmentStore,
                listeners: Iterable[Listener], use_cache: bool = True,
                recompute: Collection[str] = ()) -> RunReport:
    """What a run would do, per step, as the events and report of a plan (leases
    nothing, runs nothing)."""
    plans = make_plan(graph, manifest, use_cache, recompute)
    estimates = estimate_costs(graph, plans, store)
    builder = ReportBuilder(graph.name)
    _plan_events(graph.name, plans, _broadcast([builder, *listeners]), estimates)
    return builder.report(planned=True)


def dry_run(graph: PipelineGraph, manifest: Manifest, store: SegmentStore,
            rows: int) -> Distiset:
    """Every step on the first ``rows`` rows only (in the cache given: a throwaway one)."""
    plans = make_plan(graph, manifest, lease=True)
    executor = Executor(graph, plans, store, manifest, lambda event: None)
    executor.row_limit = max(1, rows)
    executor.run()
    error = executor.failure()
    if error is not None:
        raise error
    return _distiset(executor)


def _distiset(executor: Executor) -> Distiset:
    """The leaf steps' rows: one config per leaf, "default" when there is one."""
    leaves = executor.pipeline.dag.leaves()
    configs = {leaf: "default" if len(leaves) == 1 else leaf for leaf in leaves}
    return Distiset.from_tables(
        {configs[leaf]: executor.channels[leaf].all_rows() for leaf in leaves},
        fingerprints={configs[leaf]: executor.plans[leaf].key for leaf in leaves})


class PipelineRun:
    """One ``Pipeline.run``: ``execute()`` returns the Distiset; ``report`` is the run's
    report once it has finished, failed or been interrupted."""

    def __init__(self, graph: PipelineGraph, manifest: Manifest, store: SegmentStore,
                 listeners: Iterable[Listener], backend: Backend, *, use_cache: bool = True,
                 recompute: Collection[str] = (), fail_fast: bool = False,
                 budget: Budget | None = None,
                 config: Callable[[], dict[str, Any]] | None = None) -> None:
        self.graph, self.manifest, self.store = graph, manifest, store
        self.listeners = list(listeners)
        self.backend = backend
        self.use_cache, self.recompute = use_cache, recompute
        self.fail_fast, self.budget = fail_fast, budget
        #: Makes the pipeline's ``dump()``, carried by the Distiset as distilabel's is
        #: (called only when the Distiset's ``pipeline_config`` is first read).
        self.config = config
        self.report: RunReport | None = None

    def execute(self) -> Distiset:
        for attempt in range(_MAX_ATTEMPTS):
            try:
                return self._once()
            except CorruptSegmentError as error:
                if attempt == _MAX_ATTEMPTS - 1:
                    raise
                forget_corrupt(self.graph, self.manifest, self.store, error)
        raise AssertionError("unreachable")

    def _once(self) -> Distiset:
        plans = make_plan(self.graph, self.manifest, self.use_cache, self.recompute,
                          lease=True)
        builder = ReportBuilder(self.graph.name)
        finished: dict[str, RunEvent] = {}
        broadcast = _broadcast([builder, *self.listeners])

        def emit(event: RunEvent) -> None:
            if event.kind == "step_finished" and event.step is not None:
                finished[event.step] = event
            broadcast(event)

        _plan_events(self.graph.name, plans, emit, run_id=new_run_id())
        executor = Executor(self.graph, plans, self.store, self.manifest, emit, self.backend)
        executor.fail_fast = self.fail_fast
        executor.budget = self.budget
        try:
            executor.run()
        except KeyboardInterrupt:
            self._finish(plans, executor, emit, finished, builder, "interrupted")
            raise
        if executor.corrupt is not None:
            raise executor.corrupt
        error = executor.failure()
        if error is not None:
            self._finish(plans, executor, emit, finished, builder, str(error))
            raise error
        distiset = _distiset(executor)
        distiset.pipeline_config = self.config
        self._finish(plans, executor, emit, finished, builder, None)
        return distiset

    def _finish(self, plans: dict[str, StepPlan], executor: Executor, emit: Listener,
                finished: dict[str, RunEvent], builder: ReportBuilder,
                message: str | None) -> None:
        """The steps the executor did not finish report now; the run is recorded."""
        name, dag = self.graph.name, self.graph.dag
        records = []
        now = time.time()
        for step, plan in plans.items():
            event = finished.get(step)
            if event is None:
                event = finished_event(name, step, plan, executor.channels[step],
                                       executor.outcomes.get(step), message=message,
                                       **self._saved_by_hit(plan, executor))
                emit(event)
            upstream = tuple(plans[p].key for p in dag.pred[step])
            records.append(RunRecord(name, step, plan.key, plan.description,
                                     event.status or plan.status, event.rows_done,
                                     event.extra["bytes"], event.seconds, now, upstream,
                                     builder.run_id))
        self.manifest.record_runs(records)
        self.manifest.touch(plan.key for plan in plans.values() if plan.status == "hit")
        if builder.run_id is not None:  # before run_finished: its listeners may read it
            routes = {(source, target): router.label
                      for source, router in self.graph.routers.items()
                      for target in router.targets}
            self.manifest.record_history(history_entry(
                builder.run_id, name, plans, builder.steps, dag.pred, dag.leaves(), routes,
                builder.started, time.time(), message))
        emit(RunEvent("run_finished", name, message=message))
        self.report = builder.report()

    def _saved_by_hit(self, plan: StepPlan, executor: Executor) -> dict[str, Any]:
        """What a step reused whole cost, in tokens and money (LLM tasks know it from
        their rows' statistics)."""
        step = self.graph.steps[plan.name]
        if plan.status != "hit" or not callable(getattr(step, "tokens_in", None)):
            return {}
        try:
            table = executor.channels[plan.name].all_rows()
        except CorruptSegmentError:
            return {}
        cost_in = getattr(step, "cost_in", None)
        return {"tokens_saved": int(step.tokens_in(table)),  # type: ignore[attr-defined]
                "cost_saved": cost_in(table) if callable(cost_in) else None}
