"""Routing batch functions: each batch of a step goes to some of its successors only.

    @routing_batch_function
    def two_of_three(steps: list[str]) -> list[str]:
        return random.sample(steps, 2)

    load >> two_of_three >> [gen_a, gen_b, gen_c] >> combine
    load >> sample_n_steps(2) >> [gen_a, gen_b, gen_c] >> combine

As in distilabel, the function gets the names of the steps it routes to and returns those
that receive the batch. Unlike distilabel 1.5.3 (whose second run of such a pipeline
crashes), routing here is reproducible, so the cache stays valid: ``random`` is seeded,
for each batch, from the function's signature (its code and parameters) and the batch's
index, so a re-run sends every batch where it went before; changing the function, its
parameters or its targets changes the targets' cache keys.

A routed step takes each batch it receives as one input batch. A step after all the
routed steps (``combine`` above) gets, for each batch of the source, the outputs of the
steps that batch went to, one input per step, in the order of the targets.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any, Protocol, overload

from distilabel_nb.cache.signature import hash_value
from distilabel_nb.cache.source import code_fingerprint

__all__ = ["Routed", "RoutingBatchFunction", "as_routing_function",
           "routing_batch_function", "sample_n_steps"]

# ``random`` is process-wide: routing calls take turns while it is seeded.
_SEEDING = threading.Lock()


class Routed(Protocol):
    """A step as a routing function sees it (``steps`` sits above this module)."""

    name: str | None
    pipeline: Any

    def connect(self, *others: Any) -> None: ...


class RoutingBatchFunction:
    """A function choosing, per batch, which successors of a step receive it."""

    def __init__(self, func: Callable[[list[str]], list[str]],
                 parameters: dict[str, Any] | None = None,
                 description: str | None = None) -> None:
        self.func = func
        self.parameters = dict(parameters or {})
        self.description = description
        #: The factory that made it, as a dump names it: {"module", "name", "kwargs"}.
        self.factory: dict[str, Any] | None = None
        self.source: Routed | None = None
        self.targets: list[str] = []
        self._routes: dict[int, frozenset[str]] = {}
        self._signature: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        source = self.source.name if self.source is not None else None
        return f"RoutingBatchFunction({self.label}, source={source!r}, targets={self.targets})"

    @property
    def label(self) -> str:
        """How the graph names it: ``sample_n(n=2)``, or the function's name."""
        name = getattr(self.func, "__name__", type(self.func).__name__)
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        return f"{name}({arguments})" if arguments else name

    @property
    def signature(self) -> str:
        """Hash of the function's code, its parameters and the steps it routes to."""
        return hash_value({"code": code_fingerprint(self.func), "parameters": self.parameters,
                           "targets": self.targets})

    # -- declaration ---------------------------------------------------------------------
    def bind(self, source: Routed) -> RoutingBatchFunction:
        """``source >> self``: a copy routing ``source``'s batches, so one decorated
        function serves any number of steps and pipelines (as in distilabel)."""
        if self.source is source:
            return self
        bound = RoutingBatchFunction(self.func, self.parameters, self.description)
        bound.factory = self.factory
        bound.source = source
        return bound

    def __rshift__(self, other: Routed | list[Routed]) -> Any:
        """``self >> [a, b, c]``: the steps that batches can be routed to."""
        if self.source is None:
            msg = "a routing function routes a step's batches: write `step >> route >> [...]`"
            raise ValueError(msg)
        targets = other if isinstance(other, list) else [other]
        self.source.connect(*targets)
        self.targets.extend(t.name or "" for t in targets)
        pipeline = self.source.pipeline
        assert pipeline is not None  # source.connect above raised otherwise
        pipeline.add_router(self.source.name or "", self)
        return other

    # -- running -------------------------------------------------------------------------
    def route(self, index: int) -> frozenset[str]:
        """The targets that receive batch ``index`` (the same on every run)."""
        with self._lock:
            chosen = self._routes.get(index)
        if chosen is not None:
            return chosen
        with self._lock:  # the signature is fixed once the pipeline is declared
            if self._signature is None:
                self._signature = self.signature
            base = self._signature
        seed = int(hash_value({"routing": base, "batch": index})[:16], 16)
        with _SEEDING:
            saved = random.getstate()
            random.seed(seed)
            try:
                result = self.func(list(self.targets))
            finally:
                random.setstate(saved)
        chosen = frozenset(result)
        unknown = chosen - set(self.targets)
        if unknown or not chosen:
            what = (f"names steps it does not route to: {sorted(unknown)}" if unknown
                    else "chose no step")
            msg = (f"routing function {self!r} {what} for batch {index}; it must return a "
                   f"non-empty subset of {self.targets}")
            raise ValueError(msg)
        with self._lock:
            self._routes[index] = chosen
        return chosen


RoutingFunc = Callable[[list[str]], list[str]]


def as_routing_function(obj: Any) -> RoutingBatchFunction | None:
    """``obj`` if it is ours; ours over another library's routing function (distilabel's:
    its ``routing_function`` and the keyword arguments of the factory that made it, e.g.
    ``sample_n_steps(2)``); None for anything else."""
    if isinstance(obj, RoutingBatchFunction):
        return obj
    func = getattr(obj, "routing_function", None)
    if not callable(func) or isinstance(obj, type):
        return None
    kwargs = dict(getattr(obj, "_factory_function_kwargs", None) or {})
    ours = RoutingBatchFunction(func, kwargs, getattr(obj, "description", None))
    module = getattr(obj, "_factory_function_module", None)
    name = getattr(obj, "_factory_function_name", None)
    if module and name:
        ours.factory = {"module": module, "name": name, "kwargs": kwargs}
    return ours


@overload
def routing_batch_function(func: RoutingFunc, /) -> RoutingBatchFunction: ...


@overload
def routing_batch_function(description: str | None = None, /
                           ) -> Callable[[RoutingFunc], RoutingBatchFunction]: ...


def routing_batch_function(func: RoutingFunc | str | None = None, /) -> Any:
    """Decorator: ``func(steps) -> the steps that receive a batch``.

    Written bare (``@routing_batch_function``) or called as distilabel's is
    (``@routing_batch_function()``, ``@routing_batch_function("description")``).
    """
    if callable(func):
        return RoutingBatchFunction(func)
    if func is not None and not isinstance(func, str):
        msg = (f"routing_batch_function takes a function or a description, not "
               f"{type(func).__name__}: write `@routing_batch_function()` above "
               "`def route(steps: list[str]) -> list[str]`")
        raise TypeError(msg)

    def decorator(function: RoutingFunc) -> RoutingBatchFunction:
        return RoutingBatchFunction(function, description=func)

    return decorator


def _sample(n: int) -> Callable[[list[str]], list[str]]:
    def sample_n(steps: list[str]) -> list[str]:
        return random.sample(steps, min(n, len(steps)))

    return sample_n


def sample_n_steps(n: int) -> RoutingBatchFunction:
    """Each batch goes to ``n`` of the targets, drawn at random (reproducibly)."""
    if n < 1:
        msg = f"sample_n_steps needs n >= 1, not {n}"
        raise ValueError(msg)
    route = RoutingBatchFunction(_sample(n), {"n": n})
    route.factory = {"module": __name__, "name": "sample_n_steps", "kwargs": {"n": n}}
    return route
