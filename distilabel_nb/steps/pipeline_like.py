"""What a step knows of the pipeline it joins: a protocol, and the innermost ``with``.

Steps and routing functions never import the ``Pipeline`` class: a pipeline entering its
``with`` block sets itself as current here, and a step created inside it calls
``add_step``; ``a >> b`` calls ``connect``; ``a >> route >> [b, c]`` calls ``add_router``.
"""

from __future__ import annotations

import contextvars
from typing import Any, Protocol

__all__ = ["PipelineLike", "current_pipeline", "reset_current_pipeline",
           "set_current_pipeline"]


class PipelineLike(Protocol):
    """The pipeline side of building a graph, as steps and routing functions see it."""

    @property
    def name(self) -> str: ...

    def add_step(self, step: Any) -> None: ...

    def connect(self, source: Any, target: Any) -> None: ...

    def add_router(self, source: str, router: Any) -> None: ...


_current: contextvars.ContextVar[PipelineLike | None] = contextvars.ContextVar(
    "distilabel_nb_pipeline", default=None
)


def current_pipeline() -> PipelineLike | None:
    return _current.get()


def set_current_pipeline(pipeline: PipelineLike | None) -> contextvars.Token[PipelineLike | None]:
    return _current.set(pipeline)


def reset_current_pipeline(token: contextvars.Token[PipelineLike | None]) -> None:
    _current.reset(token)
