"""CacheGraph's model from Python: the state the browser sends, and what it changes."""

from __future__ import annotations

import gc
import pathlib
import shutil
import types
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("anywidget")

from distilabel_nb import Pipeline, StepFailedError, StepFailedWarning
from distilabel_nb.engine.events import ALL_RUNS
from distilabel_nb.notebook import overrides
from distilabel_nb.notebook import widget as widget_module
from distilabel_nb.notebook.widget import CacheGraph, WidgetMessageWarning
from distilabel_nb.steps import LoadDataFromDicts, StepInput, step

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")


@step(inputs=["text"], outputs=["n"])
def Count(inputs: StepInput) -> Any:
    for row in inputs:
        row["n"] = len(row["text"])
    yield inputs


@step(inputs=["n"], outputs=["double"])
def Double(inputs: StepInput) -> Any:
    for row in inputs:
        row["double"] = row["n"] * 2
    yield inputs


@step(inputs=["n"], outputs=["boom"])
def Boom(inputs: StepInput) -> Any:
    raise ValueError("kaboom")
    yield inputs


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    overrides.clear_overrides()
    widget_module._last_selected.clear()
    yield
    overrides.clear_overrides()
    for graph in [g for g in gc.get_objects() if isinstance(g, CacheGraph)]:
        graph.close()    # what a front end does; a following graph stops listening


def build(cache_dir: pathlib.Path, name: str = "w", rows: int = 20, batch: int = 5,
          fail: bool = False) -> Pipeline:
    with Pipeline(name=name, cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", batch_size=batch,
                                 data=[{"text": "x" * i} for i in range(rows)])
        count = Count(name="count")
        last = Boom(name="double") if fail else Double(name="double")
        load >> count >> last
    return pipeline


def send(graph: CacheGraph, content: Any) -> None:
    """What the front end's ``model.send(content)`` does."""
    graph._on_msg(graph, content, [])


def statuses(graph: CacheGraph) -> dict[str, str]:
    return {name: node["status"] for name, node in graph.nodes.items()}


def test_graph_follows_runs_miss_then_hit(cache_dir: pathlib.Path) -> None:
    pipeline = build(cache_dir)
    graph = CacheGraph(pipeline)
    assert statuses(graph) == dict.fromkeys(["load", "count", "double"], "pending")
    graph.set_result(pipeline.run(progress=False, on_event=graph.handle_event))
    assert statuses(graph) == dict.fromkeys(["load", "count", "double"], "miss")
    assert graph.mode == "done" and graph.runs == 1
    assert 'data-status="miss"' in graph.svg
    again = build(cache_dir)
    graph2 = CacheGraph(again)
    again.run(progress=False, on_event=graph2.handle_event)
    assert statuses(graph2) == dict.fromkeys(["load", "count", "double"], "hit")
    assert graph2.nodes["count"]["detail"] == "20 rows reused"
    assert "3 hit" in graph2.message
    # A graph made after the run shows the last run.
    assert statuses(CacheGraph(again)) == statuses(graph2)


def test_click_toggles_cache_and_marks_descendants(cache_dir: pathlib.Path) -> None:
    pipeline = build(cache_dir)
    graph = CacheGraph(pipeline)
    pipeline.run(progress=False, on_event=graph.handle_event)
    send(graph, {"type": "toggle", "step": "count"})
    assert pipeline.steps["count"].use_cache is False
    assert graph.nodes["count"]["use_cache"] is False
    assert graph.nodes["double"]["rerun"] is True and graph.nodes["load"]["rerun"] is False
    assert graph.selected == "count"
    assert 'data-step="count" data-status="miss" data-use-cache="false"' in graph.svg
    # The switch holds for a re-built pipeline of the same name (a re-run cell).
    rebuilt = build(cache_dir)
    assert overrides.apply_overrides(rebuilt) == {"count": False}
    graph2 = CacheGraph(rebuilt)
    assert graph2.selected == "count"     # the panel stays on the same step
    rebuilt.run(progress=False, on_event=graph2.handle_event)
    assert statuses(graph2) == {"load": "hit", "count": "miss", "double": "miss"}
    # Clicking again goes back to what the cell says, and the registry forgets it.
    send(graph2, {"type": "toggle", "step": "count"})
    assert rebuilt.steps["count"].use_cache is True
    assert overrides.overrides_for("w") == {}
    other = build(cache_dir, name="other")
    assert overrides.apply_overrides(other) == {}


