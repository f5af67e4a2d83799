"""``CacheGraph``: the pipeline's DAG, every node coloured by what the cache did for it.

An anywidget widget; its JavaScript is ``static/widget.js`` beside this file. A graph
shows one run: the run its cell started (events passed with ``on_event``), or the last
run when it was displayed; runs started elsewhere never repaint it, unless it was made
with ``follow=True`` (then it follows every run, through a weak subscription that ends
when the graph is closed or collected). It re-draws at most every ``THROTTLE_SECONDS``
while its run streams batches. Its history strip lists the pipeline's recorded runs
(read from the cache): one can be shown, or two compared. Messages from the browser:
``toggle``, ``run``, ``plan``, ``show_run``, ``compare``, ``history``; a message it does
not understand is dropped with a warning.
"""

from __future__ import annotations

import pathlib
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from distilabel_nb.cache.history import RunEntry
from distilabel_nb.drawing.render import (
    COMPARE_STATUSES,
    STATUSES,
    NodeView,
    draw_svg,
    graph_shape,
)
from distilabel_nb.drawing.views import (
    PREVIEW_ROWS,
    load_previews,
    static_picture,
    summary_line,
)
from distilabel_nb.engine.events import ALL_RUNS, RunEvent
from distilabel_nb.engine.reasons import compare_runs
from distilabel_nb.engine.report import RunReport
from distilabel_nb.notebook import overrides
from distilabel_nb.notebook.compare import compare_message, compare_views, ordered
from distilabel_nb.notebook.history import entry_report, run_label, strip_entries
from distilabel_nb.notebook.listeners import Subscription, subscribe
from distilabel_nb.notebook.messages import dispatch
from distilabel_nb.notebook.state import RunState

if TYPE_CHECKING:
    from distilabel_nb.pipeline.pipeline import Pipeline

__all__ = ["PREVIEW_ROWS", "THROTTLE_SECONDS", "CacheGraph", "WidgetMessageWarning"]

THROTTLE_SECONDS = 0.15
_STATIC = pathlib.Path(__file__).parent / "static"

Runner = Callable[["CacheGraph"], Any]

# The step last selected in a graph of each pipeline, so a re-run cell keeps its panel.
_last_selected: dict[str, str] = {}


class WidgetMessageWarning(UserWarning):
    """A message from the browser was malformed or named an unknown step; it is ignored."""


