"""Runs the planned misses and partials, one thread per step, streaming batches.

Steps run in threads of this process, so steps defined in a notebook never need to be
pickled. Each step reads its predecessors' channels chunk by chunk and publishes its own
batches as it goes; memory holds a few batches per step whatever the row count. A stop
event (KeyboardInterrupt, a failure that stops the run) makes every step write what it
has finished and return. A batch that raises lets the run go on (``failures.py``)
unless ``fail_fast`` is set.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pyarrow as pa

from distilabel_nb.cache.manifest import Manifest
from distilabel_nb.cache.store import CorruptSegmentError, SegmentStore
from distilabel_nb.engine.backends import Backend, LocalBackend, Pending, hook
from distilabel_nb.engine.channel import Channel, ChunkSpec, RunStopped, zip_chunks
from distilabel_nb.engine.estimate import row_cache_dir
from distilabel_nb.engine.events import RunEvent
from distilabel_nb.engine.failures import continues_after_failure, failed_batch
from distilabel_nb.engine.outcome import StepFailedError, StepOutcome, finished_event
from distilabel_nb.engine.plan import StepPlan, takes_whole_input
from distilabel_nb.engine.remote import (
    BatchTarget,
    Piece,
    StoredBatch,
    assemble,
    has_failed_rows,
)
from distilabel_nb.engine.routes import SKIP, converged_chunks, converging_router, routed_chunks
from distilabel_nb.engine.sizes import expected_sizes
from distilabel_nb.engine.writer import BatchWriter, Source
from distilabel_nb.fields import scrub, scrub_error, secret_values
from distilabel_nb.graph.description import PipelineGraph
from distilabel_nb.halts import RunHalted
from distilabel_nb.steps.context import StepContext

__all__ = ["Executor", "StepFailedError", "StepOutcome"]  # the last two: outcome.py


class Executor:
    def __init__(self, pipeline: PipelineGraph, plans: dict[str, StepPlan], store: SegmentStore,
                 manifest: Manifest, emit: Callable[[RunEvent], None],
                 backend: Backend | None = None) -> None:
        self.pipeline = pipeline
        self.plans = plans
        self.store = store
        self.manifest = manifest
        self.emit = emit
        self.stop = threading.Event()
        self.backend: Backend = backend or LocalBackend()
        #: Rows a generator yields at most (a dry run), None for all.
        self.row_limit: int | None = None
        #: Stop the run at the first failed batch (else its rows go on with None outputs).
        self.fail_fast = False
        #: The run's ``max_budget`` (``llms.budget.Budget``), shared by its LLM steps.
        self.budget: Any = None
        self.channels: dict[str, Channel] = {}
        self.outcomes: dict[str, StepOutcome] = {}
        self.corrupt: CorruptSegmentError | None = None
        self.store_dir = row_cache_dir(store)
        self.expected = expected_sizes(pipeline, plans)
        leaves = set(pipeline.dag.leaves())
        for name, plan in plans.items():
            finished = plan.status == "hit"
            self.channels[name] = Channel(name, store, self.stop, plan.state, finished,
                                          keep_all=name in leaves)

    def _event(self, kind: Any, step: str, **fields: Any) -> None:
        self.emit(RunEvent(kind=kind, pipeline=self.pipeline.name, step=step, **fields))

    def run(self) -> None:
        """Run every step that is not a hit; returns when all are done or stopped.

        CPU-bound steps are driven one batch at a time by a scheduler in the calling
        thread (no GIL convoy, Ctrl-C lands here); I/O-bound steps (LLM calls) each get a
        thread of their own so they overlap with everything else.
        """
        to_run = [name for name, plan in self.plans.items() if plan.status != "hit"]
        for name in to_run:
            plan = self.plans[name]
            # Only what must not be reused is dropped: a plain miss leaves the key alone,
            # so a process never deletes what another one is writing for the same key.
            if plan.forced or plan.stale:
                self.store.delete(self.manifest.invalidate([plan.key]))
        wake = threading.Event()
        for channel in self.channels.values():
            channel.on_change = wake.set
        for name in to_run:
            self.outcomes[name] = StepOutcome()
        hook(self.backend, "bind", None)(self.stop)
        wants_thread = hook(self.backend, "threaded", False)
        threaded = [n for n in to_run if getattr(self.pipeline.steps[n], "io_bound", False)
                    or wants_thread(self.pipeline.steps[n])]
        tasks = {n: self._step_task(n, block=False) for n in to_run if n not in threaded}
        threads = [threading.Thread(target=self._drive, args=(n,), daemon=True,
                                    name=f"distilabel_nb:{n}") for n in threaded]
        for thread in threads:
            thread.start()
        try:
            while tasks or any(t.is_alive() for t in threads):
                progressed = False
                for name, task in list(tasks.items()):
                    began = time.perf_counter()
                    try:
                        progressed = next(task) or progressed
                    except StopIteration:
                        del tasks[name]
                        progressed = True
                    self.outcomes[name].seconds += time.perf_counter() - began
                if not progressed:
                    wake.wait(0.05)
                    wake.clear()
        except BaseException:  # Ctrl-C, or a cache that cannot be written: stop all
            self.stop.set()
            for task in tasks.values():
                with contextlib.suppress(Exception):  # the first error is the one raised
                    task.close()  # its writer commits what it can, and stops its timer
            for thread in threads:
                thread.join()
            raise

    def _unreached(self, name: str, outcome: StepOutcome, first: Any) -> int:
        """Input rows of ``name`` after the batch being finished (0: unknown)."""
        rows_total = self.expected[name][0]
        batch = int(getattr(first, "num_rows", 0) or 0)
        return max(0, rows_total - outcome.rows_done - batch) if rows_total else 0

    def failure(self) -> StepFailedError | RunHalted | None:
        """The first step failure of the run, chained to the step's own exception; a
        step that stopped the run on purpose (``RunHalted``) gives its own error."""
        for name, outcome in self.outcomes.items():
            if isinstance(outcome.error, RunHalted):
                outcome.error.step = name
                return outcome.error
        for name, outcome in self.outcomes.items():
            if outcome.error is not None:
                error = StepFailedError(name, outcome.batch, outcome.rows_span, outcome.error)
                error.__cause__ = outcome.error
                return error
        return None

    def _drive(self, name: str) -> None:
        try:
            for _ in self._step_task(name, block=True):
                pass
        except Exception as error:  # the cache failed at the step's end: stop the run
            if self.outcomes[name].error is None:
                self.outcomes[name].error = error
            self.stop.set()

    # -- one step ----------------------------------------------------------------------
    def _step_task(self, name: str, block: bool) -> Generator[bool, None, None]:
        """The work of one step as a generator: True after each batch, False while it
        waits for input (only when not ``block``)."""
        plan = self.plans[name]
        step = self.pipeline.steps[name]
        channel = self.channels[name]
        outcome = self.outcomes[name]
        writer = BatchWriter(self.store, self.manifest, plan.key, plan.batch_size,
                             self.pipeline.name, name, channel.stored)
        channel.attach_writer(writer)
        rows_total, batches_total = self.expected[name]
        self._event("step_started", name, status="running", reason=plan.reason,
                    batches_done=plan.batches_done, rows_done=plan.rows_reused,
                    rows_total=rows_total, batches_total=batches_total)
        total: int | None = None
        outcome.rows_done = plan.rows_reused
        start = time.perf_counter()
        step.context = outcome.context = StepContext(
            self.pipeline.name, name, plan.key, plan.signature, self.store_dir, self.stop,
            use_cache=not plan.forced, budget=self.budget)
        loads_here = hook(self.backend, "loads_here", True)(step)
        try:
            if loads_here:
                step.load()
            try:
                if step.kind == "generator":
                    total = yield from self._generate(name, step, plan, channel, writer, outcome)
                else:
                    total = yield from self._process(name, step, plan, channel, writer, outcome,
                                                     block)
            finally:
                writer.close()
                if loads_here:
                    step.unload()
        except RunStopped:
            pass
        except CorruptSegmentError as error:
            self.corrupt = error
            self.stop.set()
        except Exception as error:
            outcome.error = scrub_error(error, secret_values(step))
            error.__traceback_text__ = scrub(  # type: ignore[attr-defined]
                traceback.format_exc(), secret_values(step))
            self.stop.set()
        finally:
            if block:  # a thread of its own: its wall time is its time
                outcome.seconds = time.perf_counter() - start
            outcome.bytes_written = writer.bytes_written
            if total is not None and not channel.tainted:
                self.manifest.complete(plan.key, total, plan.batch_size, self.pipeline.name, name)
            if total is not None:
                channel.finish(total)
            else:
                channel.abort()
            failed = outcome.error is not None
            self.emit(finished_event(
                self.pipeline.name, name, plan, channel, outcome, failed=failed,
                message=f"{type(outcome.error).__name__}: {outcome.error}" if failed else None))

    def _after_batch(self, name: str, plan: StepPlan, channel: Channel, writer: BatchWriter,
                     outcome: StepOutcome, index: int, table: pa.Table, tainted: bool,
                     source: Source | None = None) -> None:
        channel.publish(index, table, tainted)
        if not tainted:
            writer.add(index, table, source)
        else:
            outcome.tainted_rows += table.num_rows
        self._count_batch(name, plan, channel, outcome, table.num_rows)

    def _count_batch(self, name: str, plan: StepPlan, channel: Channel, outcome: StepOutcome,
                     rows: int) -> None:
        outcome.computed_rows += rows
        outcome.computed_batches += 1
        outcome.rows_done += rows
        rows_total, batches_total = self.expected[name]
        self._event("batch_done", name, status="running",
                    rows_done=outcome.rows_done, batches_done=len(channel.rows),
                    rows_total=rows_total, batches_total=batches_total,
                    rows_reused=plan.rows_reused)

    def _generate(self, name: str, step: Any, plan: StepPlan, channel: Channel,
                  writer: BatchWriter, outcome: StepOutcome) -> Generator[bool, None, int]:
        count = 0
        for index, table in enumerate(step.generate()):
            if self.stop.is_set():
                raise RunStopped(name)
            if self.row_limit is not None:  # a dry run: one small batch per generator
                table = table.slice(0, self.row_limit)
            count = index + 1
            if index in plan.state.batches:
                continue
            outcome.batch = index
            self._after_batch(name, plan, channel, writer, outcome, index, table, False)
            yield True
            if self.row_limit is not None:
                break
        outcome.batch = None
        return count

    def _process(self, name: str, step: Any, plan: StepPlan, channel: Channel,
                 writer: BatchWriter, outcome: StepOutcome,
                 block: bool) -> Generator[bool, None, int]:
        preds = [self.channels[p] for p in self.pipeline.dag.pred[name]]
        size = None if takes_whole_input(step) else max(1, int(step.input_batch_size))
        window = max(1, self.backend.window(step))
        in_workers = hook(self.backend, "worker_io", False)(step, self.store)
        inflight: collections.deque[_Inflight] = collections.deque()
        index = 0
        try:
            for chunks in self._chunk_source(name, preds, size, block):
                if chunks is None:
                    yield False
                    continue
                if self.stop.is_set():
                    raise RunStopped(name)
                if index not in plan.state.batches:
                    inflight.append(self._submit(step, plan.key, index, preds, chunks,
                                                 in_workers))
                while inflight and (len(inflight) >= window or inflight[0][1].done()):
                    if not block and not inflight[0][1].done():
                        yield False
                        continue
                    yield from self._finish_batch(name, step, plan, channel, writer, outcome,
                                                  size, inflight.popleft())
                index += 1
            while inflight:
                if not block and not inflight[0][1].done():
                    yield False
                    continue
                yield from self._finish_batch(name, step, plan, channel, writer, outcome, size,
                                              inflight.popleft())
            return index
        except Exception:
            self._keep_finished(step, writer, inflight)
            raise

    def _chunk_source(self, name: str, preds: list[Channel], size: int | None,
                      block: bool) -> Iterator[list[ChunkSpec | None] | None]:
        """Per batch of step ``name``, the chunk each predecessor gives it (``SKIP``: none,
        the batch was routed elsewhere); None while an input is not there yet."""
        converging = converging_router(self.pipeline.dag, self.pipeline.routers, name)
        if converging is not None:  # after the steps a routing function sends to
            source, router = converging
            chunks: Iterator[Any] = converged_chunks(self.channels[source], router, preds, block)
            return chunks
        iterators = []
        for pred in preds:
            routes = self.pipeline.routers.get(pred.name)
            if routes is not None and name in routes.targets:
                iterators.append(routed_chunks(pred, routes, name, block))
            else:
                iterators.append(pred.chunks(size, block))
        return zip_chunks(iterators)

    def _submit(self, step: Any, key: str, index: int, preds: list[Channel],
                chunks: list[ChunkSpec | None], in_workers: bool) -> _Inflight:
        """Hand batch ``index`` to the backend: as tables, or as pieces of the cache for
        workers that read their inputs and write their output themselves."""
        pairs = [(p, c) for p, c in zip(preds, chunks, strict=True) if c is not SKIP]
        if in_workers:
            parts = [pred.pieces(c) for pred, c in pairs]
            tainted = any(flag for _, flag in parts)
            target = BatchTarget(key, index, write=not tainted)
            pieces = [p for p, _ in parts]
            return (index, self.backend.submit_stored(step, self.store, pieces, target),
                    tainted, None, pieces[0] if pieces else None)
        inputs = [pred.materialize(c) for pred, c in pairs]
        tainted = any(flag for _, flag in inputs)
        # One input chunk: the output's columns equal to its columns are stored once.
        source = Source(pairs[0][0], pairs[0][1], inputs[0][0]) \
            if len(pairs) == 1 and pairs[0][1] else None
        return (index, self.backend.submit(step, [t for t, _ in inputs]), tainted, source,
                inputs[0][0] if inputs else None)

    def _keep_finished(self, step: Any, writer: BatchWriter,
                       inflight: collections.deque[_Inflight]) -> None:
        """After a failed batch, commit the later ones that finished anyway (Ray computes
        several at once), so the next run computes only the failed one and the rest."""
        for index, pending, tainted, _, _ in inflight:
            if not pending.done():
                continue
            try:
                result = pending.result()
            except Exception:
                continue  # failed too, or stopped: nothing to keep
            if isinstance(result, StoredBatch):
                if result.segment is not None:
                    writer.record(index, [result.rows], result.segment)
            elif not tainted and not has_failed_rows(step, result):
                writer.add(index, result)

    def _finish_batch(self, name: str, step: Any, plan: StepPlan, channel: Channel,
                      writer: BatchWriter, outcome: StepOutcome, size: int | None,
                      item: _Inflight) -> Generator[bool, None, None]:
        index, pending, tainted_input, source, first = item
        outcome.batch = index
        if size is not None:
            outcome.rows_span = (index * size, index * size + size - 1)
        try:
            result = pending.result()
        except (RunStopped, CorruptSegmentError):
            raise
        except RunHalted as error:  # on purpose (a budget): not a failed batch
            hook(error, "add_unreached", None)(self._unreached(name, outcome, first))
            raise
        except Exception as error:
            if first is None or not continues_after_failure(step, self.fail_fast):
                raise
            table = first if isinstance(first, pa.Table) else assemble(self.store, first)
            result, failure = failed_batch(name, index, error, table, secret_values(step), step)
            outcome.failures.append(failure)
            tainted_input = True
        if isinstance(result, StoredBatch):
            if result.segment is not None:
                ref, = writer.record(index, [result.rows], result.segment)
                channel.publish_stored(ref)
                self._count_batch(name, plan, channel, outcome, result.rows)
            else:
                assert result.table is not None
                self._after_batch(name, plan, channel, writer, outcome, index, result.table,
                                  True)
        else:
            tainted = tainted_input or has_failed_rows(step, result)
            self._after_batch(name, plan, channel, writer, outcome, index, result, tainted,
                              source)
        outcome.batch = outcome.rows_span = None
        yield True


#: A submitted batch: index, result to come, whether an input is tainted, its input (for
#: column references), its first input's rows (for a failure's None outputs).
_Inflight = tuple[int, Pending, bool, Source | None, pa.Table | list[Piece] | None]
