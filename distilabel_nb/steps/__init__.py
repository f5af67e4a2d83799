"""Steps: base classes, the ``@step`` decorator, loaders and column steps."""

from distilabel_nb.fields import RuntimeParameter, Secret
from distilabel_nb.steps.base import GeneratorStep, GlobalStep, Step, StepBase
from distilabel_nb.steps.columns import (
    CombineOutputs,
    ExpandColumns,
    GroupColumns,
    KeepColumns,
    MergeColumns,
)
from distilabel_nb.steps.decorator import step
from distilabel_nb.steps.generators import DataSampler, make_generator_step
from distilabel_nb.steps.hub import LoadDataFromDisk, LoadDataFromHub
from distilabel_nb.steps.loaders import LoadDataFromDicts, LoadDataFromFiles, LoadDataFromFileSystem
from distilabel_nb.steps.typing import GeneratorStepOutput, StepColumns, StepInput, StepOutput

__all__ = [
    "CombineOutputs",
    "DataSampler",
    "ExpandColumns",
    "GeneratorStep",
    "GeneratorStepOutput",
    "GlobalStep",
    "GroupColumns",
    "KeepColumns",
    "LoadDataFromDicts",
    "LoadDataFromDisk",
    "LoadDataFromFileSystem",
    "LoadDataFromFiles",
    "LoadDataFromHub",
    "MergeColumns",
    "RuntimeParameter",
    "Secret",
    "Step",
    "StepBase",
    "StepColumns",
    "StepInput",
    "StepOutput",
    "make_generator_step",
    "step",
]
