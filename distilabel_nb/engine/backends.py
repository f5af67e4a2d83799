"""Where a step's batches are computed: here (the default) or on a cluster.

The executor hands each batch to ``backend.submit(step, tables)`` and gets a ``Pending``
back; it keeps up to ``backend.window(step)`` batches of a step in flight and publishes
their results in order. The local backend computes at once (a window of one), so a
local run behaves exactly as if the executor called the step itself; a step with
``replicas`` gets threads of its own (``replicas.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa

from distilabel_nb.cache.store import SegmentStore
from distilabel_nb.engine.remote import BatchTarget, Piece, StoredBatch, compute_stored
from distilabel_nb.engine.replicas import ThreadReplicas, replicas_of

__all__ = ["Backend", "LocalBackend", "Pending", "hook", "register_backend", "resolve_backend"]


def hook(backend: Any, name: str, default: Any) -> Any:
    """An optional backend hook, or a stand-in returning ``default``."""
    method = getattr(backend, name, None)
    return method if callable(method) else (lambda *args: default)


class Pending(Protocol):
    def done(self) -> bool: ...

    def result(self) -> pa.Table | StoredBatch: ...


class Backend(Protocol):
    """Hooks the executor calls; the last five are optional (see ``LocalBackend``)."""

    name: str

    def start(self, pipeline: Any) -> None: ...

    def stop(self) -> None: ...

    def window(self, step: Any) -> int: ...

    def submit(self, step: Any, tables: list[pa.Table]) -> Pending: ...

    def threaded(self, step: Any) -> bool:
        """Drive this step from a thread of its own (it blocks on remote results)."""
        ...

    def loads_here(self, step: Any) -> bool:
        """Call the step's ``load()``/``unload()`` in this process (False: remote)."""
        ...

    def bind(self, stopping: threading.Event) -> None:
        """The run's stop event: pending results should stop waiting once it is set."""
        ...

    def worker_io(self, step: Any, store: SegmentStore) -> bool:
        """Whether this step's workers read their inputs from ``store`` and write their
        outputs there themselves (then ``submit_stored`` is called instead of ``submit``)."""
        ...

    def submit_stored(self, step: Any, store: SegmentStore, inputs: list[list[Piece]],
                      target: BatchTarget) -> Pending:
        """Compute one batch from pieces and write it (``remote.compute_stored``)."""
        ...


class _Done:
    def __init__(self, result: pa.Table | StoredBatch | None,
                 error: BaseException | None) -> None:
        self._result = result
        self._error = error

    @classmethod
    def of(cls, func: Any, *args: Any) -> _Done:
        """``func(*args)`` computed now; its exception is raised again by ``result()``."""
        try:
            return cls(func(*args), None)
        except Exception as error:
            return cls(None, error)

    def done(self) -> bool:
        return True

    def result(self) -> pa.Table | StoredBatch:
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


class LocalBackend:
    """Compute each batch right away in the calling thread; the batches of a step with
    ``replicas`` (N > 1) in N threads, up to 2N in flight, from a driver thread."""

    name = "local"

    def __init__(self) -> None:
        self._replicas = ThreadReplicas()

    def start(self, pipeline: Any) -> None:
        return None

    def stop(self) -> None:
        self._replicas.close()

    def window(self, step: Any) -> int:
        replicas = replicas_of(step)
        return 1 if replicas == 1 else 2 * replicas

    def threaded(self, step: Any) -> bool:
        return replicas_of(step) > 1

    def loads_here(self, step: Any) -> bool:
        return True

    def bind(self, stopping: threading.Event) -> None:
        return None

    def worker_io(self, step: Any, store: SegmentStore) -> bool:
        return False

    def submit(self, step: Any, tables: list[pa.Table]) -> Pending:
        if replicas_of(step) > 1:
            return self._replicas.submit(step, tables)
        return _Done.of(step.run_batch, tables)

    def submit_stored(self, step: Any, store: SegmentStore, inputs: list[list[Piece]],
                      target: BatchTarget) -> Pending:
        return _Done.of(compute_stored, step, store, inputs, target)


#: Backends by name: "local" here; packages add theirs (``distilabel_nb.backends``
#: registers "ray") with ``register_backend``.
_REGISTRY: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Make ``run(backend=name, backend_options=...)`` call ``factory(**options)``."""
    _REGISTRY[name] = factory


def resolve_backend(backend: str | Backend | None, **options: Any) -> Backend:
    """``None``/"local" -> LocalBackend; a registered name -> its factory's backend; a
    Backend object as it is."""
    if backend is None:
        backend = "local"
    if not isinstance(backend, str):
        return backend
    factory = _REGISTRY.get(backend)
    if factory is None:
        known = ", ".join(repr(n) for n in sorted(_REGISTRY))
        msg = f"unknown backend {backend!r}: use one of {known}, or pass a Backend object"
        raise ValueError(msg)
    return factory(**options)


register_backend("local", lambda **options: LocalBackend())
