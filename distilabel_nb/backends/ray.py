"""Run a pipeline's batches on Ray: ``pipeline.run(backend="ray", backend_options=...)``.

The driver keeps everything that decides what runs and what is kept: the plan, the
generators, the channels between steps, the manifest, the events. Ray computes the
batches; when the cache is an object store (or ``worker_io=True``: see
``RayBackend.worker_io``), the workers also read their inputs from it and write their
outputs to it, so only references pass through the driver (``engine/remote.py``).

Stateless steps run as Ray tasks, spread over the cluster's CPUs with a window of
``2 x CPUs`` batches in flight; steps with state (LLM tasks, ``io_bound`` steps, steps
with a ``load()``, or any step given ``step.resources = {"replicas": n, ...}``) live in
actors, ``replicas`` of them, loaded once. A step travels as cloudpickle bytes taken
before the run loads anything; classes from ``__main__`` (a notebook) and from modules
that are not installed packages go by value, so workers need only ``distilabel_nb``.

A batch that raises surfaces as the step's own exception (not Ray's wrapper), with the
worker's traceback attached as a note, so the run handles it as a local run does (None
outputs and a warning, or ``StepFailedError`` with ``fail_fast``) and the next run
retries that batch alone.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import uuid
from typing import Any

import pyarrow as pa
import ray
from ray import cloudpickle

from distilabel_nb.backends.shipping import by_value, dumps, user_modules
from distilabel_nb.cache.store import SegmentStore
from distilabel_nb.engine.backends import Pending
from distilabel_nb.engine.channel import RunStopped
from distilabel_nb.engine.remote import BatchTarget, Piece, StoredBatch, compute_stored
from distilabel_nb.engine.replicas import resource_options
from distilabel_nb.steps.base import StepBase
from distilabel_nb.steps.context import StepContext

__all__ = ["RayBackend"]

#: A batch whose worker died (killed, out of memory, node lost) is computed again by Ray,
#: this many times at most (Ray's own retries: a batch that raises is not retried).
_RETRIES = 3
_COUNTERS = ("rows_reused", "rows_computed", "rows_failed", "tokens_used", "tokens_saved")
#: Steps kept unpickled in a worker process, by payload token (a few runs' worth).
_STEPS: dict[str, Any] = {}
#: Cache stores of a worker process, by root: each remembers the folders it made.
_STORES: dict[str, SegmentStore] = {}


# -- in the workers ------------------------------------------------------------------------
def _context(fields: tuple[Any, ...] | None) -> StepContext | None:
    return StepContext(*fields) if fields is not None else None


def _counts(context: StepContext | None) -> tuple[int, ...]:
    return tuple(getattr(context, n) for n in _COUNTERS) if context else (0,) * 5


def _run_task(token: str, payload: bytes, context_fields: tuple[Any, ...] | None,
              job: _Job) -> tuple[pa.Table | StoredBatch, tuple[int, ...]]:
    """One batch of a stateless step, in whichever worker Ray picked."""
    step = _STEPS.get(token)
    if step is None:
        while len(_STEPS) >= 32:
            _STEPS.pop(next(iter(_STEPS)))
        step = _STEPS[token] = cloudpickle.loads(payload)
    step.context = context = _context(context_fields)
    return job.run(step), _counts(context)


class _Job:
    """One batch's work: tables in, a table out; or, with a store, pieces read from the
    cache and the output written there (``remote.compute_stored``)."""

    def __init__(self, inputs: list[Any], store: SegmentStore | None = None,
                 target: BatchTarget | None = None) -> None:
        self.inputs = inputs
        self.store = store
        self.target = target

    def run(self, step: Any) -> pa.Table | StoredBatch:
        if self.store is None or self.target is None:
            return step.run_batch(self.inputs)
        return compute_stored(step, _STORES.setdefault(self.store.base, self.store),
                              self.inputs, self.target)


class _StepActor:
    """A step with state: unpickled and loaded once, then fed batch after batch."""

    def __init__(self, payload: bytes, context_fields: tuple[Any, ...] | None) -> None:
        self.step = cloudpickle.loads(payload)
        self.step.context = _context(context_fields)
        self.step.load()

    def run(self, job: _Job) -> tuple[pa.Table | StoredBatch, tuple[int, ...]]:
        before = _counts(self.step.context)
        result = job.run(self.step)
        after = _counts(self.step.context)
        return result, tuple(a - b for a, b in zip(after, before, strict=True))

    def unload(self) -> None:
        self.step.unload()


# -- in the driver -------------------------------------------------------------------------
def _original(error: BaseException) -> BaseException:
    """The step's own exception inside Ray's wrapper, with the worker's traceback."""
    cause = getattr(error, "cause", None)
    if not isinstance(cause, BaseException):
        return error
    remote = str(error)  # Ray's message: the worker's traceback
    add_note = getattr(cause, "add_note", None)
    if remote and callable(add_note):
        add_note(f"raised in a Ray worker:\n{remote}")
    return cause


