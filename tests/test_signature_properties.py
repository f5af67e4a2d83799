"""Property tests of cache keys: stable across processes and hash seeds, blind to dict
order, and changed by every change of every parameter."""

from __future__ import annotations

import json
import os
import pathlib
import random
import subprocess
import sys
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distilabel_nb import Pipeline, Secret
from distilabel_nb.cache.signature import hash_value
from distilabel_nb.engine.plan import step_keys
from distilabel_nb.llms.offline import OfflineLLM
from distilabel_nb.steps import LoadDataFromDicts, Step

REPO = pathlib.Path(__file__).resolve().parent.parent

json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10)
# Values off the JSON fast path: tuples, sets, bytes, big ints, non-str keys.
tagged_scalars = (json_scalars | st.binary(max_size=12) | st.integers(2**64, 2**70)
                  | st.frozensets(st.text(max_size=5), max_size=4))
tagged_values = st.recursive(
    tagged_scalars,
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(st.integers() | st.text(max_size=5), inner, max_size=4)),
    max_leaves=10)


def _reordered(value: Any) -> Any:
    """The same value with every dict's insertion order reversed."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_reordered(v) for v in value)
    return value


@settings(max_examples=60)
@given(json_values | tagged_values)
def test_dict_order_does_not_count(value: Any) -> None:
    assert hash_value(value) == hash_value(_reordered(value))


@settings(max_examples=60)
@given(json_values, json_values)
def test_different_json_values_hash_differently(a: Any, b: Any) -> None:
    if a != b:
        assert hash_value(a) != hash_value(b)


@settings(max_examples=60)
@given(tagged_values, tagged_values)
def test_different_values_hash_differently(a: Any, b: Any) -> None:
    if a != b and type(a) is type(b):
        assert hash_value(a) != hash_value(b)


def test_non_finite_floats_are_not_none() -> None:
    keys = {hash_value({"t": v}) for v in (None, float("nan"), float("inf"), float("-inf"))}
    assert len(keys) == 4


# -- stable across processes and PYTHONHASHSEED ----------------------------------------------
def _sample_values(n: int = 60) -> list[Any]:
    """Nested values with sets of strings (whose iteration order follows the hash seed)."""
    rng = random.Random(11)

    def value(depth: int) -> Any:
        kind = rng.randrange(8 if depth < 3 else 5)
        if kind == 0:
            return rng.randrange(-10**6, 10**6)
        if kind == 1:
            return rng.random() * 10**rng.randrange(-5, 5)
        if kind == 2:
            return "".join(rng.choice("abcxyzé漢 ") for _ in range(rng.randrange(8)))
        if kind == 3:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(6)))
        if kind == 4:
            return {f"s{rng.randrange(99)}" for _ in range(rng.randrange(1, 6))}
        if kind == 5:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        if kind == 6:
            return tuple(value(depth + 1) for _ in range(rng.randrange(4)))
        return {f"k{rng.randrange(50)}": value(depth + 1) for _ in range(rng.randrange(5))}

    return [value(0) for _ in range(n)]


_CHILD = """
import ast, json, sys
from distilabel_nb.cache.signature import hash_value
from distilabel_nb.engine.plan import step_keys
from tests.golden import golden_pipeline
values = ast.literal_eval(sys.stdin.read())
gold = {name: k for name, (k, _, _) in step_keys(golden_pipeline.build("/nonexistent")).items()}
print(json.dumps({"values": [hash_value(v) for v in values], "golden": gold}))
"""


def _child_hashes(values: list[Any], seed: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _CHILD], input=repr(values), text=True,
                          capture_output=True, env=env, cwd=REPO, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_keys_are_stable_across_processes_and_hash_seeds() -> None:
    values = _sample_values()
    results = [_child_hashes(values, seed) for seed in ("0", "1", "12345", "random")]
    assert all(r == results[0] for r in results[1:])
    assert results[0]["values"] == [hash_value(v) for v in values]
    # Distinct values, distinct keys (a tuple hashes as the list it would be in JSON).
    canonical = {json.dumps(v, sort_keys=True, default=repr) for v in values}
    assert len(set(results[0]["values"])) >= len(canonical)


def test_keys_of_a_pipeline_do_not_depend_on_the_process_or_the_cache_dir() -> None:
    """A cache key names no path and no process: a child process gets the same keys."""
    from tests.golden import golden_pipeline

    child = _child_hashes([], "7")["golden"]
    here = {name: k for name, (k, _, _) in step_keys(golden_pipeline.build("/elsewhere")).items()}
    assert child == here


# -- every parameter counts ------------------------------------------------------------------
class Params(Step):
    """A step with a field of every kind."""

    text: str = "a"
    n: int = 1
    ratio: float = 0.5
    flag: bool = False
    items: list[Any] = []
    opts: dict[str, Any] = {}
    llm: Any = None
    api_key: str | None = None
    token: Secret[str] = None

    def process(self, rows: list[dict[str, Any]]) -> Any:  # type: ignore[override]
        yield rows


FIELD_VALUES: dict[str, Any] = {
    "text": st.text(max_size=30),
    "n": st.integers(),
    "ratio": st.floats(allow_nan=False, allow_infinity=False),
    "flag": st.booleans(),
    "items": st.lists(json_scalars, max_size=5),
    "opts": st.dictionaries(st.text(max_size=6), json_values, max_size=4),
}
LLM_VALUES: dict[str, Any] = {
    "model": st.text(min_size=1, max_size=20),
    "generation_kwargs": st.dictionaries(st.sampled_from(["temperature", "top_p", "max_tokens"]),
                                         st.floats(0, 2) | st.integers(1, 4096), max_size=3),
}


def _keys(step_factory: Any) -> dict[str, str]:
    with Pipeline(name="props", cache_dir="/nonexistent") as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"x": 1}])
        load >> step_factory()
    return {name: key for name, (key, _, _) in step_keys(pipeline).items()}


def _base() -> Params:
    return Params(name="p", llm=OfflineLLM(), api_key="sk-1", token="t-1")


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_parameter_change_changes_the_key(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(sorted(FIELD_VALUES)))
    value = data.draw(FIELD_VALUES[field].filter(lambda v: v != getattr(_base(), field)
                                                 or type(v) is not type(getattr(_base(), field))))

    def changed() -> Params:
        step = _base()
        setattr(step, field, value)
        return step

    before, after = _keys(_base), _keys(changed)
    assert before["load"] == after["load"]
    assert before["p"] != after["p"], f"{field}: {getattr(_base(), field)!r} -> {value!r}"


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_llm_parameter_change_changes_the_key(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(sorted(LLM_VALUES)))
    value = data.draw(LLM_VALUES[field].filter(lambda v: v != getattr(OfflineLLM(), field)))

    def changed() -> Params:
        step = _base()
        setattr(step.llm, field, value)
        return step

    assert _keys(_base)["p"] != _keys(changed)["p"], f"llm.{field} -> {value!r}"


@settings(max_examples=20)
@given(st.text(min_size=1), st.text(min_size=1))
def test_secrets_never_change_the_key(key: str, token: str) -> None:
    def other() -> Params:
        return Params(name="p", llm=OfflineLLM(), api_key=key, token=token)

    assert _keys(_base)["p"] == _keys(other)["p"]


@settings(max_examples=20)
@given(st.dictionaries(st.text(max_size=6), json_values, min_size=2, max_size=5))
def test_parameter_dict_order_does_not_change_the_key(opts: dict[str, Any]) -> None:
    def forward() -> Params:
        return Params(name="p", opts=opts)

    def backward() -> Params:
        return Params(name="p", opts=_reordered(opts))

    assert _keys(forward)["p"] == _keys(backward)["p"]


def test_a_changed_upstream_changes_every_downstream_key() -> None:
    def build(n: int) -> dict[str, str]:
        with Pipeline(name="chain", cache_dir="/nonexistent") as pipeline:
            load = LoadDataFromDicts(name="load", data=[{"x": n}])
            load >> Params(name="a") >> Params(name="b")
        return {name: key for name, (key, _, _) in step_keys(pipeline).items()}

    one, two = build(1), build(2)
    assert all(one[name] != two[name] for name in ("load", "a", "b"))
