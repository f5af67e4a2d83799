"""Steps: the nodes of a pipeline.

``Step`` processes batches of rows from its predecessors; ``GeneratorStep`` produces
batches from nothing; ``GlobalStep`` receives all its input at once. A subclass declares
parameters as annotated class attributes, lists its columns in ``inputs``/``outputs`` and
implements ``process`` (rows as dicts) or ``process_arrow`` (pyarrow Tables, no dicts).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from distilabel_nb.cache.source import class_code_fingerprints
from distilabel_nb.fields import Fielded
from distilabel_nb.routing import RoutingBatchFunction, as_routing_function
from distilabel_nb.steps.mappings import map_inputs, map_outputs
from distilabel_nb.steps.pipeline_like import PipelineLike, current_pipeline
from distilabel_nb.tables import rename_columns, rows_to_table

if TYPE_CHECKING:
    from distilabel_nb.steps.context import StepContext

__all__ = ["GeneratorStep", "GlobalStep", "Step", "StepBase", "column_names"]

#: Fields that never enter a step's signature: they do not change what it computes.
NOT_IN_SIGNATURE = frozenset(
    {"name", "use_cache", "input_batch_size", "batch_size", "resources", "max_concurrency"}
)


def column_names(columns: Any) -> list[str]:
    """The names of ``inputs``/``outputs``, given as a list or a dict name -> required."""
    if isinstance(columns, dict):
        return [name for name, required in columns.items() if required]
    return list(columns or [])


class StepBase(Fielded):
    """What every kind of step shares: a name, a pipeline, connections, a signature."""

    kind: ClassVar[str] = "normal"
    #: Fields described by the subclass itself in ``signature_fields`` (e.g. large data).
    signature_skip: ClassVar[frozenset[str]] = frozenset()
    #: Row-wise steps map each input row to one output row independently of the others.
    row_wise: ClassVar[bool] = False
    #: Steps that mostly wait (LLM calls, HTTP) run in a thread of their own; the others
    #: take turns, a batch at a time, in the thread that called ``run()``.
    io_bound: ClassVar[bool] = False

    name: str | None = None
    use_cache: bool = True
    input_mappings: dict[str, str] = {}
    output_mappings: dict[str, str] = {}
    #: Where a cluster backend runs the step, e.g. {"replicas": 2, "num_cpus": 1}.
    resources: Any = None  # a dict, or distilabel's StepResources

    def __init__(self, **kwargs: Any) -> None:
        # ``pipeline=`` as distilabel's steps take it, else the innermost `with Pipeline`.
        pipeline = kwargs.pop("pipeline", None) or current_pipeline()
        super().__init__(**kwargs)
        self.pipeline: PipelineLike | None = None
        #: Set by the executor while the step runs (cache location, counters).
        self.context: StepContext | None = None
        if pipeline is not None:
            pipeline.add_step(self)

    # -- columns ---------------------------------------------------------------------
    @property
    def inputs(self) -> Any:
        return []

    @property
    def outputs(self) -> Any:
        return []

    # -- lifecycle -------------------------------------------------------------------
    def load(self) -> None:
        """Called once before the first batch (open clients, load resources)."""

    def unload(self) -> None:
        """Called once after the last batch."""

    # -- connections -----------------------------------------------------------------
    def connect(self, *others: StepBase) -> None:
        if self.pipeline is None:
            msg = (
                f"step {self.name or type(self).__name__!r} belongs to no pipeline: create it "
                "inside `with Pipeline(name=...):`"
            )
            raise RuntimeError(msg)
        for other in others:
            self.pipeline.connect(self, other)

    def __rshift__(self, other: StepBase | list[StepBase] | RoutingBatchFunction) -> Any:
        route = as_routing_function(other)  # step >> route >> [a, b] (ours or distilabel's)
        if route is not None:
            return route.bind(self)
        targets = other if isinstance(other, list) else [other]
        self.connect(*targets)
        return other

    def __rrshift__(self, other: list[StepBase]) -> StepBase:
        for source in other:
            source.connect(self)
        return self

    # -- signature -------------------------------------------------------------------
    def code_fingerprints(self) -> dict[str, str]:
        """Fingerprints of the user code this step runs, by function name."""
        return class_code_fingerprints(type(self), stop=(Step, GeneratorStep, GlobalStep))

    def signature_fields(self) -> dict[str, Any]:
        """What the step's signature covers, by readable name (secrets left out)."""
        from distilabel_nb.cache.describe import describe_fields

        description: dict[str, Any] = {
            "class": type(self).__qualname__,
            "kind": self.kind,
        }
        description.update(describe_fields(self, skip=NOT_IN_SIGNATURE | self.signature_skip))
        code = self.code_fingerprints()
        if code:
            description["code"] = code
        return description

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Step(StepBase):
    """A step that processes batches of rows from its predecessors."""

    input_batch_size: int = 50

    def process(self, *inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """Yield lists of output rows for the input rows (one list per predecessor)."""
        msg = f"{type(self).__name__} must implement process() or process_arrow()"
        raise NotImplementedError(msg)

    def has_arrow_path(self) -> bool:
        return callable(getattr(self, "process_arrow", None))

    def run_batch(self, tables: list[pa.Table]) -> pa.Table:
        """Run the step on one batch: mappings in, process, mappings out (as distilabel's
        ``process_applying_mappings``)."""
        tables, aside = map_inputs(tables, self.input_mappings)
        if self.has_arrow_path():
            output = self.process_arrow(*tables)  # type: ignore[attr-defined]
        else:
            rows = [table.to_pylist() for table in tables]
            if len(tables) == 1:
                output = _to_table_reusing(tables[0], rows[0], self.process)
            else:
                output = rows_to_table(_collect(self.process(*rows)))
        return map_outputs(output, self.input_mappings, self.output_mappings, aside)


class GlobalStep(Step):
    """A step that receives all of its input in one batch."""

    kind: ClassVar[str] = "global"


class GeneratorStep(StepBase):
    """A step that produces batches from nothing (loaders, generators)."""

    kind: ClassVar[str] = "generator"
    batch_size: int = 50

    def process(self, offset: int = 0) -> Iterator[Any]:
        """Yield lists of rows, or ``(rows, is_last)`` tuples as distilabel does."""
        msg = f"{type(self).__name__} must implement process()"
        raise NotImplementedError(msg)

    def generate(self) -> Iterator[pa.Table]:
        """The step's output batches as Tables, output mappings applied."""
        arrow = getattr(self, "process_arrow", None)
        if callable(arrow):
            for table in arrow():
                yield rename_columns(table, self.output_mappings)
            return
        params = inspect.signature(self.process).parameters
        produced = self.process(offset=0) if "offset" in params else self.process()
        for item in produced:
            rows = item[0] if isinstance(item, tuple) else item
            yield rename_columns(rows_to_table(list(rows)), self.output_mappings)


def _immutable_columns(table: pa.Table) -> list[str]:
    """Columns whose Python values are immutable (so identity means unchanged)."""
    return [f.name for f in table.schema
            if pa.types.is_primitive(f.type) or pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type)
            or pa.types.is_null(f.type)]


def _to_table_reusing(source: pa.Table, rows: list[dict[str, Any]],
                      process: Any) -> pa.Table:
    """Run ``process`` on ``rows`` and build the output table, reusing the source's Arrow
    columns that ``process`` left untouched instead of converting them back."""
    candidates = _immutable_columns(source)
    before = {name: [row[name] for row in rows] for name in candidates}
    output = _collect(process(rows))
    if len(output) != len(rows) or not output:
        return rows_to_table(output)
    reused = {}
    for name, values in before.items():
        if all(row.get(name, _MISSING) is value for row, value in zip(output, values,
                                                                       strict=True)):
            reused[name] = source.column(name)
    if not reused:
        return rows_to_table(output)
    rest = rows_to_table([{k: v for k, v in row.items() if k not in reused} for row in output])
    names = list(output[0]) + [n for n in rest.column_names if n not in output[0]]
    columns = {**reused, **{n: rest.column(n) for n in rest.column_names}}
    return pa.table({n: columns[n] for n in names if n in columns})


_MISSING = object()


def _collect(batches: Iterable[Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for batch in batches:
        if isinstance(batch, dict):
            rows.append(batch)
        else:
            rows.extend(batch)
    return rows
