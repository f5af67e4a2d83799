"""The object distilabel's steps take for their pipeline while ours is the current one.

distilabel's ``_Step.model_post_init`` asks ``_GlobalPipelineManager.get_pipeline()`` for
the pipeline of the ``with`` block and calls its ``_add_step``; ``connect``/``>>`` call
``_add_edge``; a routing batch function calls ``_add_routing_batch_function``; a step
without a name gets one from the names in ``pipeline.dag.G``. ``PipelineBridge`` answers
those calls by recording the steps, edges and routing functions in our pipeline (through
its public step protocol: ``add_step``, ``connect``, ``steps``, ``routers``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from distilabel_nb.interop.distilabel.adapter import adapt
from distilabel_nb.routing import as_routing_function

__all__ = ["PipelineBridge", "attach"]

_LOGGER = logging.getLogger("distilabel_nb.interop.distilabel")


class _Names:
    """What distilabel reads of ``pipeline.dag``: ``G``, the step names so far."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline

    @property
    def G(self) -> Any:
        return self._pipeline.steps

    def __iter__(self) -> Any:
        return iter(self._pipeline.steps)


class PipelineBridge:
    """Stands for our ``Pipeline`` in distilabel's global pipeline manager."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.dag = _Names(pipeline)
        #: distilabel logs unknown runtime parameters through ``pipeline._logger``.
        self._logger = _LOGGER

    @property
    def name(self) -> str:
        return str(self.pipeline.name)

    def _add_step(self, step: Any) -> None:
        self.pipeline.add_step(adapt(step))

    def _add_edge(self, from_step: str, to_step: str) -> None:
        steps = self.pipeline.steps
        self.pipeline.connect(steps[from_step], steps[to_step])
        router = self.pipeline.routers.get(from_step)
        if router is not None and to_step not in router.targets:
            router.targets.append(to_step)

    def _add_routing_batch_function(self, step_name: str,
                                    routing_batch_function: Any) -> None:
        """``step >> route``: our routing function over distilabel's, same targets."""
        router = as_routing_function(routing_batch_function)
        assert router is not None
        bound = router.bind(self.pipeline.steps[step_name])
        self.pipeline.add_router(step_name, bound)

    def __repr__(self) -> str:
        return f"PipelineBridge({self.pipeline!r})"


def attach(pipeline: Any) -> Callable[[], None]:
    """Make ``pipeline`` the one distilabel's steps join; returns the function that puts
    back the pipeline distilabel had before (called by ``Pipeline.__exit__``)."""
    from distilabel.pipeline.base import _GlobalPipelineManager

    previous = _GlobalPipelineManager.get_pipeline()
    _GlobalPipelineManager.set_pipeline(PipelineBridge(pipeline))

    def detach() -> None:
        _GlobalPipelineManager.set_pipeline(previous)

    return detach
