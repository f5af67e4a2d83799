"""How a ``Pipeline`` displays in a notebook: as its cache graph.

The pipeline layer knows nothing of notebooks: this module registers a mimebundle
formatter for ``Pipeline`` (by name, so nothing is imported until one is displayed) with
the running IPython. ``import distilabel_nb`` does it when a kernel is running, and so do
``%load_ext distilabel_nb`` and importing ``CacheGraph``.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["pipeline_bundle", "register_display"]


def pipeline_bundle(pipeline: Any) -> Any:
    """The display of ``pipeline``: the live ``CacheGraph`` widget plus its picture."""
    try:
        from distilabel_nb.notebook.widget import CacheGraph
    except ImportError:  # the notebook extra is not installed: IPython shows the repr
        return None
    return CacheGraph(pipeline)._repr_mimebundle_()


def register_display(ipython: Any = None) -> None:
    """Make ``ipython`` (default: the running shell, if any) display pipelines as graphs."""
    if ipython is None:
        if "IPython" not in sys.modules:
            return
        ipython = sys.modules["IPython"].get_ipython()
        if ipython is None:
            return
    formatter = getattr(getattr(ipython, "display_formatter", None), "mimebundle_formatter",
                        None)
    if formatter is not None:
        formatter.for_type_by_name("distilabel_nb.pipeline.pipeline", "Pipeline",
                                   pipeline_bundle)
