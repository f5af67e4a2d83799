"""lineage.py: ``cache clear --step`` finds every step computed from the cleared one, by
the predecessor keys each run record keeps (routed edges and steps with many inputs
included), and still by searching in records written before those keys were kept."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator
from typing import Any

from distilabel_nb import Pipeline
from distilabel_nb.cache.admin import cache_clear
from distilabel_nb.cache.lineage import downstream_keys
from distilabel_nb.cache.sqlite import SQLiteManifest
from distilabel_nb.steps import LoadDataFromDicts, Step

from .test_routing import build as build_routed


class Tag(Step):
    """``<name> = i + offset``: one of several branches joined below (each its own
    offset: identical steps share one cache key, whatever their names)."""

    offset: int = 0

    @property
    def inputs(self) -> list[str]:
        return ["i"]

    @property
    def outputs(self) -> list[str]:
        return [self.name or ""]

    def process(self, *inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        yield [{**row, self.name or "": row["i"] + self.offset} for row in inputs[0]]


class Join(Step):
    """Merges its inputs row by row."""

    @property
    def inputs(self) -> list[str]:
        return ["i"]

    @property
    def outputs(self) -> list[str]:
        return ["joined"]

    def process(self, *inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        rows = [dict(row) for row in inputs[0]]
        for other in inputs[1:]:
            for row, extra in zip(rows, other, strict=True):
                row.update(extra)
        yield [{**row, "joined": len(inputs)} for row in rows]


def wide(cache: pathlib.Path) -> Pipeline:
    """load >> [b1, b2, b3, b4, b5] >> join: a step with five predecessors."""
    with Pipeline(name="wide", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"i": i} for i in range(30)])
        load >> [Tag(name=f"b{k}", offset=k) for k in range(1, 6)] >> Join(name="join")
    return pipeline


def statuses(pipeline: Pipeline) -> dict[str, str]:
    assert pipeline.last_run is not None
    return {name: report.status for name, report in pipeline.last_run.steps.items()}


def test_clear_reaches_a_step_with_five_inputs(tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "cache"
    first = wide(cache).run(progress=False)["default"]["train"].to_list()
    cache_clear(cache, "wide", step="b2")
    again = wide(cache)
    assert again.run(progress=False)["default"]["train"].to_list() == first
    assert statuses(again) == {"load": "hit", "b1": "hit", "b2": "miss", "b3": "hit",
                               "b4": "hit", "b5": "hit", "join": "miss"}


def test_clear_follows_routed_edges(tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "cache"
    build_routed(cache, []).run(progress=False)
    cache_clear(cache, "routed", step="load")
    again = build_routed(cache, [])
    again.run(progress=False)
    assert set(statuses(again).values()) == {"miss"}


def test_records_from_before_upstream_keys_are_searched(tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "cache"
    wide(cache).run(progress=False)
    manifest = SQLiteManifest(cache / "v1" / "manifest.sqlite")
    runs = manifest.runs("wide")
    manifest.close()
    keys = {r.step: r.key for r in runs}
    assert all(r.upstream is not None for r in runs)
    walked = downstream_keys(runs, {keys["b2"]})
    old = [dataclasses.replace(r, upstream=None) for r in runs]
    searched = downstream_keys(old, {keys["b2"]})
    assert walked == {keys["join"]}
    assert searched == set()  # five predecessors: beyond what the search tries
    three = [r for r in old if r.step not in ("b4", "b5")]
    assert downstream_keys(three, {keys["load"]}) == {keys[s] for s in ("b1", "b2", "b3")}
