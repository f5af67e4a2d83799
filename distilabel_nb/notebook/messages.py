"""Messages from the graph's front end, checked and turned into calls on the graph:
``{type: "toggle", step}``, ``{type: "run"}``, ``{type: "plan"}``,
``{type: "show_run", run_id}``, ``{type: "compare", runs: [a, b]}``, ``{type: "history"}``.
A malformed message is rejected (the graph warns); an action that fails is shown in the
graph, never raised into the comm handler (the kernel must survive)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ACTIONS", "Graph", "dispatch"]

ACTIONS = ("run", "plan", "show_run", "compare", "history")


class Graph(Protocol):
    """What ``dispatch`` needs of a ``CacheGraph``."""

    mode: str
    selected: str
    pipeline: Any

    def toggle(self, step: str) -> bool: ...
    def run(self) -> Any: ...
    def plan(self) -> Any: ...
    def show_run(self, run_id: str) -> None: ...
    def compare(self, first: str, second: str) -> Any: ...
    def refresh_history(self) -> None: ...
    def reject(self, text: str) -> None: ...
    def fail(self, action: str, error: BaseException) -> None: ...


def _malformed(kind: str, content: dict[str, Any]) -> bool:
    runs = content.get("runs")
    pair = isinstance(runs, list) and len(runs) == 2 and all(isinstance(r, str) for r in runs)
    return (kind == "show_run" and not isinstance(content.get("run_id"), str)) or \
        (kind == "compare" and not pair)


def dispatch(graph: Graph, content: Any) -> None:
    kind = content.get("type") if isinstance(content, dict) else None
    if kind == "toggle":
        step = content.get("step")
        if not isinstance(step, str) or step not in graph.pipeline.steps:
            graph.reject(f"toggle of an unknown step {step!r}")
            return
        graph.toggle(step)
        if graph.selected != step:
            graph.selected = step
        return
    if kind not in ACTIONS:
        graph.reject(f"unknown message {content!r}"[:200])
        return
    if graph.mode == "running":
        graph.reject(f"{kind} ignored: the pipeline is already running")
        return
    if _malformed(kind, content):
        graph.reject(f"malformed {kind} message {content!r}"[:200])
        return
    try:
        if kind == "run":
            graph.run()
        elif kind == "plan":
            graph.plan()
        elif kind == "show_run":
            graph.show_run(content["run_id"])
        elif kind == "compare":
            graph.compare(*content["runs"])
        else:
            graph.refresh_history()
    except Exception as error:  # shown in the widget; the kernel must survive
        graph.fail(kind.replace("_", " "), error)
