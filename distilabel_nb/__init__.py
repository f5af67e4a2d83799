"""distilabel_nb: incremental, cache-first LLM data-generation pipelines for notebooks.

``import distilabel_nb`` never imports Jupyter, ipywidgets or ray: the notebook parts
load on ``%load_ext distilabel_nb`` or on first use of ``CacheGraph``.
"""

from __future__ import annotations

from typing import Any

from distilabel_nb.cache.layout import CACHE_VERSION, CacheWarning
from distilabel_nb.distiset import Distiset
from distilabel_nb.engine.events import RunEvent
from distilabel_nb.engine.executor import StepFailedError
from distilabel_nb.engine.failures import StepFailedWarning
from distilabel_nb.engine.report import RunReport, StepReport
from distilabel_nb.fields import RuntimeParameter, Secret
from distilabel_nb.halts import BudgetExceededError, OfflineBatchPendingError
from distilabel_nb.pipeline import CycleError, Pipeline, PipelineValidationError, RayPipeline

__version__ = "0.1.0"

__all__ = [
    "CACHE_VERSION",
    "BudgetExceededError",
    "CacheGraph",
    "CacheWarning",
    "CycleError",
    "Distiset",
    "OfflineBatchPendingError",
    "Pipeline",
    "PipelineValidationError",
    "RayPipeline",
    "RunEvent",
    "RunReport",
    "RuntimeParameter",
    "Secret",
    "StepFailedError",
    "StepFailedWarning",
    "StepReport",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    if name == "CacheGraph":
        from distilabel_nb.notebook.widget import CacheGraph

        return CacheGraph
    msg = f"module 'distilabel_nb' has no attribute {name!r}"
    raise AttributeError(msg)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext distilabel_nb``: register the ``%%pipeline`` magics."""
    from distilabel_nb.notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from distilabel_nb.notebook.magics import unload_ipython_extension as unload

    unload(ipython)
