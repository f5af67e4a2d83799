from __future__ import annotations

import pathlib

from distilabel_nb import Pipeline
from distilabel_nb.steps import (
    CombineOutputs,
    ExpandColumns,
    KeepColumns,
    LoadDataFromDicts,
    StepInput,
    StepOutput,
    step,
)


def test_keep_columns_selects_and_orders(cache_dir: pathlib.Path) -> None:
    with Pipeline(name="cols", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"a": 1, "b": 2, "c": 3}])
        load >> KeepColumns(name="keep", columns=["c", "a"])
    assert pipeline.run(progress=False)["default"]["train"].to_list() == [{"c": 3, "a": 1}]


def test_expand_columns_makes_one_row_per_element(cache_dir: pathlib.Path) -> None:
    data = [{"id": 1, "gens": ["x", "y"], "scores": [1, 2]}, {"id": 2, "gens": ["z"],
                                                             "scores": [3]}]
    with Pipeline(name="cols", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=data)
        load >> ExpandColumns(name="expand", columns={"gens": "gen", "scores": "scores"})
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [{"id": 1, "scores": 1, "gen": "x"}, {"id": 1, "scores": 2, "gen": "y"},
                    {"id": 2, "scores": 3, "gen": "z"}]


def test_combine_outputs_merges_aligned_branches(cache_dir: pathlib.Path) -> None:
    @step(inputs=["q"], outputs=["a1"])
    def First(inputs: StepInput) -> StepOutput:
        yield [{"q": r["q"], "a1": r["q"] + "1"} for r in inputs]

    @step(inputs=["q"], outputs=["a2"])
    def Second(inputs: StepInput) -> StepOutput:
        yield [{"a2": r["q"] + "2"} for r in inputs]

    with Pipeline(name="cols", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"q": str(i)} for i in range(120)])
        load >> [First(name="first"), Second(name="second")] >> CombineOutputs(name="combine")
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [{"q": str(i), "a1": f"{i}1", "a2": f"{i}2"} for i in range(120)]