def test_cell_use_cache_is_the_starting_point(cache_dir: pathlib.Path) -> None:
    pipeline = build(cache_dir)
    pipeline.steps["double"].use_cache = False      # as if the cell said use_cache=False
    overrides.apply_overrides(pipeline)
    graph = CacheGraph(pipeline)
    assert graph.toggle("double") is True
    assert overrides.overrides_for("w") == {"double": True}
    assert graph.toggle("double") is False
    assert overrides.overrides_for("w") == {}


def test_bad_messages_warn_and_change_nothing(cache_dir: pathlib.Path) -> None:
    pipeline = build(cache_dir)
    graph = CacheGraph(pipeline)
    before = dict(graph.nodes)
    bad = [{"type": "toggle", "step": "nope"}, {"type": "toggle", "step": 3},
           {"type": "toggle"}, {"type": "explode"}, "toggle", None, [1, 2]]
    for content in bad:
        with pytest.warns(WidgetMessageWarning):
            send(graph, content)
    assert graph.nodes == before
    assert len(graph.rejected) == len(bad)
    with pytest.warns(WidgetMessageWarning):
        graph.selected = "nope"
    assert graph.selected == ""
    graph.selected = "load"
    assert graph.selected == "load"
    with pytest.raises(KeyError, match="has no step 'nope'"):
        graph.toggle("nope")


def test_run_and_plan_messages(cache_dir: pathlib.Path) -> None:
    pipeline = build(cache_dir)
    calls: list[str] = []

    def runner(graph: CacheGraph) -> Any:
        calls.append("run")
        return pipeline.run(progress=False, on_event=graph.handle_event)

    graph = CacheGraph(pipeline, on_run=runner)
    send(graph, {"type": "plan"})
    assert graph.mode == "plan" and statuses(graph) == dict.fromkeys(pipeline.steps, "miss")
    assert graph.nodes["count"]["detail"] == "will compute"
    assert calls == []
    send(graph, {"type": "run"})
    assert calls == ["run"] and graph.runs == 1
    assert statuses(graph) == dict.fromkeys(pipeline.steps, "miss")
    send(graph, {"type": "toggle", "step": "double"})
    send(graph, {"type": "plan"})
    assert statuses(graph) == {"load": "hit", "count": "hit", "double": "miss"}
    assert graph.details["double"]["reason"] == "cache disabled on this step"
    # The leaf's first rows are in the side panel's data.
    preview = graph.details["double"]["preview"]
    assert preview["columns"] == ["text", "n", "double"] and preview["total"] == 20
    assert len(preview["rows"]) == widget_module.PREVIEW_ROWS


def test_failed_step_is_unmistakable_and_run_button_survives(cache_dir: pathlib.Path) -> None:
    pipeline = build(cache_dir, fail=True)
    graph = CacheGraph(pipeline)
    with pytest.warns(StepFailedWarning, match="kaboom"):
        pipeline.run(progress=False, on_event=graph.handle_event)  # the run goes on
    assert graph.nodes["double"]["status"] == "failed"
    assert graph.mode == "failed"
    assert "kaboom" in (graph.details["double"].get("error") or graph.details["double"]["reason"])
    assert 'data-step="double" data-status="failed"' in graph.svg
    # The Run button: the failure goes to the widget, not out of the comm handler.
    with pytest.warns(StepFailedWarning):
        send(graph, {"type": "run"})
    assert graph.mode == "failed" and "failed" in graph.message


