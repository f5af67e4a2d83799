from __future__ import annotations

import pathlib

import pytest

from distilabel_nb import Pipeline, PipelineValidationError
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step


@step(inputs=["prompt"], outputs=["answer"])
def Answer(inputs: StepInput, temperature: float = 0.5) -> StepOutput:
    for row in inputs:
        row["answer"] = row["prompt"]
    yield inputs


def test_missing_column_names_the_step_the_column_and_what_is_available(
        cache_dir: pathlib.Path) -> None:
    ran = []

    @step(inputs=["text"], outputs=["x"])
    def Never(inputs: StepInput) -> StepOutput:
        ran.append(1)
        yield inputs

    with Pipeline(name="v", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"text": "a"}])
        load >> Never(name="never") >> Answer(name="answer")
    with pytest.raises(PipelineValidationError,
                       match="step 'answer' needs the column 'prompt', which no predecessor "
                             "produces; available columns: text, x"):
        pipeline.run(progress=False)
    assert ran == []


def test_input_mappings_satisfy_validation_and_rename(cache_dir: pathlib.Path) -> None:
    with Pipeline(name="v", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"text": "a"}])
        load >> Answer(name="answer", input_mappings={"prompt": "text"},
                       output_mappings={"answer": "reply"})
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [{"text": "a", "reply": "a"}]


def test_unknown_runtime_parameters_are_refused_before_running(cache_dir: pathlib.Path) -> None:
    with Pipeline(name="v", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"prompt": "a"}])
        load >> Answer(name="answer")
    with pytest.raises(PipelineValidationError, match="step 'nope', which this pipeline does "
                                                      "not have; its steps are: load, answer"):
        pipeline.run(parameters={"nope": {}}, progress=False)
    with pytest.raises(PipelineValidationError, match="step 'answer' has no parameter 'temp'"):
        pipeline.run(parameters={"answer": {"temp": 1}}, progress=False)
    pipeline.run(parameters={"answer": {"temperature": 0.9}}, progress=False)
    assert pipeline.steps["answer"].temperature == 0.9  # type: ignore[attr-defined]
    pipeline.run(parameters={"answer": {"temperature": 0.1}}, progress=False)
    assert pipeline.last_run is not None
    assert pipeline.last_run["answer"].reason == "temperature changed 0.9 -> 0.1"


def test_structure_errors(cache_dir: pathlib.Path) -> None:
    with Pipeline(name="v", cache_dir=cache_dir) as pipeline:
        LoadDataFromDicts(name="load", data=[{"prompt": "a"}])
        with pytest.raises(ValueError, match="already has a step named 'load'"):
            LoadDataFromDicts(name="load", data=[])
        Answer(name="orphan")
    with pytest.raises(PipelineValidationError, match="step 'orphan' has no predecessor"):
        pipeline.run(progress=False)
    with pytest.raises(PipelineValidationError, match="has no steps"):
        Pipeline(name="empty", cache_dir=cache_dir).run(progress=False)


def test_generated_names_are_deterministic(cache_dir: pathlib.Path) -> None:
    def names() -> list[str]:
        with Pipeline(name="v", cache_dir=cache_dir) as pipeline:
            load = LoadDataFromDicts(data=[{"prompt": "a"}])
            load >> [Answer(), Answer()]
        return list(pipeline.steps)

    assert names() == names() == ["load_data_from_dicts_0", "answer_0", "answer_1"]
