"""``CacheGraph``: the pipeline's DAG, every node coloured by what the cache did for it.

An anywidget widget; its JavaScript is ``static/widget.js`` beside this file. It reads
the pipeline's event stream (never the engine), re-draws at most every
``THROTTLE_SECONDS`` while a run streams batches (and always when a step or the run
finishes), and takes three messages from the browser: ``toggle`` a step's cache,
``run`` and ``plan``. A message it does not understand is dropped with a warning.
"""

from __future__ import annotations

import html
import pathlib
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from distilabel_nb.engine.events import RunEvent
from distilabel_nb.engine.report import ReportBuilder, RunReport, StepReport
from distilabel_nb.notebook import overrides
from distilabel_nb.notebook.render import NodeView, draw_svg
from distilabel_nb.notebook.views import PREVIEW_ROWS, node_detail, table_preview

if TYPE_CHECKING:
    from distilabel_nb.pipeline.pipeline import Pipeline

__all__ = ["PREVIEW_ROWS", "THROTTLE_SECONDS", "CacheGraph", "WidgetMessageWarning"]

THROTTLE_SECONDS = 0.15
_STATIC = pathlib.Path(__file__).parent / "static"
_FINAL = ("hit", "miss", "partial", "failed")

Runner = Callable[["CacheGraph"], Any]


# The step last selected in a graph of each pipeline, so a re-run cell keeps its panel.
_last_selected: dict[str, str] = {}


class WidgetMessageWarning(UserWarning):
    """A message from the browser was malformed or named an unknown step; it is ignored."""


