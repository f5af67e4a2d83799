"""Terminal progress: one bar per step, redrawn at most five times a second."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from distilabel_nb.engine.events import RunEvent

__all__ = ["ProgressBars"]

_WIDTH = 24


class ProgressBars:
    def __init__(self, stream: TextIO | None = None, interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.lines: dict[str, str] = {}
        self.drawn = 0
        self.last = 0.0

    def _line(self, event: RunEvent) -> str:
        done, total = event.batches_done, event.batches_total
        if total:
            filled = min(_WIDTH, int(_WIDTH * done / total))
            bar = "#" * filled + "." * (_WIDTH - filled)
            count = f"{done}/{total} batches"
        else:
            bar = ("#" if event.status in ("hit", "miss", "partial") else "~") * _WIDTH
            count = f"{done} batches"
        status = event.status or ""
        name = (event.step or "")[:22]
        return f"{name:<22} [{bar}] {status:<8} {event.rows_done:>9,} rows  {count}"

    def __call__(self, event: RunEvent) -> None:
        if event.step is not None and event.kind != "step_planned":
            self.lines[event.step] = self._line(event)
        if event.kind == "step_planned" and event.step is not None:
            self.lines[event.step] = self._line(event)
        now = time.monotonic()
        final = event.kind in ("run_finished", "step_finished")
        if final or now - self.last >= self.interval:
            self.last = now
            self._draw()
        if event.kind == "run_finished":
            self.drawn = 0

    def _draw(self) -> None:
        out = self.stream
        if self.drawn:
            out.write(f"\x1b[{self.drawn}F")
        for line in self.lines.values():
            out.write("\x1b[2K" + line + "\n")
        self.drawn = len(self.lines)
        out.flush()
