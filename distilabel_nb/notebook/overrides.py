"""Cache switches clicked in the graph, remembered per pipeline name and step name.

The cell's own ``use_cache=`` is the starting point; a click stores the opposite value
here, and the ``%%pipeline`` magic (and the widget's Run button) applies the registry to
the freshly built steps before every run, so a toggle survives re-running the cell until
it is clicked again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distilabel_nb.pipeline.pipeline import Pipeline

__all__ = ["apply_overrides", "clear_overrides", "overrides_for",
           "set_use_cache"]

_lock = threading.Lock()
_overrides: dict[tuple[str, str], bool] = {}
_declared: dict[tuple[str, str], bool] = {}


def apply_overrides(pipeline: Pipeline) -> dict[str, bool]:
    """Set ``use_cache`` on the pipeline's steps from the registry; returns what changed."""
    changed: dict[str, bool] = {}
    with _lock:
        for name, step in pipeline.steps.items():
            key = (pipeline.name, name)
            _declared[key] = bool(step.use_cache)
            if key in _overrides and _overrides[key] != step.use_cache:
                step.use_cache = _overrides[key]
                changed[name] = _overrides[key]
    return changed


def set_use_cache(pipeline: Pipeline, step: str, use_cache: bool) -> None:
    """Switch one step's cache for the next runs (the live step object included)."""
    key = (pipeline.name, step)
    with _lock:
        declared = _declared.setdefault(key, bool(pipeline.steps[step].use_cache))
        if use_cache == declared:
            _overrides.pop(key, None)   # back to what the cell says
        else:
            _overrides[key] = use_cache
    pipeline.steps[step].use_cache = use_cache


def overrides_for(pipeline_name: str) -> dict[str, bool]:
    with _lock:
        return {s: v for (p, s), v in _overrides.items() if p == pipeline_name}


def clear_overrides(pipeline_name: str | None = None) -> None:
    """Forget the clicks of one pipeline (or of all)."""
    with _lock:
        for registry in (_overrides, _declared):
            for key in [k for k in registry if pipeline_name is None or k[0] == pipeline_name]:
                del registry[key]
