"""``RayPipeline``: a ``Pipeline`` whose runs default to the Ray backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distilabel_nb.distiset import Distiset
from distilabel_nb.pipeline.pipeline import Pipeline

__all__ = ["RayPipeline"]


class RayPipeline(Pipeline):
    """A ``Pipeline`` whose runs default to the Ray backend, as distilabel's is.

    ``RayPipeline(name=..., ray_options={"address": "auto"})``; everything else, the cache
    included, is the same as ``Pipeline``.
    """

    def __init__(self, *args: Any, ray_options: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ray_options = dict(ray_options or {})

    def run(self, *args: Any, **kwargs: Any) -> Distiset:
        kwargs.setdefault("backend", "ray")
        if kwargs["backend"] == "ray" and kwargs.get("backend_options") is None:
            kwargs["backend_options"] = self.ray_options
        return super().run(*args, **kwargs)
