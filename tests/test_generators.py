"""make_generator_step, run(dataset=...) and DataSampler, used as distilabel's docs use them."""

from __future__ import annotations

import pathlib

import datasets
import pandas as pd
import pytest

from distilabel_nb import Pipeline, PipelineValidationError
from distilabel_nb.steps import (
    DataSampler,
    LoadDataFromDicts,
    StepInput,
    StepOutput,
    make_generator_step,
    step,
)

CALLS: list[int] = []


@step(inputs=["instruction"], outputs=["n_chars"])
def CountChars(inputs: StepInput) -> StepOutput:
    CALLS.append(len(inputs))
    for row in inputs:
        row["n_chars"] = len(row["instruction"])
    yield inputs


def rows(words: list[str]) -> list[dict[str, str]]:
    return [{"instruction": w} for w in words]


@pytest.mark.parametrize("kind", ["list", "pandas", "datasets"])
def test_make_generator_step_feeds_the_pipeline_and_is_keyed_by_content(
        tmp_path: pathlib.Path, kind: str) -> None:
    def data(words: list[str]) -> object:
        if kind == "pandas":
            return pd.DataFrame(rows(words))
        if kind == "datasets":
            return datasets.Dataset.from_list(rows(words))
        return rows(words)

    def build(words: list[str]) -> Pipeline:
        with Pipeline(name=f"gen-{kind}", cache_dir=tmp_path) as pipeline:
            loader = make_generator_step(data(words), batch_size=2)
            loader >> CountChars(name="count")
        return pipeline

    first = build(["a", "bb", "ccc"])
    assert first.run(progress=False)["default"]["train"]["n_chars"][:] == [1, 2, 3]
    again = build(["a", "bb", "ccc"])
    again.run(progress=False)
    assert again.last_run is not None
    assert set(again.last_run.statuses().values()) == {"hit"}
    changed = build(["x", "yy", "zzzz"])  # same length, other content: a miss
    assert changed.run(progress=False)["default"]["train"]["n_chars"][:] == [1, 2, 4]
    assert changed.last_run is not None and changed.last_run["count"].status == "miss"


def test_run_with_a_dataset_feeds_the_root_steps(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="run-dataset", cache_dir=tmp_path) as pipeline:
        CountChars(name="count")
    CALLS.clear()
    distiset = pipeline.run(dataset=rows(["a", "bb"]), progress=False)
    assert distiset["default"]["train"].to_list() == [{"instruction": "a", "n_chars": 1},
                                                      {"instruction": "bb", "n_chars": 2}]
    assert pipeline.run(dataset=rows(["a", "bb"]), progress=False)["default"]["train"][1] == {
        "instruction": "bb", "n_chars": 2}
    assert CALLS == [2]  # the second run reused everything
    frame = pd.DataFrame(rows(["xyz", "q"]))
    distiset = pipeline.run(dataset=frame, dataset_batch_size=1, progress=False)
    assert distiset["default"]["train"]["n_chars"][:] == [3, 1]


def test_run_with_a_dataset_refuses_a_pipeline_that_has_a_generator(
        tmp_path: pathlib.Path) -> None:
    with Pipeline(name="has-loader", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=rows(["a"])) >> CountChars(name="count")
    with pytest.raises(PipelineValidationError, match="already has a generator step 'load'"):
        pipeline.run(dataset=rows(["b"]), progress=False)


def test_make_generator_step_names_what_it_takes() -> None:
    with pytest.raises(TypeError, match="list of dicts, a pandas DataFrame"):
        make_generator_step({"instruction": "a"})


def test_data_sampler_draws_size_rows_per_sample_reproducibly(tmp_path: pathlib.Path) -> None:
    data = [{"sample": f"sample {i}", "n": i} for i in range(30)]
    with Pipeline(name="sampler", cache_dir=tmp_path / "one") as pipeline:
        DataSampler(name="sampler", data=data, samples=10, size=2, batch_size=4)
    rows_out = pipeline.run(progress=False)["default"]["train"].to_list()
    assert len(rows_out) == 10
    assert all(len(r["sample"]) == 2 and r["sample"][0] == f"sample {r['n'][0]}"
               for r in rows_out)
    with Pipeline(name="sampler", cache_dir=tmp_path / "two") as other:
        DataSampler(name="sampler", data=data, samples=10, size=2, batch_size=4)
    assert other.run(progress=False)["default"]["train"].to_list() == rows_out
