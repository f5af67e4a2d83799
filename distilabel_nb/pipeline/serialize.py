"""``Pipeline.dump()``: the pipeline as distilabel serializes it (its ``pipeline.yaml``).

The shape is distilabel 1.5's: ``{"distilabel": {"version"}, "pipeline": {"name",
"description", "steps": [{"step": {...fields, "type_info"}, "name"}], "connections":
[{"from", "to"}], "routing_batch_functions", "type_info"}, "requirements"}``. Secrets
never appear (fields marked secret, and any ``api_key``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from distilabel_nb.fields import Fielded
from distilabel_nb.version import __version__

if TYPE_CHECKING:
    from distilabel_nb.pipeline.pipeline import Pipeline

__all__ = ["dump_pipeline"]


def _type_info(obj: Any) -> dict[str, str]:
    return {"module": type(obj).__module__, "name": type(obj).__name__}


def _plain(value: Any) -> Any:
    """A value as YAML-safe data: nested steps and LLMs by their fields and type."""
    if isinstance(value, Fielded):
        return _dump_fields(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _dump_fields(obj: Fielded) -> dict[str, Any]:
    dumped = {name: _plain(getattr(obj, name, None)) for name, field in obj._fields.items()
              if not field.secret and name != "api_key"}
    dumped["type_info"] = _type_info(obj)
    return dumped


def _dump_step(step: Any) -> dict[str, Any]:
    """A step's entry: its own ``dump()`` when it has one (distilabel's steps), else its
    fields."""
    own = getattr(step, "dump", None)
    if callable(own) and not isinstance(step, Fielded):
        return dict(own())
    return _dump_fields(step)


def dump_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline as a dict shaped like distilabel's ``Pipeline.dump()``."""
    steps = [{"step": _dump_step(step), "name": name} for name, step in pipeline.steps.items()]
    connections = [{"from": name, "to": list(pipeline.dag.succ[name])}
                   for name in pipeline.steps]
    routing = [{"step": name, "routing_batch_function": router.label,
                "targets": list(router.targets), "type_info": _type_info(router)}
               for name, router in sorted(pipeline.routers.items())]
    return {
        "distilabel": {"version": __version__, "tool": "distilabel_nb"},
        "pipeline": {"name": pipeline.name, "description": pipeline.description,
                     "steps": steps, "connections": connections,
                     "routing_batch_functions": routing,
                     "type_info": _type_info(pipeline)},
        "requirements": [],
    }

