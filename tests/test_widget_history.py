"""A graph keeps what it showed: one run per graph, subscriptions that end, the history
strip read from the cache, a recorded run shown again and two runs compared."""

from __future__ import annotations

import gc
import pathlib
import shutil
import warnings

import pytest

pytest.importorskip("anywidget")

from distilabel_nb.engine.events import ALL_RUNS
from distilabel_nb.notebook.display import pipeline_bundle
from distilabel_nb.notebook.widget import CacheGraph, WidgetMessageWarning

from .test_history import build
from .test_widget import _fresh_registry  # noqa: F401  (autouse: the same clean registry)

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")


def statuses(graph: CacheGraph) -> dict[str, str]:
    return {name: node["status"] for name, node in graph.nodes.items()}


def cell(root: pathlib.Path, **kwargs: object) -> CacheGraph:
    """What a %%pipeline cell does: build, show the graph, run with its events."""
    pipeline = build(root, rows=40, **kwargs)  # type: ignore[arg-type]
    graph = CacheGraph(pipeline)
    graph.set_result(pipeline.run(progress=False, on_event=graph.handle_event))
    return graph


def test_a_graph_keeps_its_run_when_another_cell_runs(tmp_path: pathlib.Path) -> None:
    first = cell(tmp_path)
    dashboard = CacheGraph(build(tmp_path, rows=40), follow=True)
    partial = cell(tmp_path, style="detailed")
    assert statuses(partial) == {"load": "hit", "write": "miss", "count": "miss"}
    picture = partial._repr_mimebundle_()[0]["image/svg+xml"]
    again = build(tmp_path, rows=40, style="detailed")
    again.steps["count"].use_cache = False
    again.run(progress=False)                          # from elsewhere: another cell
    # The cell's graph and its saved picture still say what that cell did.
    assert statuses(partial) == {"load": "hit", "write": "miss", "count": "miss"}
    assert partial._repr_mimebundle_()[0]["image/svg+xml"] == picture
    assert statuses(first) == dict.fromkeys(("load", "write", "count"), "miss")
    assert first.own_run != partial.own_run and partial.own_run == partial.shown_run
    # A following graph (a dashboard) shows every run, the last one now.
    assert dashboard.runs == 2
    assert statuses(dashboard) == {"load": "hit", "write": "hit", "count": "miss"}
    assert dashboard.details["count"]["reason"] == "cache disabled on this step"


def test_its_own_run_button_runs_in_that_graph_only(tmp_path: pathlib.Path) -> None:
    graph = cell(tmp_path)
    other = cell(tmp_path)
    before = dict(other.nodes), other.own_run
    graph.toggle("count")
    graph._on_msg(graph, {"type": "run"}, [])
    assert statuses(graph) == {"load": "hit", "write": "hit", "count": "miss"}
    assert graph.own_run == graph.history[-1]["run_id"] and graph.history[-1]["own"]
    assert (dict(other.nodes), other.own_run) == before


def test_displaying_a_pipeline_leaves_no_listener_behind(tmp_path: pathlib.Path) -> None:
    pipeline = build(tmp_path, rows=10)
    pipeline.run(progress=False)
    for _ in range(10):   # what displaying `pipeline` in a cell does
        bundle = pipeline_bundle(pipeline)
        assert bundle is not None and "image/svg+xml" in bundle[0]
    assert pipeline._listeners == [] and ALL_RUNS._listeners == []
    followers = [CacheGraph(pipeline, follow=True) for _ in range(10)]
    assert len(ALL_RUNS._listeners) == 10
    for graph in followers[:5]:
        graph.close()
    assert len(ALL_RUNS._listeners) == 5
    # Graphs nobody holds any more (closed comms, deleted cells) unsubscribe themselves.
    for graph in followers[5:]:
        graph.close()
    del followers, graph
    gc.collect()
    assert ALL_RUNS._listeners == []