class _RayPending:
    def __init__(self, ref: Any, context: StepContext | None, inflight: set[Any],
                 stopping: threading.Event | None = None) -> None:
        self.ref = ref
        self.stopping = stopping
        self.context = context
        self.inflight = inflight
        self._done = False
        inflight.add(ref)

    def done(self) -> bool:
        if not self._done:
            ready, _ = ray.wait([self.ref], timeout=0, fetch_local=False)
            self._done = bool(ready)
        return self._done

    def result(self) -> pa.Table | StoredBatch:
        while self.stopping is not None and not self.done():
            if self.stopping.is_set():  # Ctrl-C or a failure elsewhere: stop waiting
                ray.cancel(self.ref)
                raise RunStopped("ray")
            ray.wait([self.ref], timeout=0.2, fetch_local=False)
        try:
            result, counts = ray.get(self.ref)
        except ray.exceptions.RayTaskError as error:
            raise _original(error) from None
        finally:
            self.inflight.discard(self.ref)
        if self.context is not None and any(counts):
            self.context.count(*counts)
        return result


def _stateful(step: Any) -> bool:
    return (bool(getattr(step, "io_bound", False))
            or type(step).load is not StepBase.load
            or "replicas" in resource_options(step))


_REMOTE: list[Any] = []


def _remote_task() -> Any:
    """``_run_task`` as a Ray remote function (made once: Ray exports it once)."""
    if not _REMOTE:
        _REMOTE.append(ray.remote(_run_task))
    return _REMOTE[0]


class _StepRunner:
    """Where one step's batches go: Ray tasks, or a pool of actors."""

    def __init__(self, step: Any, payload: bytes, kind: tuple[bool, bool], cpus: int,
                 window: int | None) -> None:
        stateful, io_bound = kind
        options = resource_options(step)
        self.replicas = max(1, int(options.pop("replicas", 1)))
        context = step.context
        self.context_fields = None if context is None else (
            context.pipeline, context.step, context.key, context.signature,
            context.cache_dir)
        self.actors: list[Any] = []
        if stateful:
            options.setdefault("num_cpus", 0 if io_bound else 1)
            actor = ray.remote(_StepActor).options(
                name=None, max_concurrency=1, max_restarts=_RETRIES,
                max_task_retries=_RETRIES, **options)
            self.actors = [actor.remote(payload, self.context_fields)
                           for _ in range(self.replicas)]
            self._next = itertools.cycle(self.actors)
            self.window = 1 if step.kind == "global" else 2 * self.replicas
        else:
            options.setdefault("num_cpus", 1)
            self.task = _remote_task().options(max_retries=_RETRIES, **options)
            self.token = uuid.uuid4().hex
            self.payload = ray.put(payload)
            self.window = 1 if step.kind == "global" else (window or 2 * cpus)

    def submit(self, job: _Job) -> Any:
        if self.actors:
            return next(self._next).run.remote(job)
        return self.task.remote(self.token, self.payload, self.context_fields, job)

    def close(self) -> None:
        if self.actors:
            with contextlib.suppress(Exception):  # a dead actor has nothing to unload
                ray.get([a.unload.remote() for a in self.actors], timeout=60)
            for actor in self.actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
        self.actors = []


