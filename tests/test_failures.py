"""Failed batches as distilabel handles them: the run goes on with None outputs, nothing
computed from them is cached, and the next run computes only what failed."""

from __future__ import annotations

import pathlib
from typing import Any

import pyarrow as pa
import pytest

from distilabel_nb import Pipeline, StepFailedError, StepFailedWarning
from distilabel_nb.engine.failures import impute_outputs
from distilabel_nb.steps import GlobalStep, LoadDataFromDicts, StepInput, StepOutput, step

from .conftest import CallLog

ROWS = [{"id": i, "text": f"t{i}"} for i in range(12)]


def test_impute_sets_the_outputs_to_none_under_their_mapped_names() -> None:
    @step(inputs=["text"], outputs=["score", "text"])
    def Score(inputs: StepInput) -> StepOutput:
        yield inputs

    with Pipeline(name="impute"):
        scorer = Score(name="score", output_mappings={"score": "rating"})
    table = pa.table({"id": [1, 2], "text": ["a", "b"]})
    out = impute_outputs(scorer, table)
    assert out.to_pylist() == [{"id": 1, "text": None, "rating": None},
                               {"id": 2, "text": None, "rating": None}]


def _build(cache: pathlib.Path, calls: CallLog, fail_on: set[int]) -> Pipeline:
    @step(inputs=["text"], outputs=["a"])
    def A(inputs: StepInput) -> StepOutput:
        calls.record("a", len(inputs))
        if inputs[0]["id"] in fail_on:
            raise RuntimeError(f"no luck on {inputs[0]['id']}")
        yield [{**row, "a": row["text"] + "!"} for row in inputs]

    @step(inputs=["a"], outputs=["b"])
    def B(inputs: StepInput) -> StepOutput:
        calls.record("b", len(inputs))
        yield [{**row, "b": None if row["a"] is None else row["a"] * 2} for row in inputs]

    with Pipeline(name="fails", cache_dir=cache) as pipeline:
        LoadDataFromDicts(name="load", data=ROWS, batch_size=4) >> A(
            name="a", input_batch_size=4) >> B(name="b", input_batch_size=4)
    return pipeline


def test_rows_after_a_failure_are_not_cached_downstream_and_are_recomputed(
        tmp_path: pathlib.Path, calls: CallLog) -> None:
    pipeline = _build(tmp_path, calls, fail_on={4, 8})
    with pytest.warns(StepFailedWarning) as caught:
        rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert sorted(str(w.message).split(":")[0] for w in caught) == [
        "step 'a' failed on batch 1 (4 rows)", "step 'a' failed on batch 2 (4 rows)"]
    assert [r["b"] for r in rows] == [f"t{i}!t{i}!" for i in range(4)] + [None] * 8
    assert pipeline.last_run is not None
    assert pipeline.last_run["a"].status == "failed"
    assert "batch 1 and 1 more failed (RuntimeError: no luck on 4)" in \
        pipeline.last_run["a"].reason
    # b ran without error on the None rows, but they depend on failed ones: not cached
    assert pipeline.last_run["b"].status == "failed"

    calls.clear()
    pipeline = _build(tmp_path, calls, fail_on=set())
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert [r["b"] for r in rows] == [f"t{i}!t{i}!" for i in range(12)]
    assert calls.rows("a") == 8 and calls.rows("b") == 8
    assert pipeline.last_run is not None
    assert pipeline.last_run.statuses() == {"load": "hit", "a": "partial", "b": "partial"}


def test_fail_fast_raises_the_first_failure(tmp_path: pathlib.Path, calls: CallLog) -> None:
    with pytest.raises(StepFailedError, match=r"step 'a' failed on batch 1 .*no luck on 4"):
        _build(tmp_path, calls, fail_on={4}).run(progress=False, fail_fast=True)


def test_a_global_step_that_raises_stops_the_run_as_in_distilabel(
        tmp_path: pathlib.Path) -> None:
    class Boom(GlobalStep):
        @property
        def inputs(self) -> list[str]:
            return ["text"]

        def process(self, *inputs: Any) -> Any:
            raise ValueError("global trouble")
            yield inputs

    with Pipeline(name="global", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=ROWS) >> Boom(name="boom")
    with pytest.raises(StepFailedError, match="global trouble"):
        pipeline.run(progress=False)
