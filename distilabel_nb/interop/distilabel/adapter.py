"""``DistilabelStep``: our step protocol for any distilabel step.

The engine sees what it sees of our own steps: ``name``, ``kind``, ``use_cache``,
``inputs``/``outputs``, the batch size, ``signature_fields()``, ``load()``/``unload()``,
``generate()`` (generators) or ``run_batch(tables)``, ``failed_rows(table)``. The work is
distilabel's own: batches go through its ``process_applying_mappings`` (input and output
mappings as distilabel applies them, ``@step`` runtime parameters as keyword arguments),
so its tasks write ``distilabel_metadata``, ``raw_input_*``/``raw_output_*`` and
``model_name`` exactly as under distilabel's pipeline. Runtime parameters arrive in
distilabel's ``run(parameters=...)`` shape and go to the step's
``set_runtime_parameters``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from distilabel_nb.fields import scrub
from distilabel_nb.interop.distilabel.keys import (
    describe_step,
    is_secret_name,
    secrets_of,
    user_code,
)
from distilabel_nb.tables import concat, empty_table, rename_columns, rows_to_table

__all__ = ["FAILED_ROWS", "DistilabelLoader", "DistilabelStep", "DistilabelTask", "adapt"]

#: Schema metadata of an output batch: how many of its rows failed (not committed).
FAILED_ROWS = b"distilabel_nb.failed_rows"
METADATA = "distilabel_metadata"


def adapt(step: Any) -> DistilabelStep:
    """The engine's view of distilabel step ``step``: a task gets the plan's cost
    estimate, a loader of in-memory rows gives the plan its rows."""
    if getattr(step, "llm", None) is not None and not step.is_generator:
        return DistilabelTask(step)
    if step.is_generator and isinstance(getattr(step, "data", None), list):
        return DistilabelLoader(step)
    return DistilabelStep(step)


class DistilabelStep:
    """A distilabel step (``Step``, ``GeneratorStep``, ``GlobalStep``, ``Task``, a
    ``@step`` function) as a node of our pipeline."""

    row_wise = False

    def __init__(self, step: Any) -> None:
        #: distilabel's own step: what the user created, connects and configures.
        self.wrapped = step
        self.name: str | None = step.name
        self.pipeline: Any = None
        #: Set by the executor while the step runs (cache location, counters).
        self.context: Any = None
        # distilabel applies its mappings itself (``process_applying_mappings``); the
        # columns below are already the mapped ones.
        self.input_mappings: dict[str, str] = {}
        self.output_mappings: dict[str, str] = {}
        self._proxy: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Shipped to another process (Ray): distilabel's step without its pipeline (the
        bridge holds ours, with its locks and cache), and no open row cache."""
        state = self.__dict__.copy()
        state["wrapped"] = self.wrapped.model_copy(update={"pipeline": None})
        state["_proxy"] = None
        return state

    # -- what the engine reads ---------------------------------------------------------
    @property
    def kind(self) -> str:
        if self.wrapped.is_generator:
            return "generator"
        return "global" if self.wrapped.is_global else "normal"

    @property
    def is_task(self) -> bool:
        return getattr(self.wrapped, "llm", None) is not None

    @property
    def io_bound(self) -> bool:
        """LLM tasks wait on the network: they get a thread of their own."""
        return self.is_task

    @property
    def use_cache(self) -> bool:
        return bool(self.wrapped.use_cache)

    @use_cache.setter
    def use_cache(self, value: bool) -> None:
        self.wrapped.use_cache = value

    @property
    def input_batch_size(self) -> int:
        return int(getattr(self.wrapped, "input_batch_size", None) or 50)

    @property
    def batch_size(self) -> int:
        return int(getattr(self.wrapped, "batch_size", None) or 50)

    @property
    def resources(self) -> dict[str, Any]:
        """distilabel's ``StepResources`` in the shape our backends take."""
        given = getattr(self.wrapped, "resources", None)
        if given is None:
            return {}
        found = {"replicas": given.replicas, "num_cpus": given.cpus, "num_gpus": given.gpus,
                 "memory": given.memory, "resources": given.resources}
        return {k: v for k, v in found.items() if v is not None}

    @property
    def inputs(self) -> dict[str, bool]:
        """Required and optional input columns, under the names the data has them."""
        mappings = self.wrapped.input_mappings
        return {mappings.get(c, c): required
                for c, required in self.wrapped.get_inputs().items()}

    @property
    def outputs(self) -> list[str]:
        return [self._output_name(c) for c in self.wrapped.get_outputs()]

    def _output_name(self, column: str) -> str:
        return self.wrapped.output_mappings.get(column) or column

    def output_columns(self, available: list[str]) -> list[str]:
        """Columns after this step, for the pipeline's checks before a run."""
        new = list(self.outputs)
        if self.is_task:
            new += [c for c in ("model_name", METADATA) if c not in new]
        return [c for c in available if c not in new] + new

    def total_rows(self) -> int | None:
        data = getattr(self.wrapped, "data", None)
        return len(data) if self.kind == "generator" and isinstance(data, list) else None

    # -- key ---------------------------------------------------------------------------
    def signature_fields(self) -> dict[str, Any]:
        """What the key covers: class, distilabel's version, every field, the user code."""
        description = describe_step(self.wrapped)
        description["kind"] = self.kind
        return description

    def code_fingerprints(self) -> dict[str, str]:
        return user_code(type(self.wrapped))

    def secret_values(self) -> set[str]:
        """The step's secrets (API keys, tokens): scrubbed from errors and warnings."""
        return secrets_of(self.wrapped)

    def dump(self) -> dict[str, Any]:
        """distilabel's own dump of the step (its entry in ``pipeline.yaml``), secrets
        left out."""
        return _without_secrets(self.wrapped.dump())

    def set_runtime_parameters(self, values: dict[str, Any]) -> None:
        """``run(parameters={name: {...}})`` in distilabel's shape (nested for the LLM)."""
        self.wrapped.set_runtime_parameters(dict(values))

    # -- lifecycle ---------------------------------------------------------------------
    def load(self) -> None:
        self.wrapped.load()
        if self.is_task and self.context is not None:
            from distilabel_nb.cache.rowcache import RowCache
            from distilabel_nb.interop.distilabel.rows import RowCachedLLM

            reads = self.use_cache and bool(getattr(self.context, "use_cache", True))
            cache = RowCache(self.context.cache_dir / "rows")
            self._proxy = RowCachedLLM(self.wrapped.llm, cache, self.context, reads)
            # Not through pydantic's validating setattr: the proxy is no LLM subclass.
            self.wrapped.__dict__["llm"] = self._proxy

    def unload(self) -> None:
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            self.wrapped.__dict__["llm"] = proxy._llm
            proxy._cache.close()
        self.wrapped.unload()

    # -- running -----------------------------------------------------------------------
    def generate(self) -> Iterator[pa.Table]:
        """A generator step's batches, as distilabel's ``process_applying_mappings``
        yields them (``(rows, last_batch)``).

        They come from a shallow copy of the step: some of distilabel's generators use
        their own state up (``LoadDataFromDicts`` empties ``data``), as they run once in
        a process of their own under distilabel; here the step must survive for the
        next run of the same cell."""
        for rows, last in self.wrapped.model_copy().process_applying_mappings(offset=0):
            yield rows_to_table(list(rows))
            if last:
                return

    def run_batch(self, tables: list[pa.Table]) -> pa.Table:
        """One batch: one list of rows per predecessor, through distilabel's process."""
        inputs = [table.to_pylist() for table in tables]
        if not inputs or not any(inputs):
            return empty_table()
        if self._proxy is not None:
            self._proxy.take_failures()
        rows: list[dict[str, Any]] = []
        for batch in self.wrapped.process_applying_mappings(*inputs):
            rows.extend(batch)
        table = rows_to_table(rows)
        failures, error = self._proxy.take_failures() if self._proxy is not None \
            else (0, None)
        if failures:
            why = f" (last error: {scrub(error, self.secret_values())})" if error else ""
            warnings.warn(f"step {self.name!r}: {failures} row(s) got no answer from the "
                          f"LLM{why}; their outputs are None and the batch is not cached, so "
                          "the next run sends only those rows again", RuntimeWarning,
                          stacklevel=2)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                   FAILED_ROWS: str(failures).encode()})
        return table

    def failed_rows(self, table: pa.Table) -> int:
        """Rows of an output batch whose LLM call failed (the batch is then not cached)."""
        value = (table.schema.metadata or {}).get(FAILED_ROWS)
        return int(value) if value else 0

    def __repr__(self) -> str:
        return f"DistilabelStep({type(self.wrapped).__name__}(name={self.name!r}))"


