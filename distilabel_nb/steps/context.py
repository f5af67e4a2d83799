"""What a running step may know and report: its cache location and its counters.

The engine sets ``step.context`` before ``load()``. Row-level caches (LLM tasks) keep
their rows under ``cache_dir`` keyed by ``signature`` and report what they reused and
how many tokens they spent or saved; the report and the widget read it from events.
"""

from __future__ import annotations

import dataclasses
import pathlib
import threading
from typing import Any

__all__ = ["StepContext"]


@dataclasses.dataclass
class StepContext:
    pipeline: str
    step: str
    key: str
    signature: str
    cache_dir: pathlib.Path
    #: Set when the run is stopping (Ctrl-C, a failure elsewhere): long calls should end.
    stopping: threading.Event = dataclasses.field(default_factory=threading.Event)
    #: False when this run must recompute the step (``use_cache=False`` on it or on the
    #: run, or upstream of it): row-level caches must not serve old rows then.
    use_cache: bool = True
    #: The run's ``max_budget`` (an ``llms.budget.Budget`` shared by its LLM steps).
    budget: Any = None
    rows_reused: int = 0
    rows_computed: int = 0
    rows_failed: int = 0
    tokens_used: int = 0
    tokens_saved: int = 0
    #: Money spent and saved (LLM steps with a price; None without one).
    cost_used: float | None = None
    cost_saved: float | None = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def count(self, reused: int = 0, computed: int = 0, failed: int = 0,
              tokens_used: int = 0, tokens_saved: int = 0) -> None:
        """Add to the step's counters (thread-safe)."""
        with self._lock:
            self.rows_reused += reused
            self.rows_computed += computed
            self.rows_failed += failed
            self.tokens_used += tokens_used
            self.tokens_saved += tokens_saved

    def add_cost(self, used: float | None, saved: float | None) -> None:
        """Add money spent and saved (None: no price, nothing to add)."""
        with self._lock:
            if used is not None:
                self.cost_used = (self.cost_used or 0.0) + used
            if saved is not None:
                self.cost_saved = (self.cost_saved or 0.0) + saved
