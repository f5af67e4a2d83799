"""The ``Pipeline`` facade: steps join it in a ``with`` block; it plans and runs through
the engine."""

from distilabel_nb.graph.dag import CycleError
from distilabel_nb.graph.validate import PipelineValidationError
from distilabel_nb.pipeline.pipeline import Pipeline
from distilabel_nb.pipeline.ray_pipeline import RayPipeline
from distilabel_nb.routing import (
    RoutingBatchFunction,
    routing_batch_function,
    sample_n_steps,
)

__all__ = ["CycleError", "Pipeline", "PipelineValidationError", "RayPipeline",
           "RoutingBatchFunction", "routing_batch_function", "sample_n_steps"]
