from __future__ import annotations

import pathlib

import pytest

from distilabel_nb import Pipeline
from distilabel_nb.steps import (
    CombineOutputs,
    ExpandColumns,
    GroupColumns,
    KeepColumns,
    LoadDataFromDicts,
    MergeColumns,
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


@step(inputs=["instruction"], outputs=["generation", "model_name"])
def ModelA(inputs: StepInput) -> StepOutput:
    yield [{**row, "generation": row["instruction"] + "!", "model_name": "a"}
           for row in inputs]


@step(inputs=["instruction"], outputs=["generation", "model_name"])
def ModelB(inputs: StepInput) -> StepOutput:
    yield [{**row, "generation": row["instruction"] + "?", "model_name": "b"}
           for row in inputs]


def test_group_columns_as_distilabel_docs_use_it(cache_dir: pathlib.Path) -> None:
    with Pipeline(name="group", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": "hi"}, {"instruction": "yo"}])
        group = GroupColumns(name="group", columns=["generation", "model_name"])
        load >> [ModelA(), ModelB()] >> group
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [
        {"instruction": "hi", "grouped_generation": ["hi!", "hi?"],
         "grouped_model_name": ["a", "b"]},
        {"instruction": "yo", "grouped_generation": ["yo!", "yo?"],
         "grouped_model_name": ["a", "b"]}]
    group.output_columns = ["generations", "models"]
    row = pipeline.run(progress=False)["default"]["train"][0]
    assert row["generations"] == ["hi!", "hi?"] and row["models"] == ["a", "b"]
    group.output_columns = ["only_one"]
    with pytest.warns(UserWarning, match="one name per column"):
        pipeline.run(progress=False)


def test_merge_columns_concatenates_into_one_list(cache_dir: pathlib.Path) -> None:
    with Pipeline(name="merge", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(data=[{"a": "x", "b": ["y", "z"], "keep": 1}])
        load >> MergeColumns(columns=["a", "b"], output_column="queries")
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [{"keep": 1, "queries": ["x", "y", "z"]}]
