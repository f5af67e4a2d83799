"""The cache graph as a picture: DAG -> DOT -> SVG through graphviz's ``dot``.

``dot`` only lays the graph out; the nodes are then drawn here, from the status -> style
table ``STYLES``, so the static SVG (``CacheGraph.to_svg()``, the nbconvert fallback) and
the live widget look the same. Every node is a ``<g>`` carrying ``data-step``,
``data-status`` and ``data-use-cache`` so people, the widget's JavaScript and tests can
read it.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

import graphviz

from distilabel_nb.cache.history import RunEntry
from distilabel_nb.drawing.views import node_detail
from distilabel_nb.engine.report import StepReport

__all__ = [
    "COMPARE_STATUSES",
    "STATUSES",
    "STYLES",
    "GraphvizNotFoundError",
    "NodeView",
    "dag_to_dot",
    "draw_svg",
    "graph_shape",
    "layout_svg",
    "render_svg",
    "report_views",
    "step_reports",
]

SVG_NS = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")

STATUSES = ("pending", "running", "hit", "partial", "miss", "failed")

#: status -> colours of the node (GitHub-like palette) and its legend label.
STYLES: dict[str, dict[str, str]] = {
    "pending": {"fill": "#f6f8fa", "stroke": "#8c959f", "text": "#57606a",
                "accent": "#8c959f", "label": "pending"},
    "running": {"fill": "#fbefff", "stroke": "#8250df", "text": "#24292f",
                "accent": "#8250df", "label": "running"},
    "hit": {"fill": "#dafbe1", "stroke": "#1a7f37", "text": "#24292f",
            "accent": "#1a7f37", "label": "hit (reused)"},
    "partial": {"fill": "#fff8c5", "stroke": "#bf8700", "text": "#24292f",
                "accent": "#9a6700", "label": "partial"},
    "miss": {"fill": "#ddf4ff", "stroke": "#0969da", "text": "#24292f",
             "accent": "#0969da", "label": "miss (computed)"},
    "failed": {"fill": "#ffebe9", "stroke": "#cf222e", "text": "#82071e",
               "accent": "#cf222e", "label": "failed"},
    # Two runs compared: what each step's key did between them.
    "same": {"fill": "#f6f8fa", "stroke": "#afb8c1", "text": "#57606a",
             "accent": "#6e7781", "label": "unchanged"},
    "changed": {"fill": "#fff1e5", "stroke": "#bc4c00", "text": "#24292f",
                "accent": "#953800", "label": "changed"},
    "added": {"fill": "#ddf4ff", "stroke": "#0969da", "text": "#24292f",
              "accent": "#0969da", "label": "new step"},
}
COMPARE_STATUSES = ("same", "changed", "added")

_FONT = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif"
_CSS = """
.dnb-node { cursor: pointer; }
.dnb-node[data-status="running"] .dnb-shape { animation: dnb-pulse 1.2s ease-in-out infinite; }
@keyframes dnb-pulse { 0%, 100% { stroke-width: 2px; fill-opacity: 1; }
  50% { stroke-width: 4.5px; fill-opacity: 0.55; } }
"""
_INSTALL = ("graphviz's `dot` program is needed to draw the cache graph and was not found "
            "on PATH. Install graphviz: `apt-get install graphviz` (Debian/Ubuntu), "
            "`brew install graphviz` (macOS), `conda install -c conda-forge graphviz`, or "
            "see https://graphviz.org/download/")


class GraphvizNotFoundError(RuntimeError):
    """graphviz's ``dot`` is not installed."""


@dataclasses.dataclass(frozen=True)
class NodeView:
    """What one node shows: its status, a detail line, and its cache switch."""

    status: str = "pending"
    detail: str = ""
    use_cache: bool = True
    rerun: bool = False      # re-runs next time because an upstream cache is off
    tooltip: str = ""
    progress: float | None = None   # 0..1 while running


