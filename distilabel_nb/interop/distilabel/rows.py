"""Row-level reuse for distilabel Tasks: a cache in front of the LLM's ``generate_outputs``.

distilabel's ``Task.process`` formats every row of a batch and calls
``self.llm.generate_outputs(inputs=..., num_generations=..., **generation_kwargs)`` once.
While the step runs on our engine its ``llm`` is a ``RowCachedLLM``: each formatted input
is looked up in our row cache (``cache/rowcache.py``) under the LLM's description (every
field that can change an answer, secrets left out) and a row key of the formatted input,
``num_generations`` and the generation kwargs. Only the inputs the cache lacks are sent,
each once; answers are stored as soon as the call returns, with their token statistics,
which count as tokens used now and as tokens saved when a later run reuses them.

A row fails when its call raises or an answer is None (some distilabel LLMs return None
on an error instead of raising): it is never stored, it gets None answers as distilabel
would give it, and ``failures`` counts it so the step's batch is not committed and the
next run sends only the failed rows. When a call for several inputs raises, each input
is sent once more alone, so one bad row does not fail its whole batch. With distilabel's
offline batch generation the missing inputs go to the provider's batch API instead
(``offline.py``).
"""

from __future__ import annotations

import threading
from typing import Any

from distilabel_nb.cache.rowcache import RowCache, row_key
from distilabel_nb.cache.signature import UnhashableValueError, hash_value
from distilabel_nb.interop.distilabel.keys import LLM_NOT_IN_ROWS, describe_model

__all__ = ["RowCachedLLM", "input_key", "llm_signature"]


def llm_signature(llm: Any) -> str:
    """The row cache's signature for an LLM: the hash of what can change its answers."""
    return hash_value({"distilabel_llm": describe_model(llm, LLM_NOT_IN_ROWS)})


def input_key(formatted: Any, num_generations: int, kwargs: dict[str, Any]) -> str:
    """The row cache's key of one formatted input (UnhashableValueError if it has none)."""
    return row_key({"input": formatted, "num_generations": num_generations,
                    "generation_kwargs": kwargs})


def _tokens(output: dict[str, Any], name: str) -> int:
    values = (output.get("statistics") or {}).get(name) or []
    if isinstance(values, int):
        return values
    return sum(v for v in values if isinstance(v, int))


def _failed(output: Any) -> bool:
    if not isinstance(output, dict):
        return True
    generations = output.get("generations")
    return not isinstance(generations, list) or any(g is None for g in generations)


def _failure(num_generations: int) -> dict[str, Any]:
    """What distilabel's task makes of an input whose generation failed."""
    return {"generations": [None] * num_generations, "statistics": {}}


class RowCachedLLM:
    """Stands for a distilabel LLM while its task runs; everything but
    ``generate_outputs`` goes to the LLM itself."""

    def __init__(self, llm: Any, cache: RowCache, context: Any, reads: bool) -> None:
        object.__setattr__(self, "_llm", llm)
        object.__setattr__(self, "_cache", cache)
        object.__setattr__(self, "_context", context)
        object.__setattr__(self, "_reads", reads)
        object.__setattr__(self, "_signature", llm_signature(llm))
        object.__setattr__(self, "_local", threading.local())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._llm, name, value)

    def take_failures(self) -> tuple[int, str | None]:
        """Inputs that failed in this thread since the last call, and the last error an
        LLM call raised (then both reset)."""
        failures = int(getattr(self._local, "failures", 0))
        error = getattr(self._local, "error", None)
        self._local.failures, self._local.error = 0, None
        return failures, error

    def generate_outputs(self, inputs: list[Any], num_generations: int = 1,
                         **kwargs: Any) -> list[Any]:
        try:
            keys = [input_key(formatted, num_generations, kwargs) for formatted in inputs]
        except UnhashableValueError:  # e.g. a structured output given as a class
            return list(self._llm.generate_outputs(inputs=inputs,
                                                   num_generations=num_generations, **kwargs))
        cached = self._cache.get_many(self._signature, keys) if self._reads else {}
        todo: dict[str, int] = {}  # key -> the first input with it (duplicates sent once)
        for index, key in enumerate(keys):
            if key not in cached and key not in todo:
                todo[key] = index
        if self._llm.use_offline_batch_generation:  # the provider's batch API
            from distilabel_nb.interop.distilabel.offline import collect_offline

            answers = collect_offline(self._llm, self._cache.folder, self._signature,
                                      {key: inputs[i] for key, i in todo.items()},
                                      num_generations, kwargs, self._context) \
                if todo else {}
        else:
            fresh = self._send([inputs[i] for i in todo.values()], num_generations, kwargs)
            answers = dict(zip(todo, fresh, strict=True))
        self._store(answers)
        outputs: list[Any] = []
        reused = saved = failed = 0
        for key in keys:
            if key in cached:
                output, input_tokens, output_tokens = cached[key]
                reused += 1
                saved += input_tokens + output_tokens
            else:
                output = answers.get(key)
                if _failed(output):
                    failed += 1
                    output = _failure(num_generations)
            outputs.append(output)
        used = sum(_tokens(o, "input_tokens") + _tokens(o, "output_tokens")
                   for o in answers.values() if not _failed(o))
        self._local.failures = int(getattr(self._local, "failures", 0)) + failed
        if self._context is not None:
            self._context.count(reused=reused, computed=len(keys) - reused, failed=failed,
                                tokens_used=used, tokens_saved=saved)
        return outputs

    def _send(self, inputs: list[Any], num_generations: int,
              kwargs: dict[str, Any]) -> list[Any]:
        """The LLM's outputs for ``inputs``; an input whose call raised gets None."""
        if not inputs:
            return []
        try:
            return list(self._llm.generate_outputs(inputs=inputs,
                                                   num_generations=num_generations,
                                                   **kwargs))
        except Exception as error:
            self._local.error = f"{type(error).__name__}: {error}"
            if len(inputs) == 1:
                return [None]
        outputs: list[Any] = []
        for formatted in inputs:  # one failing input must not fail the others
            try:
                outputs.extend(self._llm.generate_outputs(
                    inputs=[formatted], num_generations=num_generations, **kwargs))
            except Exception as error:
                self._local.error = f"{type(error).__name__}: {error}"
                outputs.append(None)
        return outputs

    def _store(self, answers: dict[str, Any]) -> None:
        import orjson

        rows = []
        for key, output in answers.items():
            if _failed(output):
                continue
            try:
                orjson.dumps(output)
            except TypeError:
                continue  # not JSON (an LLM's own objects): not kept, sent again next time
            rows.append((key, output, _tokens(output, "input_tokens"),
                         _tokens(output, "output_tokens")))
        self._cache.put_many(self._signature, rows)
