"""Checks made before any step runs: structure, columns, runtime parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distilabel_nb.fields import Fielded
from distilabel_nb.graph.description import PipelineGraph
from distilabel_nb.steps.base import column_names
from distilabel_nb.steps.mappings import map_input_columns, map_output_columns

__all__ = ["PipelineValidationError", "apply_parameters", "validate"]


class PipelineValidationError(ValueError):
    """The pipeline cannot run as declared; nothing has run."""


def _output_columns(step: Any, available: list[str]) -> list[str]:
    """The columns a step passes on, mappings applied as distilabel applies them."""
    seen, aside = map_input_columns(available, step.input_mappings or {})
    custom = getattr(step, "output_columns", None)
    if callable(custom):
        columns = list(custom(seen))
    else:
        outputs = column_names(step.outputs)
        columns = seen + [c for c in outputs if c not in seen]
    return map_output_columns(columns, step.input_mappings or {}, step.output_mappings or {},
                              aside)


def validate(pipeline: PipelineGraph) -> dict[str, list[str]]:
    """Raise ``PipelineValidationError`` on a wrong pipeline; return columns per step."""
    if not pipeline.steps:
        msg = f"pipeline {pipeline.name!r} has no steps: create steps inside `with Pipeline(...)`"
        raise PipelineValidationError(msg)
    columns: dict[str, list[str]] = {}
    for name in pipeline.dag.topological():
        step = pipeline.steps[name]
        preds = pipeline.dag.pred[name]
        if step.kind == "generator":
            if preds:
                msg = (f"step {name!r} is a generator and cannot have predecessors "
                       f"(it is connected after {', '.join(map(repr, preds))})")
                raise PipelineValidationError(msg)
            columns[name] = _output_columns(step, [])
            continue
        if not preds:
            msg = (f"step {name!r} has no predecessor, so it would receive no data: connect a "
                   f"loader to it (e.g. `load >> {name}`)")
            raise PipelineValidationError(msg)
        available: list[str] = []
        for pred in preds:
            available += [c for c in columns[pred] if c not in available]
        inverse = step.input_mappings or {}
        for column in column_names(step.inputs):
            needed = inverse.get(column, column)
            if needed not in available:
                via = f" (mapped from {column!r})" if needed != column else ""
                msg = (
                    f"step {name!r} needs the column {needed!r}{via}, which no predecessor "
                    f"produces; available columns: {', '.join(available) or 'none'}. Connect "
                    "a step that produces it, or map it with input_mappings="
                    f"{{{column!r}: '<existing column>'}}"
                )
                raise PipelineValidationError(msg)
        columns[name] = _output_columns(step, available)
    return columns


def _set_fields(obj: Fielded, values: Mapping[str, Any], path: str) -> None:
    for key, value in values.items():
        if key not in obj._fields:
            known = ", ".join(sorted(obj._fields)) or "none"
            msg = f"{path} has no parameter {key!r}; its parameters are: {known}"
            raise PipelineValidationError(msg)
        current = getattr(obj, key)
        if isinstance(current, Fielded) and isinstance(value, Mapping):
            _set_fields(current, value, f"{path}.{key}")
        else:
            setattr(obj, key, value)


def apply_parameters(pipeline: PipelineGraph, parameters: Mapping[str, Any] | None) -> None:
    """Set ``run(parameters={step: {name: value}})`` on the steps, refusing unknown names."""
    for name, values in (parameters or {}).items():
        if name not in pipeline.steps:
            msg = (f"parameters were given for step {name!r}, which this pipeline does not "
                   f"have; its steps are: {', '.join(pipeline.steps)}")
            raise PipelineValidationError(msg)
        if not isinstance(values, Mapping):
            msg = f"parameters for step {name!r} must be a dict of name -> value"
            raise PipelineValidationError(msg)
        step = pipeline.steps[name]
        custom = getattr(step, "set_runtime_parameters", None)
        if callable(custom):  # a distilabel step: its own shape and checks
            custom(values)
        else:
            _set_fields(step, values, f"step {name!r}")
