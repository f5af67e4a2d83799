"""Routing batch functions: each batch goes to the steps the function picks, the step
after them gets each batch's outputs together, and, unlike distilabel 1.5.3 (whose
second run crashes), a re-run is a full hit because routing is reproducible."""

from __future__ import annotations

import collections
import pathlib
import random
from collections.abc import Iterator
from typing import Any

import pytest

from distilabel_nb import Pipeline, StepFailedError
from distilabel_nb.pipeline import routing_batch_function, sample_n_steps
from distilabel_nb.routing import RoutingBatchFunction
from distilabel_nb.steps import LoadDataFromDicts, Step

ROWS = [{"i": i} for i in range(100)]  # 10 batches of 10


class Generate(Step):
    """Stands in for an LLM: ``answer = i * factor``, tagged with the step's name."""

    signature_skip = frozenset({"log"})
    factor: int = 1
    log: Any = None

    @property
    def inputs(self) -> list[str]:
        return ["i"]

    @property
    def outputs(self) -> list[str]:
        return ["answer", "by"]

    def process(self, *inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        rows = inputs[0]
        self.log.append((self.name, rows[0]["i"] // 10))
        yield [{**row, "answer": row["i"] * self.factor, "by": self.name} for row in rows]


class Gather(Step):
    """Converges after the routed steps: one row per input row, with the batch's tags."""

    log: Any = None
    signature_skip = frozenset({"log"})

    @property
    def inputs(self) -> list[str]:
        return ["i", "answer", "by"]

    @property
    def outputs(self) -> list[str]:
        return ["sources"]

    def process(self, *inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        self.log.append(("gather", inputs[0][0]["i"] // 10))
        sources = ",".join(rows[0]["by"] for rows in inputs)
        yield [{**row, "sources": sources} for rows in inputs for row in rows]


def build(cache: pathlib.Path, log: list[tuple[str, int]],
          route: RoutingBatchFunction | None = None, a_factor: int = 1) -> Pipeline:
    with Pipeline(name="routed", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=ROWS, batch_size=10)
        a = Generate(name="a", factor=a_factor, log=log, input_batch_size=7)
        b = Generate(name="b", factor=2, log=log)
        c = Generate(name="c", factor=3, log=log)
        gather = Gather(name="gather", log=log)
        load >> (route or sample_n_steps(2)) >> [a, b, c] >> gather
    return pipeline


def statuses(pipeline: Pipeline) -> dict[str, str]:
    assert pipeline.last_run is not None
    return {name: report.status for name, report in pipeline.last_run.steps.items()}


def routes(log: list[tuple[str, int]]) -> dict[int, set[str]]:
    """Which routed steps computed each source batch."""
    got: dict[int, set[str]] = collections.defaultdict(set)
    for step, batch in log:
        if step != "gather":
            got[batch].add(step)
    return dict(got)


def test_batches_go_where_routed_and_the_rerun_is_a_full_hit(tmp_path: pathlib.Path) -> None:
    log: list[tuple[str, int]] = []
    pipeline = build(tmp_path / "cache", log)
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    routed = routes(log)
    assert sorted(routed) == list(range(10))
    assert all(len(steps) == 2 for steps in routed.values())  # two of three, per batch
    assert len({frozenset(s) for s in routed.values()}) > 1   # not always the same two
    # a's input_batch_size (7) does not split a routed batch: one batch in, one out.
    assert sorted(b for s, b in log if s == "gather") == list(range(10))
    assert len(rows) == 200
    for row in rows:  # each gathered row went through the steps its batch was routed to
        batch = row["i"] // 10
        assert set(row["sources"].split(",")) == routed[batch]
        assert row["by"] in routed[batch]
        assert row["answer"] == row["i"] * {"a": 1, "b": 2, "c": 3}[row["by"]]
    log.clear()
    again = build(tmp_path / "cache", log)
    assert again.run(progress=False)["default"]["train"].to_list() == rows
    assert log == [] and set(statuses(again).values()) == {"hit"}


def test_routing_is_reproducible_and_part_of_the_key(tmp_path: pathlib.Path) -> None:
    first: list[tuple[str, int]] = []
    build(tmp_path / "one", first).run(progress=False)
    second: list[tuple[str, int]] = []
    build(tmp_path / "two", second).run(progress=False)  # a fresh cache routes alike
    assert routes(first) == routes(second)

    log: list[tuple[str, int]] = []
    single = build(tmp_path / "one", log, route=sample_n_steps(1))
    single.run(progress=False)
    assert statuses(single) == {"load": "hit", "a": "miss", "b": "miss", "c": "miss",
                                "gather": "miss"}
    assert all(len(steps) == 1 for steps in routes(log).values())
    assert build(tmp_path / "x", [], route=sample_n_steps(1)).signature != \
        build(tmp_path / "x", []).signature

    @routing_batch_function
    def only_a(steps: list[str]) -> list[str]:
        return [steps[0]]

    log.clear()
    build(tmp_path / "one", log, route=only_a).run(progress=False)
    assert set(routes(log)) == set(range(10))
    assert {s for steps in routes(log).values() for s in steps} == {"a"}


def test_a_changed_routed_step_reruns_alone_with_the_step_after(tmp_path: pathlib.Path) -> None:
    log: list[tuple[str, int]] = []
    build(tmp_path / "cache", log).run(progress=False)
    routed_to_a = {batch for step, batch in log if step == "a"}
    log.clear()
    changed = build(tmp_path / "cache", log, a_factor=10)
    rows = changed.run(progress=False)["default"]["train"].to_list()
    assert statuses(changed) == {"load": "hit", "a": "miss", "b": "hit", "c": "hit",
                                 "gather": "miss"}
    assert {batch for step, batch in log if step == "a"} == routed_to_a  # same routes
    assert {step for step, _ in log} == {"a", "gather"}
    assert {r["answer"] for r in rows if r["by"] == "a"} == \
        {r["i"] * 10 for r in rows if r["by"] == "a"}


def test_a_bad_routing_function_fails_the_run_with_what_it_returned(
        tmp_path: pathlib.Path) -> None:
    @routing_batch_function
    def wrong(steps: list[str]) -> list[str]:
        return ["nope"]

    pipeline = build(tmp_path / "cache", [], route=wrong)
    with pytest.raises(StepFailedError, match=r"names steps it does not route to: \['nope'\]"):
        pipeline.run(progress=False)
    with pytest.raises(ValueError, match="n >= 1"):
        sample_n_steps(0)


def test_routing_leaves_the_callers_random_state_alone(tmp_path: pathlib.Path) -> None:
    random.seed(1234)
    state = random.getstate()
    build(tmp_path / "cache", []).run(progress=False)
    assert random.getstate() == state


def test_the_cache_graph_shows_routed_edges(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("anywidget")
    from distilabel_nb.notebook.widget import CacheGraph

    pipeline = build(tmp_path / "cache", [])
    graph = CacheGraph(pipeline)
    pipeline.run(progress=False, on_event=graph.handle_event)
    assert graph.svg.count("routed by sample_n(n=2)") == 3  # load -> a, b and c
    assert {v["status"] for v in graph.nodes.values()} == {"miss"}


@routing_batch_function()
def two_of_them(steps: list[str]) -> list[str]:
    """Written as distilabel's docs write it: called, above a module-level function."""
    return random.sample(steps, 2)


def test_one_routing_function_in_two_pipelines_and_twice_in_one(
        tmp_path: pathlib.Path) -> None:
    first: list[tuple[str, int]] = []
    build(tmp_path / "one", first, route=two_of_them).run(progress=False)
    second: list[tuple[str, int]] = []
    build(tmp_path / "two", second, route=two_of_them).run(progress=False)
    assert routes(first) == routes(second) and len(routes(first)) == 10
    assert all(len(steps) == 2 for steps in routes(first).values())

    log: list[tuple[str, int]] = []
    with Pipeline(name="twice", cache_dir=tmp_path / "twice") as pipeline:
        left = LoadDataFromDicts(name="left", data=ROWS, batch_size=10)
        right = LoadDataFromDicts(name="right", data=ROWS, batch_size=10)
        left >> two_of_them >> [Generate(name=n, log=log) for n in ("a", "b", "c")]
        right >> two_of_them >> [Generate(name=n, log=log) for n in ("d", "e", "f")]
    pipeline.run(progress=False)
    per_batch = routes(log)
    assert all(len(steps & {"a", "b", "c"}) == 2 and len(steps & {"d", "e", "f"}) == 2
               for steps in per_batch.values())
    assert set(pipeline.routers) == {"left", "right"}


def test_routing_batch_function_with_a_description_and_a_wrong_argument() -> None:
    @routing_batch_function("sends every batch to the first step")
    def first_only(steps: list[str]) -> list[str]:
        return steps[:1]

    assert first_only.description == "sends every batch to the first step"
    with pytest.raises(TypeError, match=r"@routing_batch_function\(\)"):
        routing_batch_function(3)  # type: ignore[call-overload]