def _digraph(nodes: Iterable[str], edges: Iterable[tuple[str, str]], rankdir: str = "LR",
              routes: Mapping[tuple[str, str], str] | None = None,
              views: Mapping[str, NodeView] | None = None) -> graphviz.Digraph:
    """The graph as a ``graphviz.Digraph``; nodes are ``n0, n1, ...`` in the order given.
    Without ``views`` labels are names only (the layout the SVG is drawn on); with them,
    each node is filled by its status, for DOT read on its own."""
    ids = {name: f"n{i}" for i, name in enumerate(nodes)}
    graph = graphviz.Digraph(
        "cache",
        graph_attr={"rankdir": rankdir, "nodesep": "0.3", "ranksep": "0.45", "pad": "0.15",
                    "bgcolor": "transparent"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                   "fontsize": "13", "width": "2.3", "height": "0.9", "margin": "0.2,0.1"},
        edge_attr={"color": "#8c959f", "arrowsize": "0.7", "penwidth": "1.4"})
    for name, node_id in ids.items():
        if views is None:  # the label only sizes the box: the text is drawn after layout
            graph.node(node_id, label=name + "  ", id=node_id)
            continue
        view = views.get(name, NodeView())
        style = STYLES.get(view.status, STYLES["pending"])
        graph.node(node_id, label=f"{name}\n{view.detail or view.status}", id=node_id,
                   fillcolor=style["fill"], color=style["stroke"], fontcolor=style["text"],
                   tooltip=view.tooltip or f"{name}: {view.status}")
    routes = routes or {}
    for src, dst in edges:
        routed = routes.get((src, dst))
        if routed is None:
            graph.edge(ids[src], ids[dst])
        else:
            graph.edge(ids[src], ids[dst], style="dashed", tooltip=f"routed by {routed}")
    return graph


def dag_to_dot(nodes: Iterable[str], edges: Iterable[tuple[str, str]],
               rankdir: str = "LR", routes: Mapping[tuple[str, str], str] | None = None,
               views: Mapping[str, NodeView] | None = None) -> str:
    """The DOT source of the graph. Edges in ``routes`` (a routing function sends only
    some batches along them) are dashed and titled with the function."""
    return str(_digraph(nodes, edges, rankdir, routes, views).source)


def _dot_program() -> str:
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(_INSTALL)
    return program


@functools.lru_cache(maxsize=64)
def layout_svg(dot_source: str) -> str:
    """``dot -Tsvg`` of ``dot_source`` (memoised: a layout only changes with the DAG)."""
    _dot_program()
    try:
        return graphviz.pipe("dot", "svg", dot_source.encode()).decode()
    except graphviz.ExecutableNotFound as error:  # removed between which() and pipe()
        raise GraphvizNotFoundError(_INSTALL) from error
    except graphviz.CalledProcessError as error:
        stderr = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) \
            else str(error.stderr)
        msg = f"graphviz `dot` failed: {stderr.strip()}"
        raise RuntimeError(msg) from error


def _tag(name: str) -> str:
    return f"{{{SVG_NS}}}{name}"


