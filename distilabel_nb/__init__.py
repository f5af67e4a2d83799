"""distilabel_nb: incremental, cache-first LLM data-generation pipelines for notebooks.

The names below load on first use, so ``import distilabel_nb.X`` imports only what X
needs; ``import distilabel_nb`` never imports Jupyter, ipywidgets or ray: the notebook
parts load on ``%load_ext distilabel_nb`` or on first use of ``CacheGraph``. In a running
IPython kernel, pipelines display as their cache graph.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from distilabel_nb.notebook.display import register_display
from distilabel_nb.version import __version__ as __version__

if TYPE_CHECKING:
    from distilabel_nb.cache.layout import CACHE_VERSION, CacheWarning
    from distilabel_nb.distiset import Distiset
    from distilabel_nb.engine.events import RunEvent
    from distilabel_nb.engine.failures import StepFailedWarning
    from distilabel_nb.engine.outcome import StepFailedError
    from distilabel_nb.engine.report import RunReport, StepReport
    from distilabel_nb.fields import RuntimeParameter, Secret
    from distilabel_nb.graph.dag import CycleError
    from distilabel_nb.graph.validate import PipelineValidationError
    from distilabel_nb.halts import BudgetExceededError, OfflineBatchPendingError
    from distilabel_nb.notebook.widget import CacheGraph
    from distilabel_nb.pipeline.pipeline import Pipeline
    from distilabel_nb.pipeline.ray_pipeline import RayPipeline


_EXPORTS = {
    "BudgetExceededError": "distilabel_nb.halts",
    "CACHE_VERSION": "distilabel_nb.cache.layout",
    "CacheGraph": "distilabel_nb.notebook.widget",
    "CacheWarning": "distilabel_nb.cache.layout",
    "CycleError": "distilabel_nb.graph.dag",
    "Distiset": "distilabel_nb.distiset",
    "OfflineBatchPendingError": "distilabel_nb.halts",
    "Pipeline": "distilabel_nb.pipeline.pipeline",
    "PipelineValidationError": "distilabel_nb.graph.validate",
    "RayPipeline": "distilabel_nb.pipeline.ray_pipeline",
    "RunEvent": "distilabel_nb.engine.events",
    "RunReport": "distilabel_nb.engine.report",
    "RuntimeParameter": "distilabel_nb.fields",
    "Secret": "distilabel_nb.fields",
    "StepFailedError": "distilabel_nb.engine.outcome",
    "StepFailedWarning": "distilabel_nb.engine.failures",
    "StepReport": "distilabel_nb.engine.report",
}

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
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'distilabel_nb' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext distilabel_nb``: register the ``%%pipeline`` magics."""
    from distilabel_nb.notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from distilabel_nb.notebook.magics import unload_ipython_extension as unload

    unload(ipython)


register_display()
