"""``Budget``: the money a run may spend, shared by every LLM step of the run.

Before each request an LLM reserves what the request is expected to cost (its prompt
tokens by ``LLM.count_tokens``, its answer by the step's cached mean or
``max_new_tokens``); when the answer comes, the reservation is replaced by what it
really cost. A request is sent only while money spent plus reservations in flight are
below the limit (otherwise it waits for a request in flight to come back); once the
money spent reaches the limit nothing more is sent in this run. So a run spends at most
the limit plus what was in flight when it was reached.
"""

from __future__ import annotations

import threading

__all__ = ["Budget"]


class Budget:
    """A spending limit in the LLMs' price currency (thread-safe)."""

    def __init__(self, limit: float) -> None:
        if limit is None or limit < 0:
            msg = f"max_budget must be a non-negative amount, not {limit!r}"
            raise ValueError(msg)
        self.limit = float(limit)
        self.spent = 0.0
        self.in_flight = 0.0
        self.refused = 0
        self._lock = threading.Lock()

    @property
    def exhausted(self) -> bool:
        return self.refused > 0

    def reserve(self, amount: float) -> bool | None:
        """Hold ``amount`` for one request: True (send it), None (the holds in flight
        fill the budget: wait for one to settle and ask again), False (the limit is
        reached: send nothing more)."""
        with self._lock:
            if self.refused or self.spent >= self.limit:
                self.refused += 1
                return False
            if self.spent + self.in_flight >= self.limit:
                return None
            self.in_flight += amount
            return True

    def settle(self, reserved: float, spent: float) -> None:
        """A request came back: release its reservation, count what it cost."""
        with self._lock:
            self.in_flight = max(0.0, self.in_flight - reserved)
            self.spent += spent
