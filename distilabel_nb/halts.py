"""Errors that stop a run on purpose, before its work is done: a budget reached, a
provider's batch job not finished yet. Not failures: what finished is cached, and the
next run goes on from there. ``run()`` raises them as they are (not as
``StepFailedError``) and the report shows the step stopped, with the reason."""

from __future__ import annotations

__all__ = ["BudgetExceededError", "OfflineBatchPendingError", "RunHalted"]


class RunHalted(RuntimeError):
    """A step stopped the run on purpose; ``step`` names it (set by the engine)."""

    #: The node's short line on the graph ("stopped at the budget", "waiting ...").
    short = "stopped"

    def __init__(self, message: str, step: str | None = None) -> None:
        super().__init__(message)
        self.step = step

    def node_line(self) -> str:
        """What the step's node on the graph says."""
        return self.short


class BudgetExceededError(RunHalted):
    """``run(max_budget=...)`` reached: money spent plus requests in flight hit it."""

    short = "stopped at the budget"

    def __init__(self, spent: float, budget: float, rows_done: int, rows_left: int,
                 step: str | None = None) -> None:
        self.spent = spent
        self.budget = budget
        self.rows_done = rows_done
        self.rows_left = rows_left
        super().__init__(self._message(), step)

    def _message(self) -> str:
        return (f"budget reached: spent ${self.spent:.4g} of ${self.budget:.4g}; "
                f"{self.rows_done:,} rows done in this run, {self.rows_left:,} left unsent "
                f"(at most: some may be cached already). Finished rows are cached: run again "
                f"with a larger max_budget to send only the rest.")

    def add_unreached(self, rows: int) -> None:
        """Count input rows of later batches the step never reached."""
        self.rows_left += max(0, rows)
        self.args = (self._message(),)


class OfflineBatchPendingError(RunHalted):
    """An offline batch job (the provider's Batch API) has not finished yet."""

    short = "waiting"

    def __init__(self, job_id: str, done: int, total: int, status: str,
                 step: str | None = None) -> None:
        self.job_id = job_id
        self.done = done
        self.total = total
        self.status = status
        super().__init__(
            f"offline batch job {job_id} is {status}: {done:,}/{total:,} requests done. "
            "Nothing new was sent; run again later to collect the results (or give "
            "offline_batch_generation_block_until_done=SECONDS to wait).", step)

    def node_line(self) -> str:
        return f"waiting \u00b7 batch {self.done:,}/{self.total:,}"
