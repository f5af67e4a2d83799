"""What a step did in a run, as the ``step_finished`` event that reports it.

Once per step and run: the executor sends it as soon as a step ends (so a live graph
turns the node green or blue right away); ``engine/run.py`` sends it at the end of the
run for the steps the executor did not finish (reused whole, or stopped by a failure or
an interruption).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from distilabel_nb.engine.events import RunEvent
from distilabel_nb.engine.failures import BatchFailure
from distilabel_nb.halts import RunHalted
from distilabel_nb.steps.context import StepContext

if TYPE_CHECKING:
    from distilabel_nb.engine.channel import Channel
    from distilabel_nb.engine.plan import StepPlan

__all__ = ["StepFailedError", "StepOutcome", "finished_event"]


class StepFailedError(RuntimeError):
    """A step raised; the message names the step and the batch."""

    def __init__(self, step: str, batch: int | None, rows: tuple[int, int] | None,
                 error: BaseException) -> None:
        where = f" on batch {batch}" if batch is not None else ""
        if rows is not None:
            where += f" (rows {rows[0]}-{rows[1]})"
        super().__init__(
            f"step {step!r} failed{where}: {type(error).__name__}: {error}\n"
            "Completed batches are kept in the cache; the next run resumes after them."
        )
        self.step = step
        self.batch = batch


@dataclasses.dataclass
class StepOutcome:
    computed_rows: int = 0
    rows_done: int = 0
    computed_batches: int = 0
    tainted_rows: int = 0
    seconds: float = 0.0
    bytes_written: int = 0
    error: BaseException | None = None
    batch: int | None = None
    rows_span: tuple[int, int] | None = None
    context: StepContext | None = None
    #: Batches that raised while the run went on (their rows carry None outputs).
    failures: list[BatchFailure] = dataclasses.field(default_factory=list)


def _status(plan: StepPlan, channel: Channel, outcome: StepOutcome | None, failed: bool,
            message: str | None) -> tuple[str, str]:
    if outcome is None:
        return plan.status, plan.reason
    if failed and isinstance(outcome.error, RunHalted):  # stopped on purpose
        context = outcome.context
        done = channel.refs or (context is not None and context.rows_computed)
        return ("partial" if done else "pending"), f"{outcome.error.short}: {outcome.error}"
    if failed:
        return "failed", message or "failed"
    if outcome.failures:
        first = outcome.failures[0]
        more = f" and {len(outcome.failures) - 1} more" if len(outcome.failures) > 1 else ""
        return "failed", (f"batch {first.batch}{more} failed ({first.error}); their rows went "
                          "on with None outputs, not cached: the next run computes them again")
    if outcome.tainted_rows:
        return "failed", (f"{outcome.tainted_rows} rows have failed or depend on failed rows; "
                          "they are retried on the next run")
    if channel.total is None:
        kept = len(channel.refs)
        return ("partial" if channel.refs else "pending",
                f"stopped ({message or 'the run stopped'}); {kept} finished batches kept")
    if plan.batches_done:
        return "partial", plan.reason
    return plan.status, plan.reason


def finished_event(pipeline: str, name: str, plan: StepPlan, channel: Channel,
                   outcome: StepOutcome | None, failed: bool = False,
                   message: str | None = None, tokens_saved: int = 0,
                   cost_saved: float | None = None) -> RunEvent:
    """The step's final report; ``tokens_saved`` and ``cost_saved`` are what a
    batch-level hit saved."""
    status, reason = _status(plan, channel, outcome, failed, message)
    rows = sum(channel.rows.values())
    nbytes = plan.state.nbytes + (outcome.bytes_written if outcome else 0)
    extra: dict[str, Any] = {"rows": rows, "bytes": nbytes,
                             "rows_computed": outcome.computed_rows if outcome else 0}
    rows_reused = plan.rows_reused
    context = outcome.context if outcome else None
    if context is not None and (context.rows_reused or context.tokens_used):
        # A row-level cache inside the step: its own reuse counts as reuse.
        rows_reused += context.rows_reused
        extra["rows_computed"] = context.rows_computed
        extra["tokens_used"] = context.tokens_used
        extra["tokens_saved"] = context.tokens_saved
        extra["cost_used"], extra["cost_saved"] = context.cost_used, context.cost_saved
        if context.rows_reused and status == "miss":
            status = "partial" if context.rows_computed else "hit"
            reason += (f"; {context.rows_reused:,} rows reused from the row cache, "
                       f"{context.rows_computed:,} computed")
    if tokens_saved:
        extra["tokens_saved"] = tokens_saved
    if cost_saved is not None:
        extra["cost_saved"] = cost_saved
    if outcome is not None and isinstance(outcome.error, RunHalted):
        extra["halted"] = outcome.error.node_line()
    elif failed and outcome is not None and outcome.error is not None:
        extra["error"] = getattr(outcome.error, "__traceback_text__", str(outcome.error))
    elif outcome is not None and outcome.failures:
        extra["error"] = outcome.failures[0].traceback
    return RunEvent("step_finished", pipeline, name, status, reason,  # type: ignore[arg-type]
                    rows_done=rows, rows_reused=rows_reused, batches_done=len(channel.rows),
                    batches_total=channel.total, seconds=outcome.seconds if outcome else 0.0,
                    extra=extra)