def test_a_collected_graph_unsubscribes_without_close(tmp_path: pathlib.Path) -> None:
    from distilabel_nb.notebook.listeners import subscribe

    class Graph:
        def __init__(self) -> None:
            self.events = 0

        def handle(self, _event: object) -> None:
            self.events += 1

    pipeline = build(tmp_path, rows=10)
    kept, dropped = Graph(), Graph()
    subscribe(pipeline, kept.handle)
    subscribe(pipeline, dropped.handle)
    del dropped
    gc.collect()
    assert len(pipeline._listeners) == 1
    pipeline.run(progress=False)
    assert kept.events > 0


def test_history_strip_lists_runs_from_the_cache(tmp_path: pathlib.Path) -> None:
    first = cell(tmp_path)
    cell(tmp_path, style="detailed")
    third = cell(tmp_path, style="detailed")
    strip = third.history
    assert [h["number"] for h in strip] == [1, 2, 3]
    assert [h["statuses"] for h in strip] == [{"miss": 3}, {"hit": 1, "miss": 2}, {"hit": 3}]
    assert [h["own"] for h in strip] == [False, False, True]
    assert all(h["rows"] == 40 and h["time"] and h["seconds"] >= 0 for h in strip)
    # The first graph's strip was read when its run ended; it re-reads on request.
    assert len(first.history) == 1
    first._on_msg(first, {"type": "history"}, [])
    assert len(first.history) == 3 and first.history[0]["own"]
    # A new kernel (nothing in memory) reads the same history from the cache.
    fresh = CacheGraph(build(tmp_path, rows=40))
    assert [h["run_id"] for h in fresh.history] == [h["run_id"] for h in strip]
    assert fresh.own_run == "" and statuses(fresh) == dict.fromkeys(("load", "write",
                                                                      "count"), "pending")


def test_choosing_a_run_shows_its_colours_reasons_and_rows(tmp_path: pathlib.Path) -> None:
    cell(tmp_path)
    cell(tmp_path, style="detailed")
    graph = cell(tmp_path, style="detailed")
    second = graph.history[1]["run_id"]
    graph._on_msg(graph, {"type": "show_run", "run_id": second}, [])
    assert graph.shown_run == second and graph.mode == "done"
    assert statuses(graph) == {"load": "hit", "write": "miss", "count": "miss"}
    assert graph.details["write"]["reason"] == "style changed 'concise' -> 'detailed'"
    assert graph.message.startswith("run 2 \u00b7 ")
    assert graph.details["write"]["preview"]["rows"][0][-1] == "detailed: t0"
    first = graph.history[0]["run_id"]
    graph.show_run(first)
    assert graph.details["write"]["preview"]["rows"][0][-1] == "concise: t0"   # its rows
    assert 'data-step="write" data-status="miss"' in graph.to_svg()


def test_comparing_two_runs_names_what_changed(tmp_path: pathlib.Path) -> None:
    cell(tmp_path)
    graph = cell(tmp_path, style="detailed")
    first, second = (h["run_id"] for h in graph.history)
    graph._on_msg(graph, {"type": "compare", "runs": [second, first]}, [])
    assert graph.mode == "compare" and graph.compared == [first, second]
    assert graph.details["write"]["reason"] == "style changed 'concise' -> 'detailed'"
    assert graph.details["count"]["reason"] == "upstream 'write' changed"
    assert graph.details["load"]["reason"] == "unchanged"
    assert statuses(graph) == {"load": "same", "write": "changed", "count": "changed"}
    assert "2 steps changed" in graph.message
    svg = graph.to_svg()
    assert "style changed" in svg and 'data-status="changed"' in svg and "unchanged" in svg
    # Back to the graph's own run.
    graph.show_run(graph.own_run)
    assert statuses(graph) == {"load": "hit", "write": "miss", "count": "miss"}


def test_bad_history_messages_warn(tmp_path: pathlib.Path) -> None:
    graph = cell(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph._on_msg(graph, {"type": "compare", "runs": ["x"]}, [])
        graph._on_msg(graph, {"type": "show_run"}, [])
    assert sum(issubclass(w.category, WidgetMessageWarning) for w in caught) == 2
    graph._on_msg(graph, {"type": "show_run", "run_id": "nope"}, [])
    assert graph.mode == "failed" and "no run 'nope'" in graph.message
