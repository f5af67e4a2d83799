"""``Pipeline``: the context manager steps join, and the entry point of runs and plans."""

from __future__ import annotations

import os
import pathlib
import re
import sys
import threading
from collections.abc import Collection, Mapping
from typing import Any

import pyarrow as pa

from distilabel_nb import backends as _backends  # noqa: F401  (registers backend="ray")
from distilabel_nb.cache.access import open_cache
from distilabel_nb.cache.history import RunEntry
from distilabel_nb.cache.manifest import Manifest
from distilabel_nb.cache.signature import hash_value
from distilabel_nb.cache.store import SegmentStore
from distilabel_nb.distiset import Distiset
from distilabel_nb.engine.backends import Backend, resolve_backend
from distilabel_nb.engine.estimate import run_budget
from distilabel_nb.engine.events import ALL_RUNS, Listener
from distilabel_nb.engine.plan import step_keys
from distilabel_nb.engine.preview import cached_rows
from distilabel_nb.engine.report import RunReport
from distilabel_nb.engine.run import PipelineRun, dry_run, plan_report
from distilabel_nb.graph.dag import DAG
from distilabel_nb.graph.description import PipelineGraph
from distilabel_nb.graph.validate import apply_parameters, validate
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

    def _prepare(self, parameters: Mapping[str, Any] | None) -> PipelineGraph:
        """The graph to plan or run: the run's parameters applied, validated."""
        graph = self.graph()
        apply_parameters(graph, parameters)
        validate(graph)
        return graph

    # -- plan and run ------------------------------------------------------------------
    def plan(self, use_cache: bool = True, parameters: Mapping[str, Any] | None = None,
             recompute: Collection[str] = ()) -> RunReport:
        """What a run would do, per step, without running anything."""
        graph = self._prepare(parameters)
        manifest, store = self._cache()
        return plan_report(graph, manifest, store, self._listeners, use_cache, recompute)

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
            graph = self._prepare(parameters)
            budget = run_budget(graph, max_budget)
            listeners: list[Listener] = [*self._listeners, ALL_RUNS]
            if on_event is not None:
                listeners.append(on_event)
            if progress is None:
                progress = _terminal()
            if progress:
                from distilabel_nb.engine.progress import ProgressBars

                listeners.append(ProgressBars())
            runner = resolve_backend(backend, **dict(backend_options or {}))
            if budget is not None and runner.name != "local":
                msg = (f"run(max_budget=...) works on the local backend only, not on "
                       f"{runner.name!r}: its LLM steps run in workers that do not share "
                       "one budget")
                raise ValueError(msg)
            runner.start(graph)
            manifest, store = self._cache()
            run = PipelineRun(graph, manifest, store, listeners, runner, use_cache=use_cache,
                              recompute=recompute, fail_fast=fail_fast, budget=budget,
                              config=self.dump)
            try:
                return run.execute()
            finally:
                runner.stop()
                if run.report is not None:
                    self.last_run = run.report
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
                graph = self._prepare(parameters)
                manifest, store = self._cache()
                return dry_run(graph, manifest, store, batch_size)
            finally:
                if self._manifest is not None:
                    self._manifest.close()
                self.cache_dir, self._manifest, self._store = saved

    def preview(self, step: str, n: int = 5, key: str | None = None) -> pa.Table | None:
        """The first ``n`` cached output rows of ``step`` (None when nothing is cached);
        ``key``: of the output a recorded run's step had (``history_run(id).steps``)."""
        if step not in self.steps and key is None:
            msg = (f"pipeline {self.name!r} has no step {step!r}; its steps are: "
                   f"{', '.join(self.steps)}")
            raise KeyError(msg)
        manifest, store = self._cache()
        return cached_rows(self.graph(), manifest, store, step, n, key)

    def draw(self, path: str | os.PathLike[str] | None = "pipeline.svg",
             top_to_bottom: bool = False, show_edge_labels: bool = True) -> str:
        """Write the cache graph (nodes coloured by the last run) as SVG to ``path`` and
        return the path, as distilabel's ``draw`` (which writes a PNG) does; with
        ``path=None``, return the SVG document itself. ``top_to_bottom`` and
        ``show_edge_labels`` are accepted for distilabel's sake: the graph is drawn left to
        right, routed edges labelled with their function."""
        from distilabel_nb.drawing.render import render_svg

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
