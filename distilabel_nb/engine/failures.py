"""A batch whose step raised, as distilabel handles it: the run goes on.

The failed batch's rows continue downstream with the step's output columns set to None
(distilabel's ``impute_step_outputs``); they are tainted, so neither they nor anything
computed from them is cached, and the next run computes that batch again. A
``StepFailedWarning`` names the step, the batch and the error, with the traceback
(secrets taken out). ``run(fail_fast=True)`` raises ``StepFailedError`` instead.

Generators and global steps still stop the run when they raise, as in distilabel: there
is no batch of rows to carry on with.
"""

from __future__ import annotations

import dataclasses
import traceback
import warnings
from typing import Any

import pyarrow as pa

from distilabel_nb.fields import scrub

__all__ = ["BatchFailure", "StepFailedWarning", "continues_after_failure", "failed_batch",
           "impute_outputs"]


class StepFailedWarning(UserWarning):
    """A batch of a step raised; its rows went on with None outputs (not cached)."""


@dataclasses.dataclass(frozen=True)
class BatchFailure:
    """One failed batch of a run: which, what was raised, and where."""

    step: str
    batch: int
    rows: int
    error: str
    traceback: str


def continues_after_failure(step: Any, fail_fast: bool) -> bool:
    """Whether a failed batch of ``step`` lets the run go on (distilabel: every step but
    generators and global steps)."""
    return not fail_fast and getattr(step, "kind", "normal") == "normal"


def impute_outputs(step: Any, table: pa.Table) -> pa.Table:
    """The input rows with the step's output columns set to None (output mappings
    applied), as distilabel's ``impute_step_outputs``."""
    mapping = dict(getattr(step, "output_mappings", None) or {})
    # every output column, as distilabel's ``get_outputs().keys()`` (a list or a dict)
    outputs = [mapping.get(c, c) for c in list(getattr(step, "outputs", None) or [])]
    custom = getattr(step, "output_columns", None)
    names = ([mapping.get(c, c) for c in custom(table.column_names)] if callable(custom)
             else [*table.column_names, *outputs])
    columns = {}
    for name in dict.fromkeys(names):
        keep = name in table.column_names and name not in outputs
        columns[name] = table.column(name) if keep else pa.nulls(table.num_rows)
    return pa.table(columns) if columns else table.select([])


def failed_batch(step_name: str, index: int, error: BaseException, table: pa.Table,
                 secrets: set[str], step: Any) -> tuple[pa.Table, BatchFailure]:
    """The rows batch ``index`` passes on after ``error``, and its record; warns."""
    text = scrub("".join(traceback.format_exception(error)), secrets)
    message = scrub(f"{type(error).__name__}: {error}", secrets)
    failure = BatchFailure(step_name, index, table.num_rows, message, text)
    warnings.warn(
        f"step {step_name!r} failed on batch {index} ({table.num_rows} rows): {message}\n"
        f"The rows go on with the step's outputs set to None; they are not cached and the "
        f"next run computes this batch again (run(fail_fast=True) stops instead).\n{text}",
        StepFailedWarning, stacklevel=2)
    return impute_outputs(step, table), failure
