"""The pipeline that steps created right now join (the innermost ``with Pipeline``)."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distilabel_nb.pipeline.pipeline import Pipeline

__all__ = ["current_pipeline", "reset_current_pipeline", "set_current_pipeline"]

_current: contextvars.ContextVar[Pipeline | None] = contextvars.ContextVar(
    "distilabel_nb_pipeline", default=None
)


def current_pipeline() -> Pipeline | None:
    return _current.get()


def set_current_pipeline(pipeline: Pipeline | None) -> contextvars.Token[Pipeline | None]:
    return _current.set(pipeline)


def reset_current_pipeline(token: contextvars.Token[Pipeline | None]) -> None:
    _current.reset(token)
