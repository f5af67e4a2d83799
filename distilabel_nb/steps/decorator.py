"""``@step``: a generator function becomes a Step class, as in distilabel."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from distilabel_nb.cache.source import code_fingerprint
from distilabel_nb.steps.base import GeneratorStep, GlobalStep, Step, StepBase

__all__ = ["step"]

_BASES: dict[str, type[StepBase]] = {
    "normal": Step, "generator": GeneratorStep, "global": GlobalStep}


def step(inputs: Any = None, outputs: Any = None, step_type: str = "normal",
         row_wise: bool = False, io_bound: bool = False
         ) -> Callable[[Callable[..., Any]], type[StepBase]]:
    """Turn ``func(inputs: StepInput, **params)`` into a Step class named like ``func``.

    Keyword parameters of ``func`` after the inputs become the step's parameters
    (``RuntimeParameter[T]`` annotations make them settable at ``run(parameters=...)``).
    ``io_bound=True`` for steps that mostly wait (HTTP calls, a remote model): they run
    in a thread of their own, beside the other steps, instead of taking turns with them.
    """
    if step_type not in _BASES:
        msg = f"step_type must be one of {', '.join(_BASES)}, not {step_type!r}"
        raise ValueError(msg)

    def decorator(func: Callable[..., Any]) -> type[StepBase]:
        signature = inspect.signature(func)
        params = [p for p in signature.parameters.values()
                  if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is not inspect.Parameter.empty and p.name != "offset"]
        positional = [p for p in signature.parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                      and p.default is inspect.Parameter.empty]
        annotations = {p.name: (p.annotation if p.annotation is not inspect.Parameter.empty
                                else Any) for p in params}
        namespace: dict[str, Any] = {p.name: p.default for p in params}
        namespace["__annotations__"] = annotations
        namespace["__module__"] = func.__module__
        namespace["__doc__"] = func.__doc__
        namespace["row_wise"] = row_wise
        namespace["io_bound"] = io_bound
        namespace["_func"] = staticmethod(func)
        namespace["_declared"] = (list(inputs or []), list(outputs or []))
        names = [p.name for p in params]
        takes_offset = "offset" in signature.parameters

        def _kwargs(self: Any) -> dict[str, Any]:
            return {name: getattr(self, name) for name in names}

        def generate(self: Any, offset: int = 0) -> Any:
            extra = {"offset": offset} if takes_offset else {}
            return func(**extra, **_kwargs(self))

        def process(self: Any, *rows: Any) -> Any:
            if not positional:
                msg = f"@step function {func.__name__} must take the input rows as argument"
                raise TypeError(msg)
            return func(*rows, **_kwargs(self))

        namespace["process"] = generate if step_type == "generator" else process
        namespace["inputs"] = property(lambda self: self._declared[0])
        namespace["outputs"] = property(lambda self: self._declared[1])
        namespace["code_fingerprints"] = lambda self: {func.__name__: code_fingerprint(func)}
        cls = type(func.__name__, (_BASES[step_type],), namespace)
        cls.__qualname__ = func.__qualname__
        return cls

    return decorator
