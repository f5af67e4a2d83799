"""``Pipeline.dump()``: the pipeline as distilabel serializes it (its ``pipeline.yaml``);
``Pipeline.from_dict``/``from_yaml`` and ``save`` as distilabel's, for pipelines of our
steps, of distilabel's (rebuilt by distilabel's own loader) or both.

The shape is distilabel 1.5's: ``{"distilabel": {"version"}, "pipeline": {"name",
"description", "steps": [{"step": {...fields, "type_info"}, "name"}], "connections":
[{"from", "to"}], "routing_batch_functions", "type_info"}, "requirements"}``. Secrets
never appear (fields marked secret, and any ``api_key``).
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import pathlib
from typing import TYPE_CHECKING, Any

from distilabel_nb.fields import Fielded
from distilabel_nb.routing import RoutingBatchFunction, as_routing_function
from distilabel_nb.version import __version__

if TYPE_CHECKING:
    from distilabel_nb.pipeline.pipeline import Pipeline

__all__ = ["dump_pipeline", "dump_yaml", "load_pipeline", "read_pipeline_file",
           "save_pipeline"]


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
                "targets": list(router.targets),
                "type_info": dict(getattr(router, "factory", None) or _type_info(router))}
               for name, router in sorted(pipeline.routers.items())]
    return {
        "distilabel": {"version": __version__, "tool": "distilabel_nb"},
        "pipeline": {"name": pipeline.name, "description": pipeline.description,
                     "steps": steps, "connections": connections,
                     "routing_batch_functions": routing,
                     "type_info": _type_info(pipeline)},
        "requirements": [],
    }


def dump_yaml(data: dict[str, Any]) -> str:
    import yaml

    return str(yaml.dump(data, default_flow_style=False, sort_keys=False))


# -- loading: Pipeline.from_dict / from_yaml ---------------------------------------------------

def _import(type_info: dict[str, Any]) -> Any:
    module = importlib.import_module(type_info["module"])
    return getattr(module, type_info["name"])


def _is_distilabel(cls: Any) -> bool:
    return isinstance(cls, type) and any(
        klass.__module__.split(".")[0] == "distilabel" for klass in cls.__mro__)


def _revive(value: Any) -> Any:
    """Dumped data back to objects: dicts with ``type_info`` become their class."""
    if isinstance(value, list):
        return [_revive(v) for v in value]
    if not isinstance(value, dict):
        return value
    value = {k: _revive(v) for k, v in value.items()}
    if "type_info" not in value:
        return value
    cls = _import(value.pop("type_info"))
    known = getattr(cls, "_fields", None) or getattr(cls, "model_fields", {})
    return cls(**{k: v for k, v in value.items() if k in known})


def _load_step(data: dict[str, Any]) -> Any:
    """One step of a dump, created in the current pipeline (ours or distilabel's)."""
    cls = _import(data["type_info"])
    if _is_distilabel(cls):
        from distilabel.utils.serialization import load_with_type_info

        return load_with_type_info(copy.deepcopy(data))
    return _revive(copy.deepcopy(data))


def _router(entry: dict[str, Any]) -> RoutingBatchFunction:
    """A routing function of a dump, made again by the factory it names (ours or
    distilabel's ``sample_n_steps``); a function of the user's own is not in the file."""
    info = entry.get("type_info") or {}
    route = None
    if "kwargs" in info:
        route = as_routing_function(_import(info)(**info["kwargs"]))
    if route is None:
        msg = (f"cannot rebuild the routing function of step {entry.get('step')!r} from the "
               "dump: only a factory such as sample_n_steps(n) is described there, a "
               "function of your own is not; rebuild the pipeline in code instead")
        raise ValueError(msg)
    return route


def load_pipeline(cls: type[Pipeline], data: dict[str, Any]) -> Pipeline:
    """A pipeline from ``Pipeline.dump()``'s shape (ours or distilabel's own)."""
    body = data["pipeline"]
    entries = [entry["step"] for entry in body["steps"]]
    if any(_is_distilabel(_import(step["type_info"])) for step in entries):
        import distilabel_nb.interop.distilabel  # noqa: F401  (imports distilabel first)
    with cls(name=body.get("name"), description=body.get("description")) as pipeline:
        for step in entries:
            _load_step(step)
    routers = {entry["step"]: _router(entry)
               for entry in body.get("routing_batch_functions") or []}
    for name, router in routers.items():
        pipeline.add_router(name, router.bind(pipeline.steps[name]))
    for connection in body.get("connections") or []:
        source = pipeline.steps[connection["from"]]
        for target in connection["to"]:
            pipeline.connect(source, pipeline.steps[target])
            if connection["from"] in routers:
                pipeline.routers[connection["from"]].targets.append(target)
    return pipeline


def save_pipeline(pipeline: Pipeline, path: str | os.PathLike[str] | None,
                  format: str = "json") -> pathlib.Path:
    """Write ``pipeline.dump()`` as JSON or YAML (distilabel's ``save``)."""
    if format not in ("json", "yaml"):
        msg = f"format must be 'json' or 'yaml', not {format!r}"
        raise ValueError(msg)
    target = pathlib.Path(path if path is not None else f"{pipeline.name}.{format}")
    data = pipeline.dump()
    text = dump_yaml(data) if format == "yaml" else json.dumps(data, indent=2)
    target.write_text(text, encoding="utf-8")
    return target


def read_pipeline_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A pipeline's dump from a ``.json`` or ``.yaml`` file."""
    text = pathlib.Path(path).read_text(encoding="utf-8")
    if str(path).endswith(".json"):
        return dict(json.loads(text))
    import yaml

    return dict(yaml.safe_load(text))