def _bbox(shape: ET.Element) -> tuple[float, float, float, float]:
    text = shape.get("d") or shape.get("points") or ""
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]
    xs, ys = numbers[0::2], numbers[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def _text(parent: ET.Element, x: float, y: float, content: str, size: float, color: str,
          weight: str = "normal", cls: str = "") -> ET.Element:
    element = ET.SubElement(parent, _tag("text"), {
        "x": f"{x:.1f}", "y": f"{y:.1f}", "text-anchor": "middle", "font-family": _FONT,
        "font-size": f"{size}", "font-weight": weight, "fill": color})
    if cls:
        element.set("class", cls)
    element.text = content
    return element


def _draw_node(group: ET.Element, name: str, view: NodeView) -> None:
    style = STYLES.get(view.status, STYLES["pending"])
    shape = next((c for c in group if c.tag in (_tag("path"), _tag("polygon"))), None)
    for child in list(group):
        if child.tag in (_tag("text"), _tag("title")):
            group.remove(child)
    group.set("class", "node dnb-node")
    group.set("data-step", name)
    group.set("data-status", view.status)
    group.set("data-use-cache", "true" if view.use_cache else "false")
    group.set("data-rerun", "true" if view.rerun else "false")
    title = ET.Element(_tag("title"))
    title.text = view.tooltip or f"{name}: {view.status}"
    group.insert(0, title)
    if shape is None:
        return
    x0, y0, x1, y1 = _bbox(shape)
    shape.set("class", "dnb-shape")
    shape.set("fill", style["fill"])
    shape.set("stroke", style["stroke"])
    shape.set("stroke-width", "3" if view.status == "failed" else "2")
    if not view.use_cache:
        shape.set("stroke-dasharray", "6,3")
    cx = (x0 + x1) / 2
    mid = (y0 + y1) / 2
    note = ""
    if not view.use_cache:
        note = "cache off: recomputes"
    elif view.rerun:
        note = "\u21bb re-runs: upstream cache off"
    shift = -6 if note else 0
    _text(group, cx, mid - 5 + shift, name, 13, style["text"], "600", "dnb-name")
    detail = view.detail or view.status
    _text(group, cx, mid + 11 + shift, detail, 11, style["accent"], "normal", "dnb-detail")
    if note:
        _text(group, cx, y1 - 8, note, 9.5, "#57606a", "normal", "dnb-note")
    if view.status == "failed":
        _text(group, x1 - 12, y0 + 15, "\u2716", 13, style["stroke"], "bold", "dnb-badge")
    elif view.status == "hit":
        _text(group, x1 - 12, y0 + 15, "\u2714", 12, style["stroke"], "bold", "dnb-badge")
    if view.status == "running" and view.progress is not None:
        width = max(0.0, (x1 - x0 - 16) * min(1.0, max(0.0, view.progress)))
        ET.SubElement(group, _tag("rect"), {
            "x": f"{x0 + 8:.1f}", "y": f"{y1 - 7:.1f}", "width": f"{width:.1f}",
            "height": "3", "rx": "1.5", "fill": style["stroke"], "class": "dnb-progress"})


def _legend(root: ET.Element, width: float, top: float,
            statuses: tuple[str, ...] = STATUSES) -> tuple[float, float]:
    """Swatches under the graph; returns the (width, height) they need."""
    group = ET.SubElement(root, _tag("g"), {"class": "dnb-legend"})
    entries = [(STYLES[s]["label"], STYLES[s]["fill"], STYLES[s]["stroke"], "")
               for s in statuses]
    if statuses == STATUSES:
        entries.append(("cache off", "#ffffff", "#57606a", "3,2"))
    x, y, right = 8.0, top + 16, 0.0
    for label, fill, stroke, dash in entries:
        step = 32 + 6.0 * len(label)
        if x + step > max(width, 640.0) and x > 8.0:
            x, y = 8.0, y + 18
        swatch = {"x": f"{x:.1f}", "y": f"{y - 9:.1f}", "width": "12", "height": "12",
                  "rx": "3", "fill": fill, "stroke": stroke, "stroke-width": "1.5"}
        if dash:
            swatch["stroke-dasharray"] = dash
        ET.SubElement(group, _tag("rect"), swatch)
        text = ET.SubElement(group, _tag("text"), {
            "x": f"{x + 17:.1f}", "y": f"{y + 1:.1f}", "font-family": _FONT,
            "font-size": "11", "fill": "#57606a"})
        text.text = label
        right = max(right, x + step)
        x += step
    return right, y + 8 - top


def draw_svg(nodes: list[str], edges: list[tuple[str, str]],
             views: Mapping[str, NodeView], legend: bool = True,
             title: str | None = None,
             routes: Mapping[tuple[str, str], str] | None = None,
             legend_statuses: Iterable[str] = STATUSES) -> str:
    """The whole picture: the laid-out DAG, each node drawn from its ``NodeView``."""
    if not nodes:
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="240" height="40">'
                f'<text x="8" y="24" font-family="{html.escape(_FONT)}" font-size="12" '
                'fill="#57606a">(empty pipeline)</text></svg>')
    raw = layout_svg(dag_to_dot(nodes, edges, routes=routes))
    root = ET.fromstring(raw)
    names = {f"n{i}": name for i, name in enumerate(nodes)}
    for group in root.iter(_tag("g")):
        node_id = group.get("id", "")
        if group.get("class") == "node" and node_id in names:
            name = names[node_id]
            _draw_node(group, name, views.get(name, NodeView()))
        elif group.get("class") == "edge":
            for child in list(group):
                if child.tag == _tag("title"):
                    group.remove(child)
    graph = root.find(_tag("g"))
    if graph is not None:
        for child in list(graph):
            if child.tag == _tag("polygon"):   # the page background
                graph.remove(child)
            elif child.tag == _tag("title"):
                child.text = title or "cache graph"
    _, _, width, height = (float(v) for v in root.get("viewBox", "0 0 0 0").split())
    style = ET.Element(_tag("style"))
    style.text = _CSS
    root.insert(0, style)
    if legend:
        needed, extra = _legend(root, width, height, tuple(legend_statuses))
        width = max(width, needed)
        height += extra
    root.set("viewBox", f"0 0 {width:.2f} {height:.2f}")
    root.set("width", f"{width:.0f}pt")
    root.set("height", f"{height:.0f}pt")
    root.set("class", "dnb-graph")
    return ET.tostring(root, encoding="unicode")


