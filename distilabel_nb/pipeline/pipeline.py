"""``Pipeline``: the context manager steps join, and the entry point of runs and plans."""

from __future__ import annotations

import os
import pathlib
import re
import sys
import threading
import time
import warnings
from collections.abc import Collection, Mapping
from typing import Any

import pyarrow as pa

from distilabel_nb import backends as _backends  # noqa: F401  (registers backend="ray")
from distilabel_nb.cache.access import open_cache
from distilabel_nb.cache.history import RunEntry, new_run_id
from distilabel_nb.cache.layout import CacheWarning
from distilabel_nb.cache.manifest import Manifest, RunRecord
from distilabel_nb.cache.signature import hash_value
from distilabel_nb.cache.store import CorruptSegmentError, SegmentStore
from distilabel_nb.distiset import Distiset
from distilabel_nb.engine.backends import Backend, resolve_backend
from distilabel_nb.engine.estimate import CostEstimate, estimate_costs, run_budget
from distilabel_nb.engine.events import ALL_RUNS, Listener, RunEvent
from distilabel_nb.engine.executor import Executor
from distilabel_nb.engine.outcome import finished_event
from distilabel_nb.engine.plan import StepPlan, make_plan, step_keys
from distilabel_nb.engine.report import ReportBuilder, RunReport
from distilabel_nb.engine.runlog import history_entry
from distilabel_nb.graph.dag import DAG
from distilabel_nb.graph.description import PipelineGraph
from distilabel_nb.graph.validate import apply_parameters, validate
from distilabel_nb.llms.budget import Budget
from distilabel_nb.pipeline.dataset_input import attach_dataset
from distilabel_nb.pipeline.serialize import (
    dump_pipeline,
    load_pipeline,
    read_pipeline_file,
    save_pipeline,
)
from distilabel_nb.routing import RoutingBatchFunction
from distilabel_nb.steps.base import StepBase
from distilabel_nb.steps.pipeline_like import reset_current_pipeline, set_current_pipeline
from distilabel_nb.tables import concat

__all__ = ["Pipeline"]

