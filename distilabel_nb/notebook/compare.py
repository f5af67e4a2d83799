"""Two recorded runs compared, as the graph shows it: every node says what differed, in
the words of the miss reasons (``engine.reasons.compare_runs`` makes them; this module
only draws them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from distilabel_nb.cache.history import RunEntry
from distilabel_nb.drawing.render import NodeView

__all__ = ["compare_message", "compare_views", "ordered"]

_DETAIL_CHARS = 27


def ordered(first: RunEntry, second: RunEntry) -> tuple[RunEntry, RunEntry]:
    """The two runs, older first."""
    if (second.finished, second.run_id) < (first.finished, first.run_id):
        return second, first
    return first, second


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_CHARS else text[:_DETAIL_CHARS - 1] + "\u2026"


def compare_views(nodes: Iterable[str], changes: Mapping[str, str]) -> dict[str, NodeView]:
    """Per node: unchanged (grey), changed (orange) or new (blue), its reason as detail."""
    views: dict[str, NodeView] = {}
    for name in nodes:
        change = changes.get(name, "not in these runs")
        status = ("same" if change == "unchanged" else
                  "added" if change == "new step" else "changed")
        views[name] = NodeView(status=status, detail=_short(change),
                               tooltip=f"{name}: {change}")
    return views


def compare_message(old_label: str, new_label: str, changes: Mapping[str, str]) -> str:
    changed = [n for n, c in changes.items() if c not in ("unchanged", "removed")]
    removed = [n for n, c in changes.items() if c == "removed"]
    text = f"{old_label} \u2192 {new_label}: "
    text += (f"{len(changed)} step{'s' if len(changed) != 1 else ''} changed"
             if changed else "nothing changed")
    if removed:
        text += f", removed: {', '.join(removed)}"
    return text
