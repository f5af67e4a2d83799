"""input_mappings / output_mappings as distilabel 1.5 applies them (its docs' usage)."""

from __future__ import annotations

import pathlib

import pyarrow as pa
import pytest

from distilabel_nb import Pipeline, PipelineValidationError
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step
from distilabel_nb.steps.mappings import map_inputs, map_outputs


@step(inputs=["instruction"], outputs=["n_chars"])
def CountChars(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["n_chars"] = len(row["instruction"])
    yield inputs


@step(inputs=["response"], outputs=["shout"])
def Shout(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["shout"] = row["response"].upper()
    yield inputs


def test_the_mapped_column_keeps_its_name_for_the_next_step(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="mapped", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(data=[{"response": "hello there"}])
        count = CountChars(input_mappings={"instruction": "response"})
        shout = Shout()
        load >> count >> shout
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [{"response": "hello there", "n_chars": 11, "shout": "HELLO THERE"}]


def test_a_column_under_the_input_name_is_set_aside_and_put_back(
        tmp_path: pathlib.Path) -> None:
    with Pipeline(name="aside", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": "hi", "response": "hello there"}])
        count = CountChars(input_mappings={"instruction": "response"})
        load >> count >> Shout()
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [{"response": "hello there", "n_chars": 11, "shout": "HELLO THERE",
                     "instruction": "hi"}]


def test_output_mappings_rename_the_outputs(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="out", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(data=[{"text": "abc"}], output_mappings={"text": "response"})
        count = CountChars(input_mappings={"instruction": "response"},
                           output_mappings={"n_chars": "length"})
        load >> count >> Shout()
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [{"response": "abc", "length": 3, "shout": "ABC"}]


def test_a_missing_mapped_column_names_the_step_and_the_fix(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="missing", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(data=[{"text": "abc"}])
        load >> CountChars(name="count", input_mappings={"instruction": "prompt"})
    with pytest.raises(PipelineValidationError, match=r"step 'count' needs the column "
                       r"'prompt' \(mapped from 'instruction'\).*input_mappings"):
        pipeline.run(progress=False)


def test_a_step_after_a_renamed_output_validates_on_the_new_name(
        tmp_path: pathlib.Path) -> None:
    with Pipeline(name="renamed", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": "abc"}])
        count = CountChars(output_mappings={"instruction": "response"})
        load >> count >> Shout()
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [{"response": "abc", "n_chars": 3, "shout": "ABC"}]


def test_several_generations_per_row_restore_the_set_aside_row() -> None:
    table = pa.table({"instruction": ["a", "b"], "response": ["x", "y"]})
    [seen], aside = map_inputs([table], {"instruction": "response"})
    assert seen.to_pylist() == [{"instruction": "x"}, {"instruction": "y"}]
    output = pa.table({"instruction": ["x", "y", "x", "y"], "gen": [1, 2, 3, 4]})
    passed = map_outputs(output, {"instruction": "response"}, {}, aside)
    assert passed.to_pylist() == [
        {"response": "x", "gen": 1, "instruction": "a"},
        {"response": "y", "gen": 2, "instruction": "b"},
        {"response": "x", "gen": 3, "instruction": "a"},
        {"response": "y", "gen": 4, "instruction": "b"}]