class CacheGraph(anywidget.AnyWidget):
    """The cache graph of one run of ``pipeline`` (live while it runs), with the
    pipeline's run history.

    Click a node (or call ``toggle(step)``) to switch that step's cache off for the next
    runs; ``show_run(id)`` and ``compare(a, b)`` look back; ``to_svg()``/``save(path)``
    export the picture.
    """

    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

    pipeline_name = traitlets.Unicode("").tag(sync=True)
    svg = traitlets.Unicode("").tag(sync=True)
    nodes = traitlets.Dict().tag(sync=True)       # step -> {status, use_cache, rerun, detail}
    details = traitlets.Dict().tag(sync=True)     # step -> report fields + preview
    selected = traitlets.Unicode("").tag(sync=True)
    mode = traitlets.Unicode("idle").tag(sync=True)  # idle|plan|running|done|failed|compare
    message = traitlets.Unicode("").tag(sync=True)
    can_run = traitlets.Bool(False).tag(sync=True)
    runs = traitlets.Int(0).tag(sync=True)        # finished runs seen, for front ends/tests
    #: The history strip: recorded runs, oldest first; ``compared``: [older, newer] ids.
    history: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    own_run = traitlets.Unicode("").tag(sync=True)    # the run this graph's cell started
    shown_run = traitlets.Unicode("").tag(sync=True)  # the run drawn now ("" for a plan)
    compared: traitlets.List[str] = traitlets.List().tag(sync=True)

    def __init__(self, pipeline: Pipeline, on_run: Runner | None = None,
                 use_cache: bool = True, recompute: Collection[str] = (),
                 follow: bool = False, **kwargs: Any) -> None:
        super().__init__(pipeline_name=pipeline.name, can_run=True, **kwargs)
        self.pipeline = pipeline
        self.on_run = on_run
        self.use_cache = use_cache
        self.recompute = list(recompute)
        self.follow = follow
        self.rejected: list[str] = []
        self.distiset: Any = None
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._state = RunState(pipeline.name)
        self._last_flush = 0.0
        self._timer: threading.Timer | None = None
        self._results: dict[str, Any] = {}
        self._recorded: RunEntry | None = None   # a run of the history being shown
        self._changes: dict[str, str] | None = None   # two runs compared: step -> change
        last = pipeline.last_run
        if last is not None:
            self._load_report(last)
            self.mode = "plan" if last.planned else "done"
            self.message = summary_line(last)
            self.own_run = self.shown_run = last.run_id or ""
            self._load_previews()
        remembered = _last_selected.get(pipeline.name, "")
        if remembered in pipeline.steps:
            self.selected = remembered
        self.on_msg(self._on_msg)
        self._subscription: Subscription | None = (
            subscribe(ALL_RUNS, self._follow) if follow else None)
        self.refresh_history()
        self._flush()

    # -- state from reports and events -------------------------------------------------
    def _load_report(self, report: RunReport) -> None:
        with self._lock:
            self._state = RunState(report.pipeline, report)
            self._recorded, self._changes = None, None

    def handle_event(self, event: RunEvent) -> None:
        """A ``RunEvent`` listener (``pipeline.run(on_event=graph.handle_event)``):
        update the state, re-draw (throttled)."""
        with self._lock:
            if event.kind == "run_started":
                self._load_report(RunReport(event.pipeline, {}))
                run_id = str(event.extra.get("run_id") or "")
                self.own_run = self.shown_run = run_id
                self.compared = []
            changed = self._state.apply(event)
            if changed is not None:
                self.mode, self.message = changed
            if event.kind == "run_finished":
                self.runs += 1
        if event.kind == "run_finished":
            self.refresh_history()
            if not event.message:
                self._load_previews()
        urgent = event.kind in ("run_started", "step_finished", "run_finished")
        self._request_flush(urgent)

    def _follow(self, event: RunEvent) -> None:
        if event.pipeline == self.pipeline.name:  # any Pipeline object of that name
            self.handle_event(event)

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

    def _shape(self) -> tuple[list[str], list[tuple[str, str]], dict[tuple[str, str], str]]:
        """The DAG drawn: the recorded run's when one is shown, else the pipeline's."""
        nodes, edges, routes, _, _ = graph_shape(self._recorded or self.pipeline)
        return nodes, edges, routes

    def _views(self) -> dict[str, NodeView]:
        nodes = self._shape()[0]
        if self._changes is not None:
            return compare_views(nodes, self._changes)
        steps = self.pipeline.steps
        off = [n for n, s in steps.items() if not s.use_cache]
        rerun = {d for n in off for d in self.pipeline.dag.descendants(n)} - set(off)
        return self._state.views(nodes, {n: bool(s.use_cache) for n, s in steps.items()},
                                 rerun)

    def _flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                views = self._views()
                details = self._state.details(views, self._results, self._changes)
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

    def _load_previews(self, distiset: Any = None, keys: Mapping[str, str] | None = None
                       ) -> None:
        results = load_previews(self.pipeline, self._shape()[0], self._state.steps,
                                distiset, keys)
        with self._lock:
            self._results = results

    # -- history -----------------------------------------------------------------------
    def refresh_history(self) -> None:
        """Re-read the pipeline's recorded runs from the cache (every process's)."""
        try:
            entries = self.pipeline.history()
        except Exception as error:  # an unreadable cache must not break the graph
            warnings.warn(f"CacheGraph: run history unavailable: {error}", RuntimeWarning,
                          stacklevel=2)
            return
        self.history = strip_entries(entries, self.own_run or None)

    def _recorded_run(self, run_id: str) -> RunEntry:
        entry = self.pipeline.history_run(run_id)
        if entry is None:
            msg = (f"no run {run_id!r} of pipeline {self.pipeline.name!r} is recorded in "
                   "its cache (cleared, or another cache_dir)")
            raise KeyError(msg)
        return entry

    def _label(self, entry: RunEntry) -> str:
        numbers = {h["run_id"]: h["number"] for h in self.history}
        return run_label(entry, numbers.get(entry.run_id, 0))

    def show_run(self, run_id: str) -> None:
        """Show a recorded run: its colours, reasons and (still cached) rows."""
        entry = self._recorded_run(run_id)
        report = entry_report(entry)
        self._load_report(report)
        with self._lock:
            self._recorded = entry
            self.mode = "failed" if entry.error else "done"
            summary = summary_line(report).removeprefix("run: ")
            self.message = f"{self._label(entry)} \u00b7 {summary}"
            self.shown_run, self.compared = run_id, []
        self._load_previews(keys={n: str(s.get("key") or "") for n, s in entry.steps.items()})
        self._flush()

    def compare(self, first: str, second: str) -> dict[str, str]:
        """Compare two recorded runs: every node says what differed (the older run's
        step -> the newer's), in the words of the miss reasons; returns those words."""
        old, new = ordered(self._recorded_run(first), self._recorded_run(second))
        changes = compare_runs(old, new)
        with self._lock:
            self._state, self._results = RunState(self.pipeline.name), {}
            self._recorded, self._changes = new, changes
            self.mode = "compare"
            self.message = compare_message(self._label(old), self._label(new), changes)
            self.shown_run, self.compared = "", [old.run_id, new.run_id]
        self._flush()
        return changes

    # -- cache switches ----------------------------------------------------------------
    def _check_step(self, step: str) -> None:
        if step not in self.pipeline.steps:
            msg = (f"pipeline {self.pipeline.name!r} has no step {step!r}; its steps are "
                   f"{', '.join(self.pipeline.steps)}")
            raise KeyError(msg)
    def set_use_cache(self, step: str, use_cache: bool) -> None:
        """Switch ``step``'s cache for the next runs (remembered per pipeline and step)."""
        self._check_step(step)
        overrides.set_use_cache(self.pipeline, step, bool(use_cache))
        self._flush()

    def toggle(self, step: str) -> bool:
        """Flip ``step``'s cache, as a click on its node does; returns the new setting."""
        self._check_step(step)
        value = not self.pipeline.steps[step].use_cache
        self.set_use_cache(step, value)
        return value

    # -- run and plan ------------------------------------------------------------------
    def run(self) -> Any:
        """Re-run the pipeline (with the cache switches), shown in this graph; what the
        Run button does."""
        overrides.apply_overrides(self.pipeline)
        if self.on_run is not None:
            result = self.on_run(self)
        else:
            on_event = None if self.follow else self.handle_event
            result = self.pipeline.run(use_cache=self.use_cache, recompute=self.recompute,
                                       progress=False, on_event=on_event)
        self.set_result(result)
        return result

    def plan(self) -> RunReport:
        """Show what a run would do, without running; what the Plan button does."""
        overrides.apply_overrides(self.pipeline)
        report = self.pipeline.plan(use_cache=self.use_cache, recompute=self.recompute)
        self._load_report(report)
        self.mode, self.message = "plan", summary_line(report)
        self.shown_run, self.compared = "", []
        self._flush()
        return report

    def fail(self, action: str, error: BaseException) -> None:
        """Show that ``action`` failed, in the graph."""
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        with self._lock:
            self.mode = "failed"
            self.message = f"{action} failed: {text[:400]}"
        self._flush()

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        dispatch(self, content)

    def reject(self, text: str) -> None:
        """A malformed message from the browser: kept in ``rejected``, warned about."""
        self.rejected.append(text)
        warnings.warn(f"CacheGraph: {text}; ignored", WidgetMessageWarning, stacklevel=4)

    @traitlets.validate("selected")
    def _check_selected(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value == "" or (isinstance(value, str) and value in self.pipeline.steps):
            return str(value)
        self.reject(f"selection of an unknown step {value!r}")
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
        nodes, edges, routes = self._shape()
        return draw_svg(nodes, edges, views, legend=legend, title=self.pipeline.name,
                        routes=routes, legend_statuses=COMPARE_STATUSES
                        if self._changes is not None else STATUSES)

    def save(self, path: str | pathlib.Path) -> pathlib.Path:
        """Write ``to_svg()`` to ``path`` (an ``.svg`` file)."""
        target = pathlib.Path(path)
        target.write_text(self.to_svg(), encoding="utf-8")
        return target

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget, plus the picture of this graph's run for front ends without
        widgets (nbconvert, GitHub): what the saved notebook shows for this cell."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
        try:
            svg: str | Exception = self.to_svg()
        except Exception as error:  # e.g. no graphviz: say so instead of failing display
            svg = error
        return static_picture(data, svg, self.message or self.mode, self.pipeline.name), \
            metadata

    def __repr__(self) -> str:
        return f"CacheGraph({self.pipeline.name!r}, mode={self.mode!r})"