# -- the public picture: a pipeline or a recorded run, coloured by a report -------------
def graph_shape(graph: Any) -> tuple[list[str], list[tuple[str, str]],
                                dict[tuple[str, str], str], str, dict[str, bool]]:
    """(nodes, edges, routes, title, use_cache) of a Pipeline or a history RunEntry."""
    if isinstance(graph, RunEntry):
        return (list(graph.steps), list(graph.edges), {(a, b): c for a, b, c in graph.routes},
                graph.pipeline, {})
    routes = {(source, target): router.label for source, router in graph.routers.items()
              for target in router.targets}
    return (list(graph.dag.nodes), list(graph.dag.edges), routes, graph.name,
            {name: bool(step.use_cache) for name, step in graph.steps.items()})


_REPORT_FIELDS = {f.name for f in dataclasses.fields(StepReport)}


def step_reports(report: Any) -> dict[str, StepReport]:
    """Per-step reports of a RunReport, a RunEntry read whole, or a mapping of them."""
    if report is None:
        return {}
    if isinstance(report, RunEntry):
        return {name: StepReport(**{k: v for k, v in fields.items() if k in _REPORT_FIELDS})
                for name, fields in report.steps.items()}
    return {name: r for name, r in report.items() if isinstance(r, StepReport)}


def report_views(nodes: Iterable[str], reports: Mapping[str, StepReport],
                 use_cache: Mapping[str, bool] | None = None,
                 planned: bool = False) -> dict[str, NodeView]:
    """What each node shows for a finished run (or a plan): its status, detail, reason."""
    views: dict[str, NodeView] = {}
    for name in nodes:
        report = reports.get(name)
        status = report.status if report is not None and report.status in STYLES else "pending"
        reason = report.reason if report is not None else ""
        views[name] = NodeView(
            status=status,
            detail=node_detail(status, report or StepReport(name, status, ""), planned, {}),
            use_cache=(use_cache or {}).get(name, True),
            tooltip=f"{name}: {status}" + (f" \u2014 {reason}" if reason else ""))
    return views


def render_svg(graph: Any, report: Any = None, *, legend: bool = True) -> str:
    """The cache graph as an SVG document: ``graph`` is a ``Pipeline`` or a run of its
    history (``RunEntry`` read whole); nodes are coloured by ``report`` (a ``RunReport``,
    a ``RunEntry``, a mapping step -> ``StepReport``), by default the pipeline's last run
    or the entry's own steps (no run yet: pending)."""
    nodes, edges, routes, title, use_cache = graph_shape(graph)
    if report is None:
        report = graph if isinstance(graph, RunEntry) else getattr(graph, "last_run", None)
    planned = bool(getattr(report, "planned", False))
    views = report_views(nodes, step_reports(report), use_cache, planned)
    return draw_svg(nodes, edges, views, legend=legend, title=title, routes=routes)
