"""What a manifest records, whichever kind it is: where each batch lives, the state of
a cache key, the last run of a step; and whose leases are still alive."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
import os
import socket
from typing import Any, NamedTuple

__all__ = ["HOST", "REMOTE_LEASE_SECONDS", "BatchRef", "KeyState", "RunRecord", "lease_alive",
           "new_ref", "process_alive"]

#: Leases held from another machine (a shared filesystem) expire after this many seconds.
REMOTE_LEASE_SECONDS = 24 * 3600
HOST = socket.gethostname()


def process_alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` of this machine is running: not gone, not a zombie (a
    killed kernel its parent has not reaped yet) and, given ``since`` (when it took a
    lease), not a newer process that was given the same pid."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    started, state = _proc_stat(pid)
    if state in ("Z", "X"):
        return False
    return not (since is not None and started is not None and started > since + 1.0)


def _proc_stat(pid: int) -> tuple[float | None, str | None]:
    """When process ``pid`` started (epoch seconds) and its state letter, from Linux's
    ``/proc``; (None, None) where there is no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None, None
    state = fields[0].decode()
    try:
        ticks = int(fields[19])  # field 22 of stat: start time, in clock ticks after boot
    except (IndexError, ValueError):
        return None, state
    boot = _boot_time()
    return (None if boot is None else boot + ticks / os.sysconf("SC_CLK_TCK")), state


@functools.cache
def _boot_time() -> float | None:
    try:
        with open("/proc/stat", "rb") as handle:
            for line in handle:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def lease_alive(pid: int, host: str, since: float | None, now: float) -> bool:
    """Whether a lease another manifest took is still held: by a live process of this
    machine, or (from another machine) for less than ``REMOTE_LEASE_SECONDS``."""
    if host == HOST:
        return process_alive(pid, since)
    return now - (since or 0.0) < REMOTE_LEASE_SECONDS


class BatchRef(NamedTuple):
    """Where one completed batch lives: a segment file and its position in it.

    A named tuple rather than a frozen dataclass: a full hit builds one per cached batch
    of every step (thousands), and a tuple is made three times faster.
    """

    index: int  # type: ignore[assignment]  # the batch's number; shadows tuple.index()
    rows: int
    path: str
    offset: int  # first row of this batch within its segment file
    checksum: str


@dataclasses.dataclass
class KeyState:
    key: str
    chunk: int | None = None
    n_batches: int | None = None
    batches: dict[int, BatchRef] = dataclasses.field(default_factory=dict)
    nbytes: int = 0

    @property
    def complete(self) -> bool:
        return self.n_batches is not None and all(
            map(self.batches.__contains__, range(self.n_batches)))

    @property
    def rows(self) -> int:
        return sum(map(_ROWS, self.batches.values()))

    def add_segment(self, first: int, counts: list[int], path: str, checksum: str,
                    nbytes: int) -> None:
        """Add the batches of one committed segment (``counts``: rows per batch, from
        batch ``first``); a batch two segments hold (two writers) keeps the first added."""
        self.nbytes += nbytes
        offsets = itertools.accumulate(counts, initial=0)
        indices = range(first, first + len(counts))
        refs = map(new_ref, zip(indices, counts, itertools.repeat(path), offsets,
                                itertools.repeat(checksum), strict=False))
        if self.batches.keys().isdisjoint(indices):
            self.batches.update(zip(indices, refs, strict=True))
        else:
            for ref in refs:
                self.batches.setdefault(ref.index, ref)


_ROWS = operator.itemgetter(1)  # BatchRef.rows, read at C speed
#: BatchRef from a tuple of its fields, without a Python-level __new__ call.
new_ref = functools.partial(tuple.__new__, BatchRef)


@dataclasses.dataclass(frozen=True)
class RunRecord:
    pipeline: str
    step: str
    key: str
    description: dict[str, Any]
    status: str
    rows: int | None
    nbytes: int | None
    seconds: float | None
    finished: float
    #: The keys of the step's predecessors in that run (None in records from before).
    upstream: tuple[str, ...] | None = None
    #: The run (``RunEntry.run_id`` of the history) that wrote it (None before history).
    run_id: str | None = None