class RayBackend:
    """Compute batches on Ray. Options (``backend_options``):

    - ``address``: the cluster (``"auto"``, ``"ray://host:10001"``); without it, a Ray
      already started in this process is used, else a local one is started.
    - ``num_cpus``: CPUs of the local Ray started here (default: all).
    - ``window``: batches of a stateless step in flight (default: 2 x cluster CPUs).
    - ``init_options``: more keyword arguments for ``ray.init``.
    - ``shutdown``: stop a Ray this backend started when the run ends (default: keep it
      for the next run; a Ray started by the user is never stopped).
    - ``worker_io``: whether workers read their inputs from the cache and write their
      outputs there, so that only references pass through the driver (default: yes for
      an object store; set True for a folder every node mounts at the same path).

    The executor drives every step computed on Ray from a thread of its own (``threaded``)
    that blocks on its next result instead of polling for it, and does not load those
    steps in the driver (``loads_here``): their clients open in the workers only.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 window: int | None = None, init_options: dict[str, Any] | None = None,
                 shutdown: bool = False, worker_io: bool | None = None) -> None:
        self.address = address
        self.worker_io_option = worker_io
        self.num_cpus = num_cpus
        self.window_size = window
        self.init_options = dict(init_options or {})
        self.shutdown = shutdown
        self._started = False
        self._cpus = 1
        self._payloads: dict[str, bytes] = {}
        self._errors: dict[str, BaseException] = {}
        self._runners: dict[str, _StepRunner] = {}
        self._inflight: set[Any] = set()
        self._kinds: dict[str, tuple[bool, bool]] = {}  # name -> (stateful, io_bound)
        self._stopping: threading.Event | None = None

    def start(self, pipeline: Any) -> None:
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, **self.init_options}
            if self.address is not None:
                options["address"] = self.address
            elif self.num_cpus is not None:
                options["num_cpus"] = self.num_cpus
            ray.init(**options)
            self._started = True
        self._cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        steps = [s for s in pipeline.steps.values() if s.kind != "generator"]
        with by_value(user_modules(steps)):
            for step in steps:
                try:
                    self._payloads[step.name] = dumps(step)
                except Exception as error:  # raised when the step has a batch to run
                    self._errors[step.name] = error
        for step in steps:
            self._kinds[step.name] = (_stateful(step), bool(getattr(step, "io_bound", False)))

    def threaded(self, step: Any) -> bool:
        return step.name in self._kinds  # the driver only waits: a thread blocking on Ray

    def loads_here(self, step: Any) -> bool:
        return step.name not in self._kinds

    def bind(self, stopping: threading.Event) -> None:
        self._stopping = stopping

    def stop(self) -> None:
        for ref in list(self._inflight):  # batches left behind by a failure or Ctrl-C
            with contextlib.suppress(Exception):
                if ray.wait([ref], timeout=0, fetch_local=False)[0]:
                    ray.get(ref)  # retrieved, so Ray does not log its error as unhandled
                else:
                    ray.cancel(ref)
        self._inflight.clear()
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()
        self._payloads.clear()
        self._errors.clear()
        if self._started and self.shutdown:
            ray.shutdown()
            self._started = False

    def _runner(self, step: Any) -> _StepRunner:
        runner = self._runners.get(step.name)
        if runner is None:
            if step.name in self._errors:
                error = self._errors[step.name]
                msg = (f"step {step.name!r} cannot be sent to Ray workers: "
                       f"{type(error).__name__}: {error}")
                raise TypeError(msg) from error
            runner = _StepRunner(step, self._payloads[step.name], self._kinds[step.name],
                                 self._cpus, self.window_size)
            self._runners[step.name] = runner
        return runner

    def window(self, step: Any) -> int:
        return self._runner(step).window

    def worker_io(self, step: Any, store: SegmentStore) -> bool:
        """Workers read and write the cache themselves when it is an object store
        (``backend_options={"worker_io": True}`` also for a folder every node mounts at
        the same path). For a local folder the driver does it: on one machine that is as
        fast, and it groups cheap batches into fewer, better compressed files."""
        if self.worker_io_option is not None:
            return self.worker_io_option
        return not store.local

    def submit(self, step: Any, tables: list[pa.Table]) -> Pending:
        return self._submit(step, _Job(tables))

    def submit_stored(self, step: Any, store: SegmentStore, inputs: list[list[Piece]],
                      target: BatchTarget) -> Pending:
        return self._submit(step, _Job(inputs, store, target))

    def _submit(self, step: Any, job: _Job) -> Pending:
        ref = self._runner(step).submit(job)
        return _RayPending(ref, step.context, self._inflight, self._stopping)
