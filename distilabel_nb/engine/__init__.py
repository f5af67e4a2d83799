"""The engine: plan, executor, events, reports."""

from distilabel_nb.engine.events import RunEvent
from distilabel_nb.engine.executor import StepFailedError
from distilabel_nb.engine.failures import StepFailedWarning
from distilabel_nb.engine.report import RunReport, StepReport

__all__ = ["RunEvent", "RunReport", "StepFailedError", "StepFailedWarning",
           "StepReport"]
