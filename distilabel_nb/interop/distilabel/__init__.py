"""distilabel's own steps, tasks and LLMs on distilabel_nb's engine.

Inside ``with distilabel_nb.Pipeline(...)`` (when ``distilabel`` is imported), a bridge
stands in distilabel's ``_GlobalPipelineManager`` for the pipeline: distilabel's steps
join our graph as they would join theirs, each wrapped in a ``DistilabelStep`` that gives
the engine our step protocol (``adapter.py``), keyed by its class, code and every field
(``keys.py``), with a row-level cache in front of every Task's LLM (``rows.py``).

Importing this package imports distilabel: ``distilabel_nb`` itself never does.
"""

from distilabel_nb.interop.distilabel.adapter import DistilabelStep, adapt
from distilabel_nb.interop.distilabel.bridge import PipelineBridge, attach

__all__ = ["DistilabelStep", "PipelineBridge", "adapt", "attach"]
