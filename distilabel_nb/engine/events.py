"""The event stream of a run: frozen ``RunEvent``s that the report, the progress bars
and the widget consume. Nothing outside the engine looks into the engine itself."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["ALL_RUNS", "Broadcast", "EventKind", "Listener", "RunEvent", "Status"]

EventKind = Literal[
    "run_started",     # the plan is made; one event per step follows as step_planned
    "step_planned",    # status is what the plan decided: hit, miss or partial
    "step_started",    # the step begins to compute (misses and partials only)
    "batch_done",      # one batch finished; rows_done/batches_done count the step so far
    "step_finished",   # status is the final one: hit, miss, partial or failed
    "run_finished",    # message is None on success, the error otherwise
]
Status = Literal["pending", "running", "hit", "miss", "partial", "failed"]


@dataclasses.dataclass(frozen=True)
class RunEvent:
    kind: EventKind
    pipeline: str
    step: str | None = None
    status: Status | None = None
    reason: str | None = None
    rows_done: int = 0
    rows_total: int | None = None
    batches_done: int = 0
    batches_total: int | None = None
    rows_reused: int = 0
    seconds: float = 0.0
    message: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    time: float = dataclasses.field(default_factory=time.time)


Listener = Callable[[RunEvent], None]


class Broadcast:
    """Listeners of every run of every pipeline in this process (``ALL_RUNS``): what a
    graph made with ``follow=True`` listens to, whichever ``Pipeline`` object runs
    (a re-run cell builds a new one)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def __call__(self, event: RunEvent) -> None:
        for listener in list(self._listeners):
            listener(event)


ALL_RUNS = Broadcast()