class CacheGraph(anywidget.AnyWidget):
    """The cache graph of ``pipeline``, live while it runs.

    Click a node (or call ``toggle(step)``) to switch that step's cache off for the next
    runs; ``to_svg()``/``save(path)`` export the picture.
    """

    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

    pipeline_name = traitlets.Unicode("").tag(sync=True)
    svg = traitlets.Unicode("").tag(sync=True)
    nodes = traitlets.Dict().tag(sync=True)       # step -> {status, use_cache, rerun, detail}
    details = traitlets.Dict().tag(sync=True)     # step -> report fields + preview
    selected = traitlets.Unicode("").tag(sync=True)
    mode = traitlets.Unicode("idle").tag(sync=True)   # idle | plan | running | done | failed
    message = traitlets.Unicode("").tag(sync=True)
    can_run = traitlets.Bool(False).tag(sync=True)
    runs = traitlets.Int(0).tag(sync=True)        # finished runs seen, for front ends/tests

    def __init__(self, pipeline: Pipeline, on_run: Runner | None = None, live: bool = True,
                 use_cache: bool = True, recompute: Collection[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(pipeline_name=pipeline.name, can_run=True, **kwargs)
        self.pipeline = pipeline
        self.on_run = on_run
        self.use_cache = use_cache
        self.recompute = list(recompute)
        self.rejected: list[str] = []
        self.distiset: Any = None
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._builder = ReportBuilder(pipeline.name)
        self._planned: set[str] = set()       # steps whose status is still the plan's
        self._running: dict[str, dict[str, Any]] = {}
        self._started_compute = False
        self._last_flush = 0.0
        self._timer: threading.Timer | None = None
        self._results: dict[str, Any] = {}
        if pipeline.last_run is not None:
            self._load_report(pipeline.last_run)
            self.mode = "plan" if pipeline.last_run.planned else "done"
            self.message = self._summary(pipeline.last_run)
            self._load_previews()
        remembered = _last_selected.get(pipeline.name, "")
        if remembered in pipeline.steps:
            self.selected = remembered
        self.on_msg(self._on_msg)
        if live:
            pipeline.add_listener(self.handle_event)
        self._flush()

    # -- state from reports and events -------------------------------------------------
    def _load_report(self, report: RunReport) -> None:
        with self._lock:
            self._builder = ReportBuilder(report.pipeline)
            self._builder.steps = {n: StepReport(**r.as_dict()) for n, r in report.items()}
            self._planned = set(report) if report.planned else set()
            self._running = {}

    def handle_event(self, event: RunEvent) -> None:
        """A ``RunEvent`` listener: update the state, re-draw (throttled)."""
        with self._lock:
            if event.kind == "run_started":
                self._builder = ReportBuilder(event.pipeline)
                self._planned, self._running = set(), {}
                self._started_compute = False
                self.mode, self.message = "plan", "planning..."
            self._builder(event)
            step = event.step
            if event.kind == "step_planned" and step is not None:
                self._planned.add(step)
            elif event.kind in ("step_started", "batch_done") and step is not None:
                if not self._started_compute:
                    self._started_compute = True
                    self.mode, self.message = "running", "running..."
                self._planned.discard(step)
                running = self._running.setdefault(step, {})
                running["rows_done"] = event.rows_done
                if event.rows_total is not None:
                    running["rows_total"] = event.rows_total
                running["batches_done"] = event.batches_done
                if event.batches_total is not None:
                    running["batches_total"] = event.batches_total
            elif event.kind == "step_finished" and step is not None:
                self._planned.discard(step)
                self._running.pop(step, None)
            elif event.kind == "run_finished":
                self._planned, self._running = set(), {}
                report = self._builder.report()
                # a run that went on past failed batches still shows as failed
                failed = any(r.status == "failed" for r in report.values())
                self.mode = "failed" if event.message or failed else "done"
                self.runs += 1
                self.message = self._summary(report)
        if event.kind == "run_finished" and not event.message:
            self._load_previews()
        urgent = event.kind in ("run_started", "step_finished", "run_finished")
        self._request_flush(urgent)

    def _request_flush(self, urgent: bool) -> None:
        now = time.monotonic()
        if urgent or now - self._last_flush >= THROTTLE_SECONDS:
            self._flush()
            return
        with self._lock:
            if self._timer is None:
                delay = THROTTLE_SECONDS - (now - self._last_flush)
                self._timer = threading.Timer(max(0.01, delay), self._flush)
                self._timer.daemon = True
                self._timer.start()

    def _summary(self, report: RunReport) -> str:
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

    def _status(self, name: str, report: StepReport | None) -> str:
        if name in self._running:
            return "running"
        if report is None:
            return "pending"
        if self._started_compute and name in self._planned and report.status != "hit":
            return "pending"
        return report.status if report.status in _FINAL or report.status == "pending" \
            else "pending"

    def _views(self) -> dict[str, NodeView]:
        steps = self.pipeline.steps
        off = [n for n, s in steps.items() if not s.use_cache]
        rerun: set[str] = set()
        for name in off:
            rerun |= self.pipeline.dag.descendants(name)
        views: dict[str, NodeView] = {}
        for name in self.pipeline.dag.nodes:
            report = self._builder.steps.get(name)
            status = self._status(name, report)
            running = self._running.get(name, {})
            progress = None
            if running.get("rows_total"):
                progress = running.get("rows_done", 0) / running["rows_total"]
            elif running.get("batches_total"):
                progress = running.get("batches_done", 0) / running["batches_total"]
            planned = name in self._planned
            detail = node_detail(status, report or StepReport(name, "pending", ""), planned,
                             running)
            reason = report.reason if report is not None else ""
            views[name] = NodeView(status=status, detail=detail,
                                   use_cache=bool(steps[name].use_cache),
                                   rerun=name in rerun and name not in off,
                                   tooltip=f"{name}: {status}" + (f" \u2014 {reason}"
                                                                  if reason else ""),
                                   progress=progress)
        return views

    def _details(self, views: Mapping[str, NodeView]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, view in views.items():
            report = self._builder.steps.get(name)
            entry: dict[str, Any] = report.as_dict() if report is not None else {"name": name}
            entry["estimate"] = report.estimate if report is not None else ""
            entry.pop("key", None)
            entry["signature"] = (entry.get("signature") or "")[:12]
            if entry.get("error"):
                entry["error"] = str(entry["error"])[-2000:]
            entry.update(status=view.status, use_cache=view.use_cache, rerun=view.rerun,
                         planned=name in self._planned, preview=self._results.get(name))
            entry.update({k: v for k, v in self._running.get(name, {}).items()})
            out[name] = entry
        return out

    def _flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                views = self._views()
                details = self._details(views)
                self._last_flush = time.monotonic()
            svg = self._render(views)
            with self.hold_sync():
                self.svg = svg
                self.nodes = {n: {"status": v.status, "use_cache": v.use_cache,
                                  "rerun": v.rerun, "detail": v.detail}
                              for n, v in views.items()}
                self.details = details

    # -- results -----------------------------------------------------------------------
    def set_result(self, distiset: Any) -> None:
        """Keep the first rows of each step for the side panel: from ``pipeline.preview``
        (the cache), else, for leaves, from the Distiset."""
        self.distiset = distiset
        self._load_previews(distiset)
        self._flush()

    def _load_previews(self, distiset: Any = None) -> None:
        results: dict[str, Any] = {}
        preview = getattr(self.pipeline, "preview", None)
        leaves = self.pipeline.dag.leaves()
        for name in self.pipeline.dag.nodes:
            table = None
            if callable(preview):
                try:
                    table = preview(name, PREVIEW_ROWS)
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
            report = self._builder.steps.get(name)
            if results[name] is not None and report is not None and report.rows:
                results[name]["total"] = report.rows
        with self._lock:
            self._results = results

    # -- cache switches ----------------------------------------------------------------
    def set_use_cache(self, step: str, use_cache: bool) -> None:
        """Switch ``step``'s cache for the next runs (remembered per pipeline and step)."""
        if step not in self.pipeline.steps:
            msg = (f"pipeline {self.pipeline.name!r} has no step {step!r}; its steps are "
                   f"{', '.join(self.pipeline.steps)}")
            raise KeyError(msg)
        overrides.set_use_cache(self.pipeline, step, bool(use_cache))
        self._flush()

    def toggle(self, step: str) -> bool:
        """Flip ``step``'s cache, as a click on its node does; returns the new setting."""
        if step not in self.pipeline.steps:
            msg = (f"pipeline {self.pipeline.name!r} has no step {step!r}; its steps are "
                   f"{', '.join(self.pipeline.steps)}")
            raise KeyError(msg)
        value = not self.pipeline.steps[step].use_cache
        self.set_use_cache(step, value)
        return value

    # -- run and plan ------------------------------------------------------------------
    def run(self) -> Any:
        """Re-run the pipeline (with the cache switches); what the Run button does."""
        overrides.apply_overrides(self.pipeline)
        if self.on_run is not None:
            result = self.on_run(self)
        else:
            result = self.pipeline.run(use_cache=self.use_cache, recompute=self.recompute,
                                       progress=False)
        self.set_result(result)
        return result

    def plan(self) -> RunReport:
        """Show what a run would do, without running; what the Plan button does."""
        overrides.apply_overrides(self.pipeline)
        report = self.pipeline.plan(use_cache=self.use_cache, recompute=self.recompute)
        self._load_report(report)
        self.mode, self.message = "plan", self._summary(report)
        self._flush()
        return report

    def _fail(self, action: str, error: BaseException) -> None:
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        with self._lock:
            self.mode = "failed"
            self.message = f"{action} failed: {text[:400]}"
        self._flush()

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "toggle":
            step = content.get("step")
            if not isinstance(step, str) or step not in self.pipeline.steps:
                self._reject(f"toggle of an unknown step {step!r}")
                return
            self.toggle(step)
            if self.selected != step:
                self.selected = step
        elif kind in ("run", "plan"):
            if self.mode == "running":
                self._reject(f"{kind} ignored: the pipeline is already running")
                return
            try:
                if kind == "run":
                    self.run()
                else:
                    self.plan()
            except Exception as error:  # shown in the widget; the kernel must survive
                self._fail(kind, error)
        else:
            self._reject(f"unknown message {content!r}"[:200])

    def _reject(self, text: str) -> None:
        self.rejected.append(text)
        warnings.warn(f"CacheGraph: {text}; ignored", WidgetMessageWarning, stacklevel=3)

    @traitlets.validate("selected")
    def _check_selected(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value == "" or (isinstance(value, str) and value in self.pipeline.steps):
            return str(value)
        self._reject(f"selection of an unknown step {value!r}")
        return str(self.selected)

    @traitlets.observe("selected")
    def _remember_selected(self, change: dict[str, Any]) -> None:
        _last_selected[self.pipeline_name] = change["new"]

    # -- static export -----------------------------------------------------------------
    def to_svg(self, legend: bool = True) -> str:
        """The graph as it looks now, as a standalone SVG document."""
        with self._lock:
            views = self._views()
        return self._render(views, legend)

    def _render(self, views: Mapping[str, NodeView], legend: bool = True) -> str:
        routes = {(source, target): router.label
                  for source, router in self.pipeline.routers.items()
                  for target in router.targets}
        return draw_svg(list(self.pipeline.dag.nodes), list(self.pipeline.dag.edges),
                          views, legend=legend, title=self.pipeline.name, routes=routes)

    def save(self, path: str | pathlib.Path) -> pathlib.Path:
        """Write ``to_svg()`` to ``path`` (an ``.svg`` file)."""
        target = pathlib.Path(path)
        target.write_text(self.to_svg(), encoding="utf-8")
        return target

    def close(self) -> None:
        self.pipeline.remove_listener(self.handle_event)
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget, plus the picture for front ends without widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
        try:
            svg = self.to_svg()
        except Exception as error:  # e.g. no graphviz: say so instead of failing display
            data["text/plain"] = f"{data.get('text/plain', '')}\n({error})"
            return data, metadata
        data["image/svg+xml"] = svg
        data["text/html"] = (f'<div class="dnb-static">{svg}<div style="font:12px sans-serif;'
                             f'color:#57606a">{html.escape(self.message)}</div></div>')
        data["text/plain"] = f"CacheGraph({self.pipeline.name!r}): {self.message or self.mode}"
        return data, metadata

    def __repr__(self) -> str:
        return f"CacheGraph({self.pipeline.name!r}, mode={self.mode!r})"
