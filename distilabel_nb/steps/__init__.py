"""Steps: base classes, the ``@step`` decorator, loaders and column steps."""

from distilabel_nb.fields import RuntimeParameter, Secret
from distilabel_nb.steps.base import GeneratorStep, GlobalStep, Step, StepBase
from distilabel_nb.steps.columns import CombineOutputs, ExpandColumns, KeepColumns
from distilabel_nb.steps.decorator import step
from distilabel_nb.steps.loaders import LoadDataFromDicts, LoadDataFromFiles
from distilabel_nb.steps.typing import GeneratorStepOutput, StepColumns, StepInput, StepOutput

__all__ = [
    "CombineOutputs",
    "ExpandColumns",
    "GeneratorStep",
    "GeneratorStepOutput",
    "GlobalStep",
    "KeepColumns",
    "LoadDataFromDicts",
    "LoadDataFromFiles",
    "RuntimeParameter",
    "Secret",
    "Step",
    "StepBase",
    "StepColumns",
    "StepInput",
    "StepOutput",
    "step",
]
