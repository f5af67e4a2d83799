"""``Task``: a row-wise step that asks an LLM, with a row-level cache.

As in distilabel, a task turns each input row into a chat (``format_input``), sends the
chats of a batch to its ``llm``, and turns each answer back into output columns
(``format_output``). It also writes ``model_name`` and merges its entry into the
``distilabel_metadata`` column: ``raw_input_<step>``, ``raw_output_<step>``,
``statistics_<step>`` (``input_tokens``, ``output_tokens``) and ``error_<step>``.

Row-level reuse: every answer is stored under the step's signature plus the values of
the columns the task reads (``cache/rowcache.py``). A batch asks the LLM only for the
rows the cache does not have, so adding rows costs only the new rows, and a batch that
was not committed because some rows failed costs only those rows on the next run. Rows
whose request failed get None outputs and their error in the metadata; they are never
cached, and ``failed_rows`` tells the executor not to commit their batch.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator
from typing import Any, ClassVar

import orjson
import pyarrow as pa

from distilabel_nb.cache.rowcache import RowCache, row_key
from distilabel_nb.halts import BudgetExceededError
from distilabel_nb.llms.base import LLM, NOT_SENT, ChatType, Generation
from distilabel_nb.steps.base import Step, column_names
from distilabel_nb.steps.mappings import map_inputs, map_outputs

__all__ = ["METADATA", "Task", "TokenTally"]

METADATA = "distilabel_metadata"
_UNKNOWN = object()
#: Answers written to the row cache together while a batch is being generated.
_FLUSH_EVERY = 64


@dataclasses.dataclass
class TokenTally:
    """Tokens of one task in its last run: spent now, and saved by the row cache."""

    input_used: int = 0
    output_used: int = 0
    input_saved: int = 0
    output_saved: int = 0

    @property
    def used(self) -> int:
        return self.input_used + self.output_used

    @property
    def saved(self) -> int:
        return self.input_saved + self.output_saved


class Task(Step):
    """Base of LLM tasks: implement ``inputs``, ``outputs``, ``format_input`` and
    ``format_output``."""

    row_wise: ClassVar[bool] = True
    #: LLM calls wait on the network: the executor gives the step a thread of its own.
    io_bound: ClassVar[bool] = True

    llm: LLM
    add_raw_output: bool = True
    add_raw_input: bool = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: RowCache | None = None
        self.tokens = TokenTally()
        self._answer_mean: float | object | None = _UNKNOWN

    # -- what subclasses define ------------------------------------------------------
    def format_input(self, row: dict[str, Any]) -> ChatType:
        """The chat to send for one input row."""
        msg = f"{type(self).__name__} must implement format_input()"
        raise NotImplementedError(msg)

    def format_output(self, output: str | None, row: dict[str, Any]) -> dict[str, Any]:
        """The output columns for one answer (``output`` is None when the request failed)."""
        msg = f"{type(self).__name__} must implement format_output()"
        raise NotImplementedError(msg)

    def _sample_input(self) -> ChatType:
        """What ``print`` shows: ``format_input`` of placeholders for the input columns."""
        return self.format_input({c: f"<PLACEHOLDER_{c.upper()}>" for c in list(self.inputs)})

    def print(self, sample_input: ChatType | None = None) -> None:
        """Print the prompt this task sends (placeholders for its inputs), as distilabel's."""
        from distilabel_nb.steps.tasks.printing import print_prompt

        chat = sample_input if sample_input is not None else self._sample_input()
        print_prompt(type(self).__name__, list(chat))

    def key_columns(self, available: list[str]) -> list[str]:
        """The columns whose values ``format_input`` reads: the row cache's key."""
        declared = list(self.inputs) if isinstance(self.inputs, dict) else \
            column_names(self.inputs)
        return [c for c in declared if c in available]

    def output_columns(self, available: list[str]) -> list[str]:
        """Columns after this step (used by validation): inputs, outputs, metadata."""
        new = [*column_names(self.outputs), METADATA]
        return [c for c in available if c not in new] + new

    # -- signature ---------------------------------------------------------------------
    def signature_fields(self) -> dict[str, Any]:
        description = super().signature_fields()
        # Concurrency, retries, timeout and prices do not change the answers.
        description["llm"] = self.llm.signature_description()
        return description

    # -- lifecycle ---------------------------------------------------------------------
    def load(self) -> None:
        self.tokens = TokenTally()
        self._answer_mean = _UNKNOWN
        self.llm.load()
        if self.context is not None:
            self._rows = RowCache(self.context.cache_dir / "rows")

    def unload(self) -> None:
        try:
            self.llm.unload()
        finally:
            if self._rows is not None:
                self._rows.close()
                self._rows = None

    def _reads_cache(self) -> bool:
        """False when this run must recompute (cache disabled on the step or the run)."""
        return bool(self.use_cache) and bool(getattr(self.context, "use_cache", True))

    # -- failed rows -------------------------------------------------------------------
    def failed_rows(self, table: pa.Table) -> int:
        """How many rows of an output batch failed (the executor does not commit them)."""
        if METADATA not in table.column_names:
            return 0
        column = table.column(METADATA)
        if not pa.types.is_struct(column.type):
            return 0
        name = f"error_{self.name}"
        if column.type.get_field_index(name) < 0:
            return 0
        errors = pa.chunked_array([chunk.field(name) for chunk in column.chunks],
                                  type=column.type.field(name).type)
        return len(errors) - errors.null_count

    def tokens_in(self, table: pa.Table) -> int:
        """The tokens the rows of an output table cost (from ``statistics_<step>``): what a
        batch-level cache hit on this step saved."""
        return sum(self._token_parts(table))

    def cost_in(self, table: pa.Table) -> float | None:
        """The money the rows of an output table cost (None without a price)."""
        return self.llm.cost(*self._token_parts(table))

    def _token_parts(self, table: pa.Table) -> tuple[int, int]:
        if METADATA not in table.column_names:
            return 0, 0
        column = table.column(METADATA)
        name = f"statistics_{self.name}"
        if not pa.types.is_struct(column.type) or column.type.get_field_index(name) < 0:
            return 0, 0
        totals = [0, 0]
        for chunk in column.chunks:
            stats = chunk.field(name)
            for i, part in enumerate(("input_tokens", "output_tokens")):
                totals[i] += sum(v for v in stats.field(part).to_pylist() if v)
        return totals[0], totals[1]

    # -- estimate (plan) -----------------------------------------------------------------
    def estimate(self, tables: list[pa.Table], signature: str, rows_dir: Any,
                 use_cache: bool = True) -> dict[str, Any]:
        """What running over ``tables`` would send: the rows the row cache in ``rows_dir``
        lacks (all of them when ``use_cache`` is False), their prompt tokens
        (``llm.count_tokens``), their answers' tokens (the mean of this step's cached
        answers when there are any, else ``llm.expected_output_tokens()``), and the cost.
        Rows waiting in an open offline batch job are not sent again: not counted.
        """
        table = self._input_table(tables)
        columns = self.key_columns(table.column_names)
        rows = table.select(columns).to_pylist()
        todo = {row_key(row): row for row in rows}  # duplicates are sent once
        mean_output: float | None = None
        known: set[str] = set()  # rows not to send: answered, or waiting in a batch job
        if pathlib.Path(rows_dir, "rows.sqlite").exists():
            with RowCache(rows_dir) as cache:
                if use_cache:
                    known.update(cache.get_many(signature, list(todo)))
                mean_output = cache.output_tokens_mean(signature)
            if self.llm.use_offline_batch_generation:
                from distilabel_nb.cache.jobs import BatchJobs

                with BatchJobs(rows_dir) as jobs:
                    opened = jobs.open_job(signature)
                known.update(opened[1] if opened else ())
        todo = {key: row for key, row in todo.items() if key not in known}
        input_tokens = sum(self.llm.count_tokens(self.format_input(row))
                           for row in todo.values())
        per_answer = mean_output if mean_output is not None else \
            self.llm.expected_output_tokens()
        output_tokens = round(per_answer * len(todo))
        return {"rows_to_send": len(todo), "est_input_tokens": input_tokens,
                "est_output_tokens": output_tokens,
                "est_cost": self.llm.cost(input_tokens, output_tokens)}

    def _input_table(self, tables: list[pa.Table]) -> pa.Table:
        """One table of input rows under this step's own column names."""
        return self._mapped_input(tables)[0]

    def _mapped_input(self, tables: list[pa.Table]) -> tuple[pa.Table, pa.Table | None]:
        """The input as the step reads it, and the columns set aside by input_mappings."""
        mapped, aside = map_inputs(tables, self.input_mappings)
        return (mapped[0] if len(mapped) == 1 else _join(mapped)), aside

    # -- running -----------------------------------------------------------------------
    def process(self, *inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """distilabel's interface: rows in, rows out (``run_batch`` is the fast path)."""
        table = pa.Table.from_pylist(inputs[0]) if inputs and inputs[0] else pa.table({})
        yield self._run_table(table).to_pylist()

    def run_batch(self, tables: list[pa.Table]) -> pa.Table:
        table, aside = self._mapped_input(tables)
        output = self._run_table(table)
        return map_outputs(output, self.input_mappings, self.output_mappings, aside)

    def _run_table(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        if n == 0:
            return table
        columns = self.key_columns(table.column_names)
        rows = table.select(columns).to_pylist()
        keys = [row_key(row) for row in rows]
        signature = self.context.signature if self.context is not None else None
        cached = {}
        if self._rows is not None and signature is not None and self._reads_cache():
            cached = self._rows.get_many(signature, keys)
        todo: dict[str, int] = {}  # key -> first row index to compute (duplicates once)
        for index, key in enumerate(keys):
            if key not in cached and key not in todo:
                todo[key] = index
        every = [self.format_input(row) for row in rows] if self.add_raw_input else None
        chats = [every[i] if every is not None else self.format_input(rows[i])
                 for i in todo.values()]
        fresh = dict(zip(todo, self._generate(chats, list(todo), signature), strict=True)) \
            if chats else {}
        self._stop_if_refused(fresh)
        generations: list[Generation] = []
        reused = 0
        saved = TokenTally()
        for key in keys:
            if key in fresh:
                generations.append(fresh[key])
                continue
            value, input_tokens, output_tokens = cached.get(key) or ({"text": None}, 0, 0)
            generations.append(Generation(value.get("text"), input_tokens, output_tokens))
            reused += 1
            saved.input_saved += input_tokens
            saved.output_saved += output_tokens
        used = TokenTally(sum(g.input_tokens for g in fresh.values()),
                          sum(g.output_tokens for g in fresh.values()))
        self._tally(used, saved, reused=reused, computed=n - reused,
                    failed=sum(1 for g in fresh.values() if g.error is not None))
        return self._build_output(table, rows, generations, every)

    def _tally(self, used: TokenTally, saved: TokenTally, reused: int, computed: int,
               failed: int) -> None:
        """Count one batch's tokens and money (spent now, saved by the row cache)."""
        self.tokens.input_used += used.input_used
        self.tokens.output_used += used.output_used
        self.tokens.input_saved += saved.input_saved
        self.tokens.output_saved += saved.output_saved
        if self.context is not None:
            self.context.count(reused=reused, computed=computed, failed=failed,
                               tokens_used=used.used, tokens_saved=saved.saved)
            self.context.add_cost(self.llm.cost(used.input_used, used.output_used),
                                  self.llm.cost(saved.input_saved, saved.output_saved))

    def _stop_if_refused(self, fresh: dict[str, Generation]) -> None:
        """The run's budget refused some requests: count what was sent, then stop the
        run (the answers are in the row cache; the batch is not committed)."""
        refused = sum(1 for g in fresh.values() if g.error == NOT_SENT)
        budget = getattr(self.context, "budget", None)
        if not refused or budget is None:
            return
        sent = [g for g in fresh.values() if g.error != NOT_SENT]
        used = TokenTally(sum(g.input_tokens for g in sent), sum(g.output_tokens for g in sent))
        self._tally(used, TokenTally(), reused=0, computed=len(sent),
                    failed=sum(1 for g in sent if g.error is not None))
        done = self.context.rows_computed if self.context is not None else len(sent)
        raise BudgetExceededError(budget.spent, budget.limit, done, refused, self.name)

    def _answer_tokens(self, signature: str | None) -> float | None:
        """The mean output tokens of this step's cached answers (for budget holds)."""
        if self._answer_mean is _UNKNOWN:
            self._answer_mean = self._rows.output_tokens_mean(signature) \
                if self._rows is not None and signature is not None else None
        return self._answer_mean  # type: ignore[return-value]

    @property
    def whole_input(self) -> bool:
        """An LLM in offline batch mode gets the whole input at once: one job per run."""
        return bool(self.llm.use_offline_batch_generation)

    def _generate(self, chats: list[ChatType], keys: list[str],
                  signature: str | None) -> list[Generation]:
        """Ask the LLM; successful answers go to the row cache as they arrive (in groups),
        so a run that dies mid-batch keeps the answers it already paid for."""
        if self.llm.use_offline_batch_generation and signature is not None:
            from distilabel_nb.steps.tasks.offline_batch import generate_offline

            return generate_offline(self, chats, keys, signature)
        budget = getattr(self.context, "budget", None)
        if budget is not None:
            return self._generate_cached(chats, keys, signature, budget=budget,
                                         answer_tokens=self._answer_tokens(signature))
        return self._generate_cached(chats, keys, signature)

    def _generate_cached(self, chats: list[ChatType], keys: list[str],
                         signature: str | None, **limits: Any) -> list[Generation]:
        cache = self._rows
        if cache is None or signature is None:
            return self.llm.generate(chats, **limits)
        pending: list[tuple[str, Any, int, int]] = []

        def flush() -> None:
            if pending:
                cache.put_many(signature, pending[:])
                pending.clear()

        def on_result(index: int, generation: Generation) -> None:
            if generation.error is None and generation.text is not None:
                pending.append((keys[index], {"text": generation.text},
                                generation.input_tokens, generation.output_tokens))
                if len(pending) >= _FLUSH_EVERY:
                    flush()

        try:
            return self.llm.generate(chats, on_result, **limits)
        finally:
            flush()

    def _build_output(self, table: pa.Table, rows: list[dict[str, Any]],
                      generations: list[Generation],
                      raw_inputs: list[ChatType] | None) -> pa.Table:
        outputs = [self.format_output(g.text if g.error is None else None, row)
                   for g, row in zip(generations, rows, strict=True)]
        names = list(dict.fromkeys(k for out in outputs for k in out))
        new: dict[str, pa.Array] = {}
        for name in names:
            array = pa.array([out.get(name) for out in outputs])
            new[name] = array.cast(pa.string()) if pa.types.is_null(array.type) else array
        new["model_name"] = pa.array([self.llm.model_name] * len(rows), pa.string())
        new[METADATA] = self._metadata(table, generations, raw_inputs)
        kept = [c for c in table.column_names if c not in new]
        arrays = [table.column(c) for c in kept] + list(new.values())
        return pa.Table.from_arrays(arrays, names=kept + list(new))

    def _metadata(self, table: pa.Table, generations: list[Generation],
                  raw_inputs: list[ChatType] | None) -> pa.Array:
        name = self.name
        fields: dict[str, pa.Array] = {}
        if METADATA in table.column_names and pa.types.is_struct(table.column(METADATA).type):
            previous = table.column(METADATA).combine_chunks()
            for i, field in enumerate(previous.type):
                fields[field.name] = previous.field(i)
        if raw_inputs is not None:
            fields[f"raw_input_{name}"] = pa.array(
                [orjson.dumps(chat).decode() for chat in raw_inputs], pa.string())
        if self.add_raw_output:
            fields[f"raw_output_{name}"] = pa.array([g.text for g in generations], pa.string())
        fields[f"statistics_{name}"] = pa.StructArray.from_arrays(
            [pa.array([g.input_tokens for g in generations], pa.int64()),
             pa.array([g.output_tokens for g in generations], pa.int64())],
            names=["input_tokens", "output_tokens"])
        fields[f"error_{name}"] = pa.array([g.error for g in generations], pa.string())
        return pa.StructArray.from_arrays(list(fields.values()), names=list(fields))


def _join(tables: list[pa.Table]) -> pa.Table:
    """Several predecessors: their columns side by side (first one wins on a name)."""
    columns: dict[str, Any] = {}
    for table in tables:
        for name in table.column_names:
            columns.setdefault(name, table.column(name))
    return pa.table(columns)
