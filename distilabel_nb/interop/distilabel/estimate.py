"""What a plan says a distilabel Task will send, before anything runs.

The plan hands the task its input rows where they are known (a cached predecessor, an
in-memory loader). The task formats them as distilabel would (mappings, then
``format_input``, after the task's own ``load()`` without the LLM's), looks each formatted
input up in the row cache under the key ``rows.py`` uses when it runs, and counts what is
missing: rows to send, prompt tokens by the rule of four characters a token, answer
tokens from the mean of the answers already cached for this LLM (else the generation
kwargs' ``max_new_tokens``, else 128). distilabel's LLMs carry no prices, so the cost is
unknown (None).
"""

from __future__ import annotations

import pathlib
from typing import Any

import orjson
import pyarrow as pa

from distilabel_nb.cache.rowcache import RowCache
from distilabel_nb.cache.signature import UnhashableValueError
from distilabel_nb.interop.distilabel.rows import input_key, llm_signature

__all__ = ["estimate_task"]

#: distilabel's default ``max_new_tokens`` for most of its LLMs.
_DEFAULT_NEW_TOKENS = 128


def _chars(formatted: Any) -> int:
    try:
        return len(orjson.dumps(formatted))
    except TypeError:
        return len(str(formatted))


class _Idle:
    """An LLM whose ``load``/``unload`` do nothing: a task's own ``load()`` (which sets up
    its prompt template) runs for the plan without opening the LLM's client."""

    def __init__(self, llm: Any) -> None:
        object.__setattr__(self, "_llm", llm)

    def load(self) -> None:
        return None

    def unload(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)


def _load_task(step: Any) -> None:
    llm = step.__dict__["llm"]
    step.__dict__["llm"] = _Idle(llm)
    try:
        step.load()
    finally:
        step.__dict__["llm"] = llm


def estimate_task(step: Any, tables: list[pa.Table], rows_dir: Any,
                  use_cache: bool) -> dict[str, Any]:
    """``Task.estimate``'s figures for distilabel task ``step`` over ``tables``."""
    try:
        _load_task(step)
        inputs = tuple(table.to_pylist() for table in tables)
        if step.input_mappings:
            inputs, _ = step._apply_input_mappings(inputs)
        formatted = step._format_inputs(inputs[0])
        generations = int(step.num_generations)
        kwargs = dict(step.llm.get_generation_kwargs() or {})
        todo = {input_key(f, generations, kwargs): f for f in formatted}
    except (UnhashableValueError, AttributeError, KeyError, TypeError, ValueError) as error:
        return {"rows_to_send": None,
                "unknown": f"its inputs cannot be formatted before the run ({error})"}
    mean: float | None = None
    if use_cache and pathlib.Path(rows_dir, "rows.sqlite").exists():
        signature = llm_signature(step.llm)
        with RowCache(rows_dir) as cache:
            cached = cache.get_many(signature, list(todo))
            mean = cache.output_tokens_mean(signature)
        todo = {key: f for key, f in todo.items() if key not in cached}
    per_answer = mean if mean is not None else \
        float(kwargs.get("max_new_tokens") or _DEFAULT_NEW_TOKENS)
    return {"rows_to_send": len(todo),
            "est_input_tokens": sum(_chars(f) for f in todo.values()) // 4,
            "est_output_tokens": round(per_answer * generations * len(todo)),
            "est_cost": None}
