"""render.py: DAG -> DOT -> SVG, nodes readable by data attributes, styles from the table."""

from __future__ import annotations

import pathlib
import shutil
import xml.etree.ElementTree as ET

import pytest

from distilabel_nb.drawing import render
from distilabel_nb.drawing.render import STYLES, GraphvizNotFoundError, NodeView, draw_svg

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")
NS = {"svg": render.SVG_NS}


def _nodes(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.get("data-step", ""): g for g in root.iter(f"{{{render.SVG_NS}}}g")
            if g.get("data-step") is not None}


def test_dot_source_quotes_names_and_keeps_edges() -> None:
    dot = render.dag_to_dot(["load", 'we"ird'], [("load", 'we"ird')])
    assert 'label="we\\"ird  "' in dot
    assert "n0 -> n1" in dot


@needs_dot
def test_routed_edges_are_dashed_and_name_their_function() -> None:
    nodes, edges = ["load", "a", "b", "join"], [("load", "a"), ("load", "b"), ("a", "join"),
                                                 ("b", "join")]
    routes = {("load", "a"): "sample_n(n=1)", ("load", "b"): "sample_n(n=1)"}
    assert render.dag_to_dot(nodes, edges, routes=routes).count("style=dashed") == 2

    def dashed_edges(svg: str) -> int:
        return sum(1 for e in ET.fromstring(svg).iter(f"{{{render.SVG_NS}}}path")
                   if e.get("stroke-dasharray"))

    svg = draw_svg(nodes, edges, {}, routes=routes)
    assert dashed_edges(svg) == 2
    assert svg.count("routed by sample_n(n=1)") == 2
    assert dashed_edges(draw_svg(nodes, edges, {})) == 0


@needs_dot
def test_every_node_carries_its_state() -> None:
    views = {"load": NodeView("hit", "40 rows reused"),
             "gen": NodeView("partial", "12/20 batches reused"),
             "judge": NodeView("failed", "FAILED", use_cache=False),
             "keep": NodeView("running", "10/40 rows", rerun=True, progress=0.25)}
    svg = draw_svg(list(views), [("load", "gen"), ("gen", "judge"), ("judge", "keep")], views)
    nodes = _nodes(svg)
    assert set(nodes) == set(views)
    for name, view in views.items():
        group = nodes[name]
        assert group.get("data-status") == view.status
        assert group.get("data-use-cache") == ("true" if view.use_cache else "false")
        assert group.get("data-rerun") == ("true" if view.rerun else "false")
        shape = group.find("svg:path", NS)
        assert shape is not None
        assert shape.get("fill") == STYLES[view.status]["fill"]
        assert shape.get("stroke") == STYLES[view.status]["stroke"]
        texts = [t.text for t in group.iter(f"{{{render.SVG_NS}}}text")]
        assert name in texts and view.detail in texts
    assert nodes["judge"].find("svg:path", NS).get("stroke-dasharray")  # type: ignore[union-attr]
    assert "cache off: recomputes" in svg
    assert "12/20 batches reused" in svg
    assert 'class="dnb-progress"' in svg
    assert "dnb-legend" in svg and "cache off" in svg


@needs_dot
def test_layout_is_memoised_and_render_is_fast() -> None:
    nodes = [f"s{i}" for i in range(12)]
    edges = [(nodes[i], nodes[i + 1]) for i in range(11)]
    draw_svg(nodes, edges, {})
    before = render.layout_svg.cache_info().hits
    draw_svg(nodes, edges, {"s3": NodeView("miss")})
    assert render.layout_svg.cache_info().hits == before + 1


def test_missing_dot_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render.shutil, "which", lambda _name: None)
    render.layout_svg.cache_clear()
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        draw_svg(["a"], [], {})


def test_empty_pipeline() -> None:
    assert "empty pipeline" in draw_svg([], [], {})


@needs_dot
def test_render_svg_draws_a_pipeline_or_a_recorded_run(tmp_path: pathlib.Path) -> None:
    """The one public picture: a pipeline coloured by its last run (or any report), and a
    run read back from the cache's history, with no pipeline at hand."""
    from distilabel_nb.cache.admin import opened

    from .test_history import build

    pipeline = build(tmp_path, rows=10)
    assert {g.get("data-status") for g in _nodes(render.render_svg(pipeline)).values()} == {
        "pending"}
    pipeline.run(progress=False)
    first = pipeline.last_run
    build(tmp_path, rows=10, style="detailed").run(progress=False)
    svg = render.render_svg(pipeline)
    assert {n: g.get("data-status") for n, g in _nodes(svg).items()} == dict.fromkeys(
        ("load", "write", "count"), "miss")
    with opened(tmp_path) as cache:
        assert cache is not None
        manifest = cache[0]
        entry = manifest.history_run("story", manifest.history("story")[-1].run_id)
    assert entry is not None
    recorded = _nodes(render.render_svg(entry))
    assert {n: g.get("data-status") for n, g in recorded.items()} == {
        "load": "hit", "write": "miss", "count": "miss"}
    title = recorded["write"].find("svg:title", NS)
    assert title is not None and title.text == (
        "write: miss \u2014 style changed 'concise' -> 'detailed'")
    # The pipeline's shape, another run's colours (as a graph showing an earlier run).
    again = _nodes(render.render_svg(pipeline, entry))
    assert {n: g.get("data-status") for n, g in again.items()} == {
        "load": "hit", "write": "miss", "count": "miss"}
    assert first is not None and render.render_svg(pipeline, first) == svg
    dot = render.dag_to_dot(["a", "b"], [("a", "b")],
                            views={"a": NodeView("hit", "3 rows reused")})
    assert 'fillcolor="#dafbe1"' in dot and "3 rows reused" in dot
