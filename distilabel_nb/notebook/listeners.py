"""A graph's subscription to its pipeline's runs, ended when the graph is closed or
garbage-collected: the pipeline holds only a weak reference to the graph."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Protocol

from distilabel_nb.engine.events import RunEvent

__all__ = ["Subscription", "subscribe"]


class _Emitter(Protocol):
    def add_listener(self, listener: Callable[[RunEvent], None]) -> None: ...

    def remove_listener(self, listener: Callable[[RunEvent], None]) -> None: ...


class Subscription:
    """A listener calling a bound method while its object lives; it removes itself from
    the pipeline once the object is gone (or ``cancel()`` is called)."""

    def __init__(self, emitter: _Emitter, method: Callable[[RunEvent], Any]) -> None:
        self._method = weakref.WeakMethod(method)
        self._emitter = weakref.ref(emitter)
        emitter.add_listener(self)
        # The object may die between runs: leave the pipeline then, not at the next event.
        self._finalizer = weakref.finalize(method.__self__, self.cancel)  # type: ignore[attr-defined]

    def __call__(self, event: RunEvent) -> None:
        method = self._method()
        if method is None:
            self.cancel()
            return
        method(event)

    def cancel(self) -> None:
        emitter = self._emitter()
        if emitter is not None:
            emitter.remove_listener(self)
        self._finalizer.detach()


def subscribe(emitter: _Emitter, method: Callable[[RunEvent], Any]) -> Subscription:
    """Call ``method(event)`` for ``emitter``'s events as long as its object lives."""
    return Subscription(emitter, method)
