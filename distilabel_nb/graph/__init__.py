"""The graph layer's structure: the DAG of step names, its checks, its frozen description.

Steps (``distilabel_nb.steps``) and the routing DSL (``distilabel_nb.routing``) are the
rest of the graph layer; the engine plans and runs a ``PipelineGraph``.
"""

from distilabel_nb.graph.dag import DAG, CycleError
from distilabel_nb.graph.description import PipelineGraph
from distilabel_nb.graph.validate import PipelineValidationError, apply_parameters, validate

__all__ = ["DAG", "CycleError", "PipelineGraph", "PipelineValidationError",
           "apply_parameters", "validate"]
