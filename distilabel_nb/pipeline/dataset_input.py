"""``pipeline.run(dataset=...)``: data given at run time feeds the root steps, as in
distilabel, through a generator step made by ``make_generator_step`` (keyed by the data's
content, so a changed dataset of the same length is a miss, where distilabel 1.5.3 gives
a stale full hit)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from distilabel_nb.graph.validate import PipelineValidationError
from distilabel_nb.steps.pipeline_like import reset_current_pipeline, set_current_pipeline

if TYPE_CHECKING:
    from distilabel_nb.pipeline.pipeline import Pipeline

__all__ = ["attach_dataset"]

#: The attribute of the pipeline naming the step ``run(dataset=...)`` added.
_ATTRIBUTE = "_dataset_step"


def attach_dataset(pipeline: Pipeline, dataset: Any, batch_size: int = 50) -> str:
    """Put ``dataset`` at the root of ``pipeline``: the first time as a new generator
    step connected to every step without a predecessor, later by replacing that step's
    data. Returns the step's name."""
    from distilabel_nb.steps.generators import make_generator_step

    previous: str | None = getattr(pipeline, _ATTRIBUTE, None)
    generators = [name for name, step in pipeline.steps.items()
                  if step.kind == "generator" and name != previous]
    if generators:
        msg = (f"pipeline {pipeline.name!r} already has a generator step {generators[0]!r}; "
               "give the data either to it or to run(dataset=...), not both")
        raise PipelineValidationError(msg)
    token = set_current_pipeline(None)  # made here, the step joins no pipeline by itself
    try:
        step = make_generator_step(dataset, batch_size=batch_size)
    finally:
        reset_current_pipeline(token)
    if previous is not None:
        step.name = previous
        step.pipeline = pipeline
        pipeline.steps[previous] = step
        return previous
    roots = [name for name in pipeline.dag.nodes if not pipeline.dag.pred[name]]
    pipeline.add_step(step)
    name = step.name or ""
    for root in roots:
        pipeline.dag.connect(name, root)
    setattr(pipeline, _ATTRIBUTE, name)
    return name