_MAX_ATTEMPTS = 3


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Pipeline:
    """A DAG of steps whose outputs are cached batch by batch.

    Use as a context manager: steps created inside join it; connect them with ``>>``.
    """

    def __init__(self, name: str | None = None, description: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        self._name = name
        self.description = description
        self.cache_dir = cache_dir
        self.steps: dict[str, StepBase] = {}
        self.dag = DAG()
        #: Routing batch functions, by the name of the step whose batches they route.
        self.routers: dict[str, RoutingBatchFunction] = {}
        self.last_run: RunReport | None = None
        self._listeners: list[Listener] = []
        self._token: Any = None
        self._detach: Any = None
        self._manifest: Manifest | None = None
        self._store: SegmentStore | None = None
        self._run_lock = threading.Lock()

    # -- building ----------------------------------------------------------------------
    def __enter__(self) -> Pipeline:
        self._token = set_current_pipeline(self)
        self._detach = _join_distilabel(self)
        return self

    def __exit__(self, *exc: object) -> None:
        reset_current_pipeline(self._token)
        self._token = None
        if self._detach is not None:
            self._detach()
            self._detach = None

    @property
    def name(self) -> str:
        if self._name is None:
            return "pipeline-" + hash_value(list(self.steps))[:8]
        return self._name

    def add_step(self, step: StepBase) -> None:
        if step.name is None:
            base = _snake(type(step).__name__)
            index = sum(1 for s in self.steps.values() if type(s) is type(step))
            while f"{base}_{index}" in self.steps:
                index += 1
            step.name = f"{base}_{index}"
        if step.name in self.steps:
            msg = (f"pipeline {self.name!r} already has a step named {step.name!r}; give each "
                   "step a unique name=")
            raise ValueError(msg)
        step.pipeline = self
        self.steps[step.name] = step
        self.dag.add(step.name)

    def connect(self, source: StepBase, target: StepBase) -> None:
        for step in (source, target):
            member = self.steps.get(step.name or "")
            # A distilabel step is here as the adapter wrapping it.
            if member is None or (member is not step and getattr(member, "wrapped", None)
                                  is not step) or member.pipeline is not self:
                msg = f"step {step.name!r} is not part of pipeline {self.name!r}"
                raise ValueError(msg)
        self.dag.connect(source.name or "", target.name or "")

    def add_router(self, source: str, router: RoutingBatchFunction) -> None:
        """``source >> router >> [...]``: ``router`` picks where the batches of ``source`` go."""
        self.routers[source] = router

    def graph(self) -> PipelineGraph:
        """The frozen description of the graph as declared so far, which the engine runs."""
        return PipelineGraph.of(self.name, self.steps, self.dag, self.routers)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every ``RunEvent`` of later runs and plans."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- signatures --------------------------------------------------------------------
    @property
    def signature(self) -> str:
        """Hash of the step names, the connections and the routing functions."""
        shape: dict[str, Any] = {"steps": list(self.steps), "edges": self.dag.edges}
        if self.routers:
            shape["routes"] = {name: r.signature for name, r in sorted(self.routers.items())}
        return hash_value(shape)

    @property
    def aggregated_steps_signature(self) -> str:
        """Hash of every step's signature."""
        return hash_value({name: sig for name, (_, sig, _) in step_keys(self.graph()).items()})

    def dump(self, **kwargs: Any) -> dict[str, Any]:
        """The pipeline as distilabel's ``Pipeline.dump()`` shapes it (its pipeline.yaml)."""
        return dump_pipeline(self)

    def save(self, path: str | os.PathLike[str] | None = None, format: str = "json") -> None:
        """Write ``dump()`` to ``path`` as JSON or YAML, as distilabel's ``save``."""
        save_pipeline(self, path, format)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pipeline:
        """The pipeline a ``dump()`` describes (ours or distilabel's)."""
        return load_pipeline(cls, data)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Pipeline:
        return load_pipeline(cls, read_pipeline_file(path))

    from_json = from_yaml

    # -- cache -------------------------------------------------------------------------
    def _cache(self) -> tuple[Manifest, SegmentStore]:
        if self._manifest is None or self._store is None:
            cache = open_cache(self.cache_dir, create=True)
            assert cache is not None  # create=True opens or makes one
            self._manifest, self._store = cache
        return self._manifest, self._store

    def _prepare(self, parameters: Mapping[str, Any] | None) -> None:
        graph = self.graph()
        apply_parameters(graph, parameters)
        validate(graph)

    def _emit(self, listeners: list[Listener], event: RunEvent) -> None:
        for listener in listeners:
            try:
                listener(event)
            except Exception as error:
                warnings.warn(f"a run listener failed: {error!r}", RuntimeWarning, stacklevel=2)

    def _plan_events(self, plans: dict[str, StepPlan], emit: Listener,
                     estimates: Mapping[str, CostEstimate] | None = None,
                     run_id: str | None = None) -> None:
        emit(RunEvent("run_started", self.name, extra={"run_id": run_id} if run_id else {}))
        for name, plan in plans.items():
            estimate = (estimates or {}).get(name)
            emit(RunEvent("step_planned", self.name, name, plan.status, plan.reason,  # type: ignore[arg-type]
                          rows_done=plan.rows_reused, batches_done=plan.batches_done,
                          batches_total=plan.batches_total, rows_reused=plan.rows_reused,
                          extra={"signature": plan.signature[:12], "key": plan.key,
                                 "rows": plan.state.rows if plan.status == "hit" else 0,
                                 "bytes": plan.state.nbytes,
                                 "batches_reused": plan.batches_done,
                                 **(estimate.as_extra() if estimate else {})}))

    # -- plan and run ------------------------------------------------------------------
    def plan(self, use_cache: bool = True, parameters: Mapping[str, Any] | None = None,
             recompute: Collection[str] = ()) -> RunReport:
        """What a run would do, per step, without running anything."""
        self._prepare(parameters)
        manifest, store = self._cache()
        plans = make_plan(self.graph(), manifest, use_cache, recompute)  # leases nothing
        estimates = estimate_costs(self.graph(), plans, store)
        builder = ReportBuilder(self.name)
        listeners: list[Listener] = [builder, *self._listeners]
        self._plan_events(plans, lambda e: self._emit(listeners, e), estimates)
        return builder.report(planned=True)

    def run(self, use_cache: bool = True, parameters: Mapping[str, Any] | None = None,
            progress: bool | None = None, recompute: Collection[str] = (),
            on_event: Listener | None = None, backend: str | Backend | None = None,
            backend_options: Mapping[str, Any] | None = None,
            fail_fast: bool = False, max_budget: float | None = None, dataset: Any = None,
            dataset_batch_size: int = 50, use_fs_to_pass_data: bool = False) -> Distiset:
        """Run what changed, reuse the rest; returns the leaf steps' outputs.

        ``dataset`` (a list of dicts, a pandas DataFrame, a ``datasets.Dataset``) feeds the
        root steps through a generator step, keyed by its content, as in distilabel.
        ``use_fs_to_pass_data`` is accepted for distilabel's sake and changes nothing:
        here every batch always passes from step to step through the cache on disk.

        As in distilabel, a batch that raises does not stop the run: its rows go on with
        the step's outputs set to None, nothing computed from them is cached, a
        ``StepFailedWarning`` names the step, batch and error, the report marks the step
        failed, and the next run computes only what failed. ``fail_fast=True`` stops at
        the first failure with ``StepFailedError`` instead (generators and global steps
        always stop the run when they raise, as in distilabel).

        ``max_budget=USD`` stops sending LLM requests once the money spent plus the
        requests in flight reach it and raises ``BudgetExceededError``; finished rows are
        cached, so the next run sends only the rest (every LLM step needs a price).

        ``backend="ray"`` computes batches on a Ray cluster (``backend_options`` go to
        the Ray backend, e.g. ``{"address": "auto"}``); the cache is the same either way.
        """
        if not self._run_lock.acquire(blocking=False):
            msg = f"pipeline {self.name!r} is already running in this process"
            raise RuntimeError(msg)
        try:
            if dataset is not None:
                attach_dataset(self, dataset, dataset_batch_size)
            self._prepare(parameters)
            budget = run_budget(self.graph(), max_budget)
            listeners: list[Listener] = [*self._listeners, ALL_RUNS]
            if on_event is not None:
                listeners.append(on_event)
            if progress is None:
                progress = _terminal()
            if progress:
                from distilabel_nb.engine.progress import ProgressBars

                listeners.append(ProgressBars())
            runner = resolve_backend(backend, **dict(backend_options or {}))
            runner.start(self.graph())
            try:
                for attempt in range(_MAX_ATTEMPTS):
                    try:
                        return self._run_once(use_cache, recompute, listeners, runner,
                                              fail_fast, budget)
                    except CorruptSegmentError as error:
                        self._forget_corrupt(error, last=attempt == _MAX_ATTEMPTS - 1)
            finally:
                runner.stop()
            raise AssertionError("unreachable")
        finally:
            self._run_lock.release()

    def dry_run(self, parameters: Mapping[str, Any] | None = None,
                batch_size: int = 1) -> Distiset:
        """Run every step on the first ``batch_size`` rows only, in a throwaway cache:
        the real cache is neither read nor written (distilabel's dry run wrote one-row
        outputs into it, and the next real run hung)."""
        import tempfile

        saved = (self.cache_dir, self._manifest, self._store)
        with tempfile.TemporaryDirectory(prefix="distilabel-nb-dry-run-") as tmp:
            self.cache_dir, self._manifest, self._store = tmp, None, None
            try:
                self._prepare(parameters)
                manifest, store = self._cache()
                plans = make_plan(self.graph(), manifest, lease=True)
                executor = Executor(self.graph(), plans, store, manifest, lambda event: None)
                executor.row_limit = max(1, batch_size)
                executor.run()
                error = executor.failure()
                if error is not None:
                    raise error
                return executor.distiset()
            finally:
                if self._manifest is not None:
                    self._manifest.close()
                self.cache_dir, self._manifest, self._store = saved

    def _forget_corrupt(self, error: CorruptSegmentError, last: bool) -> None:
        """One damaged file was found: check every file of this pipeline's steps, warn
        once per damaged step and forget those files, so the next attempt recomputes."""
        if last:
            raise error
        manifest, store = self._cache()
        damaged: dict[str, list[str]] = {}
        sources = {error.source}  # files damaged themselves (not a referrer of one)
        for name, (key, _, _) in step_keys(self.graph()).items():
            files = {(ref.path, ref.checksum) for ref in manifest.state(key).batches.values()}
            for path, checksum in sorted(files):
                found = store.damage(path, checksum) if path != error.path else error
                if found is not None:
                    damaged.setdefault(name, []).append(path)
                    sources.add(found.source)
        for name, paths in damaged.items():
            warnings.warn(f"cache of step {name!r}: {len(paths)} file(s) damaged or missing "
                          f"({error.why} in {paths[0]}); recomputing them", CacheWarning,
                          stacklevel=4)
            for path in paths:
                manifest.drop_segment(path)
        # An intact file whose segment only referenced a damaged one may still be read by
        # other segments: only damaged files go (gc removes the rest once unreferenced).
        store.delete(sorted(sources))

    def _run_once(self, use_cache: bool, recompute: Collection[str],
                  listeners: list[Listener], backend: Backend,
                  fail_fast: bool = False, budget: Budget | None = None) -> Distiset:
        manifest, store = self._cache()
        plans = make_plan(self.graph(), manifest, use_cache, recompute, lease=True)
        builder = ReportBuilder(self.name)
        all_listeners: list[Listener] = [builder, *listeners]

        def emit(event: RunEvent) -> None:
            self._emit(all_listeners, event)

        run_id = new_run_id()
        self._plan_events(plans, emit, run_id=run_id)
        executor = Executor(self.graph(), plans, store, manifest, emit, backend)
        executor.fail_fast = fail_fast
        executor.budget = budget
        try:
            executor.run()
        except KeyboardInterrupt:
            self._finish(plans, executor, emit, builder, manifest, "interrupted")
            raise
        if executor.corrupt is not None:
            raise executor.corrupt
        error = executor.failure()
        if error is not None:
            self._finish(plans, executor, emit, builder, manifest, str(error), failed=error.step)
            raise error
        distiset = executor.distiset()
        distiset.pipeline_config = self.dump()
        self._finish(plans, executor, emit, builder, manifest, None)
        return distiset

    def _finish(self, plans: dict[str, StepPlan], executor: Executor, emit: Any,
                builder: ReportBuilder, manifest: Manifest, message: str | None,
                failed: str | None = None) -> None:
        records = []
        now = time.time()
        for name, plan in plans.items():
            outcome = executor.outcomes.get(name)
            event = finished_event(self.name, name, plan, executor.channels[name], outcome,
                                   failed=name == failed, message=message,
                                   **self._saved_by_hit(plan, executor))
            emit(event)
            upstream = tuple(plans[p].key for p in self.dag.pred[name])
            records.append(RunRecord(self.name, name, plan.key, plan.description,
                                     event.status or plan.status, event.rows_done,
                                     event.extra["bytes"], event.seconds, now, upstream,
                                     builder.run_id))
        manifest.record_runs(records)
        manifest.touch(plan.key for plan in plans.values() if plan.status == "hit")
        if builder.run_id is not None:  # before run_finished: its listeners may read it
            routes = {(source, target): router.label for source, router in self.routers.items()
                      for target in router.targets}
            manifest.record_history(history_entry(
                builder.run_id, self.name, plans, builder.steps, self.dag.pred,
                self.dag.leaves(), routes, builder.started, time.time(), message))
        emit(RunEvent("run_finished", self.name, message=message))
        self.last_run = builder.report()

    def preview(self, step: str, n: int = 5, key: str | None = None) -> pa.Table | None:
        """The first ``n`` cached output rows of ``step`` (None when nothing is cached);
        ``key``: of the output a recorded run's step had (``history_run(id).steps``)."""
        if step not in self.steps and key is None:
            msg = (f"pipeline {self.name!r} has no step {step!r}; its steps are: "
                   f"{', '.join(self.steps)}")
            raise KeyError(msg)
        manifest, store = self._cache()
        key = key or step_keys(self.graph())[step][0]
        state = manifest.state(key)
        parts: list[pa.Table] = []
        rows = 0
        for index in sorted(state.batches):
            if rows >= n:
                break
            ref = state.batches[index]
            try:
                table = store.read(ref.path, ref.checksum).slice(ref.offset, ref.rows)
            except CorruptSegmentError:
                return None
            parts.append(table)
            rows += table.num_rows
        if not parts:
            return None
        return concat(parts).slice(0, n)

    def draw(self, path: str | os.PathLike[str] | None = "pipeline.svg",
             top_to_bottom: bool = False, show_edge_labels: bool = True) -> str:
        """Write the cache graph (nodes coloured by the last run) as SVG to ``path`` and
        return the path, as distilabel's ``draw`` (which writes a PNG) does; with
        ``path=None``, return the SVG document itself. ``top_to_bottom`` and
        ``show_edge_labels`` are accepted for distilabel's sake: the graph is drawn left to
        right, routed edges labelled with their function."""
        from distilabel_nb.notebook.render import render_svg

        svg = render_svg(self)
        if path is None:
            return svg
        pathlib.Path(path).write_text(svg, encoding="utf-8")
        return str(path)

    def history(self) -> list[RunEntry]:
        """This pipeline's recorded runs, oldest first (summaries), read from the cache:
        runs of earlier kernels and of other processes too."""
        return self._cache()[0].history(self.name)

    def history_run(self, run_id: str) -> RunEntry | None:
        """One recorded run, whole: each step's report, key and description."""
        return self._cache()[0].history_run(self.name, run_id)

    def _saved_by_hit(self, plan: StepPlan, executor: Executor) -> dict[str, Any]:
        """What a step reused whole cost, in tokens and money (LLM tasks know it from
        their rows' statistics)."""
        step = self.steps[plan.name]
        if plan.status != "hit" or not callable(getattr(step, "tokens_in", None)):
            return {}
        try:
            table = executor.channels[plan.name].all_rows()
        except CorruptSegmentError:
            return {}
        cost_in = getattr(step, "cost_in", None)
        return {"tokens_saved": int(step.tokens_in(table)),  # type: ignore[attr-defined]
                "cost_saved": cost_in(table) if callable(cost_in) else None}

    def __repr__(self) -> str:
        edges = ", ".join(f"{a} >> {b}" for a, b in self.dag.edges)
        return f"Pipeline(name={self.name!r}, steps={list(self.steps)}, edges=[{edges}])"


def _join_distilabel(pipeline: Pipeline) -> Any:
    """When distilabel is imported, its steps created in the ``with`` block join this
    pipeline too; returns the function undoing that (None when distilabel is not used:
    importing it here would make every pipeline pay for it)."""
    if "distilabel" not in sys.modules:
        return None
    from distilabel_nb.interop.distilabel.bridge import attach

    return attach(pipeline)


def _terminal() -> bool:
    if "ipykernel" in sys.modules:
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())
