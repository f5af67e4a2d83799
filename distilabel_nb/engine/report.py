"""Per-step reports, built from the event stream (the plan's and the run's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from distilabel_nb.engine.estimate import describe_estimate, money
from distilabel_nb.engine.events import RunEvent

__all__ = ["ReportBuilder", "RunReport", "StepReport"]


@dataclasses.dataclass
class StepReport:
    name: str
    status: str
    reason: str
    rows: int = 0
    seconds: float = 0.0
    bytes: int = 0
    rows_reused: int = 0
    rows_computed: int = 0
    batches_reused: int = 0
    batches_total: int | None = None
    tokens_used: int = 0
    tokens_saved: int = 0
    signature: str = ""
    key: str = ""
    error: str | None = None
    #: LLM steps, in a plan: what a run would send (None: unknown or not an LLM step).
    rows_to_send: int | None = None
    est_input_tokens: int | None = None
    est_output_tokens: int | None = None
    est_cost: float | None = None
    #: LLM steps, after a run: money spent and saved by the caches (None: no price).
    cost_used: float | None = None
    cost_saved: float | None = None
    #: Why the step stopped the run on purpose (the budget, a batch job in progress).
    halted: str | None = None

    @property
    def estimate(self) -> str:
        """The plan's estimate in words ("" for steps without one)."""
        if self.rows_to_send is None and self.est_input_tokens is None:
            return ""
        return describe_estimate(self.rows_to_send, self.est_input_tokens,
                                 self.est_output_tokens, self.est_cost)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RunReport(Mapping[str, StepReport]):
    """What a run did (or a plan would do), per step name, in topological order."""

    def __init__(self, pipeline: str, steps: dict[str, StepReport], seconds: float = 0.0,
                 error: str | None = None, planned: bool = False,
                 run_id: str | None = None) -> None:
        self.pipeline = pipeline
        #: The run's id in the cache's history (None for plans).
        self.run_id = run_id
        self.steps = steps
        self.seconds = seconds
        self.error = error
        self.planned = planned

    def __getitem__(self, name: str) -> StepReport:
        return self.steps[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def statuses(self) -> dict[str, str]:
        return {name: report.status for name, report in self.steps.items()}

    def ran(self) -> list[str]:
        """The steps that computed anything."""
        return [n for n, r in self.steps.items() if r.status in ("miss", "partial", "failed")]

    def table(self) -> str:
        """A fixed-width text table, one line per step (tokens when any step used some)."""
        tokens = any(r.tokens_used or r.tokens_saved for r in self.steps.values())
        head = f"{'step':<20} {'status':<8} {'rows':>9} {'reused':>9} {'seconds':>8}"
        if tokens:
            head += f" {'tokens':>9} {'saved':>9}"
        head += "  reason"
        lines = [head, "-" * len(head)]
        for r in self.steps.values():
            line = (f"{r.name[:20]:<20} {r.status:<8} {r.rows:>9,} {r.rows_reused:>9,} "
                    f"{r.seconds:>8.2f}")
            if tokens:
                line += f" {r.tokens_used:>9,} {r.tokens_saved:>9,}"
            extra = r.estimate if self.planned else _money_note(r)
            lines.append(f"{line}  {r.reason}" + (f"; {extra}" if extra else ""))
        verb = "plan" if self.planned else "run"
        lines.append(f"{verb} of {self.pipeline!r}: {self.seconds:.2f} s"
                     + (f"; error: {self.error}" if self.error else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{html.escape(r.name)}</td><td>{r.status}</td><td>{r.rows:,}</td>"
            f"<td>{r.rows_reused:,}</td><td>{r.seconds:.2f}</td><td>{html.escape(r.reason)}</td></tr>"
            for r in self.steps.values()
        )
        return ("<table><tr><th>step</th><th>status</th><th>rows</th><th>reused</th>"
                f"<th>seconds</th><th>reason</th></tr>{rows}</table>")


_EXTRA_FIELDS = ("rows", "bytes", "rows_computed", "batches_reused", "tokens_used",
                 "tokens_saved", "signature", "key", "error", "rows_to_send",
                 "est_input_tokens", "est_output_tokens", "est_cost", "cost_used",
                 "cost_saved", "halted")


def _money_note(report: StepReport) -> str:
    parts = []
    if report.cost_used:
        parts.append(f"cost {money(report.cost_used)}")
    if report.cost_saved:
        parts.append(f"saved {money(report.cost_saved)}")
    return ", ".join(parts)


class ReportBuilder:
    """An event listener that keeps the latest report of each step."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.steps: dict[str, StepReport] = {}
        self.error: str | None = None
        self.started = 0.0
        self.finished = 0.0
        self.run_id: str | None = None

    def __call__(self, event: RunEvent) -> None:
        if event.kind == "run_started":
            self.started = event.time
            self.run_id = event.extra.get("run_id")
        elif event.kind == "run_finished":
            self.finished = event.time
            self.error = event.message
        elif event.step is not None:
            report = self.steps.setdefault(event.step, StepReport(event.step, "pending", ""))
            if event.status is not None and event.kind != "batch_done":
                report.status = event.status
            if event.reason is not None:
                report.reason = event.reason
            extra = event.extra
            for field in _EXTRA_FIELDS:
                if field in extra:
                    setattr(report, field, extra[field])
            if event.batches_total is not None:
                report.batches_total = event.batches_total
            if event.kind in ("step_planned", "step_finished"):
                report.rows_reused = event.rows_reused
                report.seconds = event.seconds

    def report(self, planned: bool = False) -> RunReport:
        seconds = max(0.0, self.finished - self.started)
        return RunReport(self.pipeline, dict(self.steps), seconds, self.error, planned,
                         None if planned else self.run_id)
