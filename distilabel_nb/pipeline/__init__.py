"""The pipeline: a DAG of steps, validated before it runs."""

from distilabel_nb.backends import RayPipeline
from distilabel_nb.pipeline.dag import CycleError
from distilabel_nb.pipeline.pipeline import Pipeline
from distilabel_nb.pipeline.validate import PipelineValidationError
from distilabel_nb.routing import (
    RoutingBatchFunction,
    routing_batch_function,
    sample_n_steps,
)

__all__ = ["CycleError", "Pipeline", "PipelineValidationError", "RayPipeline",
           "RoutingBatchFunction", "routing_batch_function", "sample_n_steps"]
