"""How a step travels to Ray workers: cloudpickle bytes taken before the run loads it.

Classes from ``__main__`` (a notebook) and from modules that are not installed packages
go by value, so workers need only ``distilabel_nb``. What a step may hold that only means
something in this process travels as a fresh equivalent: a lock as a new unlocked lock,
an event loop as None (made again on use). The step's pipeline and run context stay
behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pickle
import sys
import sysconfig
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from ray import cloudpickle

__all__ = ["by_value", "dumps", "user_modules"]


def _installed(module: ModuleType) -> bool:
    """Whether ``module`` comes from the standard library or an installed package."""
    path = getattr(module, "__file__", None)
    if path is None:
        return True  # built-in or namespace: nothing to ship
    path = os.path.realpath(path)
    roots = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return any(path.startswith(os.path.realpath(r) + os.sep) for r in roots)


def user_modules(steps: list[Any]) -> list[ModuleType]:
    """Modules of the steps' code that workers may not be able to import."""
    names: set[str] = set()
    for step in steps:
        for cls in type(step).__mro__:
            names.add(cls.__module__)
        func = getattr(type(step), "_func", None)  # @step functions
        if func is not None:
            names.add(getattr(func, "__module__", "") or "")
    modules = []
    for name in sorted(names):
        if name in ("__main__", "builtins") or name.split(".")[0] == "distilabel_nb":
            continue  # __main__ goes by value anyway; distilabel_nb is on every worker
        module = sys.modules.get(name)
        if module is not None and not _installed(module):
            modules.append(module)
    return modules


@contextlib.contextmanager
def by_value(modules: list[ModuleType]) -> Iterator[None]:
    registered = []
    try:
        for module in modules:
            with contextlib.suppress(ValueError):  # already registered
                cloudpickle.register_pickle_by_value(module)
                registered.append(module)
        yield
    finally:
        for module in registered:
            with contextlib.suppress(ValueError):
                cloudpickle.unregister_pickle_by_value(module)


_LOCKS = (type(threading.Lock()), type(threading.RLock()))


def _fresh_lock(reentrant: bool) -> Any:
    return threading.RLock() if reentrant else threading.Lock()


def _nothing() -> None:
    return None


class _StepPickler(cloudpickle.CloudPickler):
    """cloudpickle, plus fresh stand-ins for locks and event loops."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCKS):
            return _fresh_lock, (isinstance(obj, _LOCKS[1]),)
        if isinstance(obj, asyncio.AbstractEventLoop):
            return _nothing, ()
        return super().reducer_override(obj)


def dumps(step: Any) -> bytes:
    """The step as bytes, without its pipeline (locks, listeners) or run context."""
    saved = step.pipeline, step.context
    step.pipeline = step.context = None
    try:
        buffer = io.BytesIO()
        _StepPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(step)
        return buffer.getvalue()
    finally:
        step.pipeline, step.context = saved