def test_updates_are_throttled(cache_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = build(cache_dir, rows=400, batch=2)
    graph = CacheGraph(pipeline)
    pushes: list[int] = []
    graph.observe(lambda change: pushes.append(1), names="svg")
    events: list[str] = []
    pipeline.add_listener(lambda event: events.append(event.kind))
    pipeline.run(progress=False, on_event=graph.handle_event)
    assert events.count("batch_done") >= 200
    # Only step ends, the run's ends and a few throttled frames reach the front end.
    assert len(pushes) < 40, len(pushes)
    assert statuses(graph) == dict.fromkeys(pipeline.steps, "miss")


def test_running_node_shows_rows_done(cache_dir: pathlib.Path) -> None:
    from distilabel_nb.engine.events import RunEvent

    pipeline = build(cache_dir)
    graph = CacheGraph(pipeline)
    graph.handle_event(RunEvent("run_started", "w"))
    graph.handle_event(RunEvent("step_planned", "w", "count", "miss", "new step"))
    graph.handle_event(RunEvent("step_started", "w", "count", rows_total=20))
    graph.handle_event(RunEvent("batch_done", "w", "count", rows_done=10, rows_total=20,
                                batches_done=2, batches_total=4))
    graph._flush()
    assert graph.nodes["count"] == {"status": "running", "use_cache": True, "rerun": False,
                                    "detail": "10/20 rows"}
    assert graph.mode == "running"
    assert 'class="dnb-progress"' in graph.svg


def test_static_export_and_fallback_bundle(cache_dir: pathlib.Path,
                                           tmp_path: pathlib.Path) -> None:
    pipeline = build(cache_dir)
    pipeline.run(progress=False)
    graph = CacheGraph(pipeline)
    svg = graph.to_svg()
    assert svg.startswith("<svg") and svg.count("data-step=") == 3
    path = graph.save(tmp_path / "graph.svg")
    assert path.read_text() == svg
    data, _ = graph._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["image/svg+xml"] == svg
    assert "<svg" in data["text/html"]
    # A Pipeline displays as its graph, through the formatter the notebook registers.
    from IPython.core.formatters import DisplayFormatter

    from distilabel_nb.notebook.display import register_display

    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    register_display(shell)
    shown, _ = shell.display_formatter.format(pipeline)
    assert "image/svg+xml" in shown and "<svg" in shown["image/svg+xml"]


def test_close_stops_listening(cache_dir: pathlib.Path) -> None:
    pipeline = build(cache_dir)
    graph = CacheGraph(pipeline, follow=True)
    assert len(ALL_RUNS._listeners) == 1
    graph.close()
    assert ALL_RUNS._listeners == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipeline.run(progress=False)
    assert graph.runs == 0


FLAKY = {"fail": True}


@step(inputs=["text"], outputs=["n"])
def Flaky(inputs: StepInput) -> Any:
    if FLAKY["fail"] and any(row["text"] == "x" * 12 for row in inputs):
        raise RuntimeError("LLM timeout")
    for row in inputs:
        row["n"] = len(row["text"])
    yield inputs


def test_failed_then_resumed_shows_partial_batches(cache_dir: pathlib.Path) -> None:
    def build_flaky() -> Pipeline:
        with Pipeline(name="flaky", cache_dir=cache_dir) as pipeline:
            load = LoadDataFromDicts(name="load", batch_size=4,
                                     data=[{"text": "x" * i} for i in range(20)])
            load >> Flaky(name="generate", input_batch_size=4) >> Double(name="judge")
        return pipeline

    FLAKY["fail"] = True
    pipeline = build_flaky()
    graph = CacheGraph(pipeline, follow=True)
    with pytest.raises(StepFailedError):
        pipeline.run(progress=False, fail_fast=True)
    assert graph.nodes["generate"]["detail"] == "FAILED \u00b7 RuntimeError"
    assert graph.nodes["judge"]["status"] == "pending"
    FLAKY["fail"] = False
    pipeline = build_flaky()
    graph = CacheGraph(pipeline, follow=True)
    pipeline.run(progress=False)
    assert statuses(graph) == {"load": "partial", "generate": "partial", "judge": "miss"}
    assert graph.nodes["generate"]["detail"] == "3/5 batches reused"
    assert "3/5 batches reused" in graph.to_svg()


def test_secrets_never_reach_the_widget_state(cache_dir: pathlib.Path) -> None:
    import json

    from distilabel_nb.steps import Step

    key = "sk-widget-secret-1234"

    class Leaky(Step):
        api_key: str | None = None

        @property
        def inputs(self) -> list[str]:
            return ["text"]

        def process(self, inputs: Any) -> Any:  # type: ignore[override]
            raise PermissionError(f"401 Unauthorized for key {self.api_key}")
            yield inputs

    with Pipeline(name="leaky", cache_dir=cache_dir) as pipeline:
        LoadDataFromDicts(name="load", data=[{"text": "a"}]) >> Leaky(name="leaky", api_key=key)
    graph = CacheGraph(pipeline)
    with pytest.raises(StepFailedError) as caught:
        pipeline.run(progress=False, fail_fast=True, on_event=graph.handle_event)
    assert key not in str(caught.value) and "<redacted>" in str(caught.value)
    state = json.dumps(graph.get_state(), default=str)
    assert "401 Unauthorized" in state
    assert key not in state