class DistilabelTask(DistilabelStep):
    """A distilabel task: what a run would send is known before it runs, and what a
    reused output cost is in its ``distilabel_metadata``."""

    def tokens_in(self, table: pa.Table) -> int:
        """The tokens the rows of a cached output cost (distilabel's statistics)."""
        if METADATA not in table.column_names:
            return 0
        total = 0
        for meta in table.column(METADATA).to_pylist():
            stats = (meta or {}).get(f"statistics_{self.name}") or {}
            for part in ("input_tokens", "output_tokens"):
                value = stats.get(part)
                values = value if isinstance(value, list) else [value]
                total += sum(v for v in values if isinstance(v, int))
        return total

    def estimate(self, tables: list[pa.Table], signature: str, rows_dir: Any,
                 use_cache: bool = True) -> dict[str, Any]:
        from distilabel_nb.interop.distilabel.estimate import estimate_task

        return estimate_task(self.wrapped, tables, rows_dir, use_cache and self.use_cache)


class DistilabelLoader(DistilabelStep):
    """A distilabel generator over rows held in memory (``LoadDataFromDicts``)."""

    def plan_rows(self) -> pa.Table:
        """Every row it yields, for the plan's estimates downstream."""
        return concat(list(self.generate()))

    def generate(self) -> Iterator[pa.Table]:
        """distilabel's own ``LoadDataFromDicts``: its rows as one table, cut in batches
        (its ``process`` re-assigns the rest of ``data`` after every batch, and pydantic
        validates that assignment: quadratic in the rows). Any other loader: its own
        ``process``."""
        from distilabel.steps import LoadDataFromDicts

        if type(self.wrapped).process is not LoadDataFromDicts.process:
            yield from super().generate()
            return
        table = rename_columns(rows_to_table(self.wrapped.data), self.wrapped.output_mappings)
        size = max(1, self.batch_size)
        for start in range(0, table.num_rows, size):
            yield table.slice(start, size)


def _without_secrets(value: Any) -> Any:
    """A dump with secret-named keys and ``SecretStr`` values taken out, at any depth."""
    from pydantic import SecretBytes, SecretStr

    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items()
                if not (isinstance(k, str) and is_secret_name(k))
                and not isinstance(v, SecretStr | SecretBytes)}
    if isinstance(value, list | tuple):
        return [_without_secrets(v) for v in value]
    return value
