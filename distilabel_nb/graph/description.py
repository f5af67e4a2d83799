"""The frozen description of a pipeline's graph that the engine plans and runs.

``Pipeline.graph()`` builds one from what its ``with`` block declared; the engine reads
only this, never the ``Pipeline`` object, so the graph cannot change under a run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from distilabel_nb.graph.dag import DAG

if TYPE_CHECKING:
    from distilabel_nb.routing import RoutingBatchFunction
    from distilabel_nb.steps.base import StepBase

__all__ = ["PipelineGraph"]


@dataclasses.dataclass(frozen=True)
class PipelineGraph:
    """A pipeline's name, its steps by name, their connections and routing functions."""

    name: str
    steps: Mapping[str, StepBase]
    dag: DAG
    #: Routing batch functions, by the name of the step whose batches they route.
    routers: Mapping[str, RoutingBatchFunction]

    @classmethod
    def of(cls, name: str, steps: Mapping[str, StepBase], dag: DAG,
           routers: Mapping[str, RoutingBatchFunction]) -> PipelineGraph:
        """A snapshot: later ``add_step``/``connect`` calls do not change it."""
        return cls(name, MappingProxyType(dict(steps)), dag.copy(),
                   MappingProxyType(dict(routers)))
