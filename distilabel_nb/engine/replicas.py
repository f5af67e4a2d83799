"""Replicas of a step in this process: ``resources={"replicas": N}`` (or distilabel's
``StepResources(replicas=N)``) lets N batches of the step run at once, in threads.

Threads suit what steps with replicas mostly do: wait on an LLM server, an HTTP API or
a library that releases the GIL (pyarrow, numpy, tokenizers). The replicas share the
step object, loaded once (distilabel loads one copy per replica process); a step that
keeps per-batch state on ``self`` needs its own copies: the Ray backend runs replicas as
separate actors. Results are committed in batch order whatever order they finish in
(the executor takes them from its in-flight queue in order).
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import pyarrow as pa

__all__ = ["ThreadReplicas", "replicas_of", "resource_options"]


def resource_options(step: Any) -> dict[str, Any]:
    """``step.resources`` as a dict (distilabel's ``StepResources`` and look-alikes
    too): replicas, num_cpus, num_gpus, memory, resources."""
    raw = getattr(step, "resources", None)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raw = {name: getattr(raw, name) for name in
               ("replicas", "cpus", "gpus", "memory", "resources", "num_cpus", "num_gpus")
               if getattr(raw, name, None) is not None}
    aliases = {"cpus": "num_cpus", "gpus": "num_gpus"}
    return {aliases.get(k, k): v for k, v in raw.items() if v is not None}


def replicas_of(step: Any) -> int:
    """How many batches of ``step`` may run at once (1 for generators and global
    steps, which have one stream of batches or one batch)."""
    if getattr(step, "kind", "normal") != "normal":
        return 1
    try:
        return max(1, int(resource_options(step).get("replicas", 1)))
    except (TypeError, ValueError):
        msg = (f"step {getattr(step, 'name', step)!r}: resources replicas must be a whole "
               f"number, not {resource_options(step).get('replicas')!r}")
        raise ValueError(msg) from None


class ThreadReplicas:
    """A pool of threads per step with replicas; ``close`` drops what has not started."""

    def __init__(self) -> None:
        self._pools: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    def submit(self, step: Any, tables: list[pa.Table]) -> concurrent.futures.Future[Any]:
        with self._lock:
            pool = self._pools.get(id(step))
            if pool is None:
                pool = concurrent.futures.ThreadPoolExecutor(
                    replicas_of(step), thread_name_prefix=f"distilabel_nb:{step.name}")
                self._pools[id(step)] = pool
        return pool.submit(step.run_batch, tables)

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
