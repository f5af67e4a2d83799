"""Type names of distilabel's step API, for hints in user code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["GeneratorStepOutput", "StepColumns", "StepInput", "StepOutput"]

#: One batch of rows, as a step's ``process`` receives it.
StepInput = list[dict[str, Any]]
#: What ``process`` yields: lists of rows.
StepOutput = Iterator[list[dict[str, Any]]]
#: What a generator's ``process`` yields: rows and whether this batch is the last.
GeneratorStepOutput = Iterator[tuple[list[dict[str, Any]], bool]]
#: ``inputs``/``outputs``: a list of column names, or a dict name -> required.
StepColumns = list[str] | dict[str, bool]
