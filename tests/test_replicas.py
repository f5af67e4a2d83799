"""Replicas of a step take batches concurrently, in threads; results are committed in
batch order. Overlap is asserted on the batch start/end times the step records, not on
wall-clock thresholds."""

from __future__ import annotations

import itertools
import pathlib
import threading
import time
from typing import Any

import pytest

from distilabel_nb import Pipeline, StepFailedWarning
from distilabel_nb.engine.replicas import replicas_of
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step

ROWS = [{"id": i} for i in range(24)]


def _build(cache: pathlib.Path, spans: list[tuple[int, float, float]], resources: Any,
           fail_on: int | None = None) -> Pipeline:
    lock = threading.Lock()

    @step(inputs=["id"], outputs=["twice"])
    def Sleepy(inputs: StepInput) -> StepOutput:
        began = time.monotonic()
        time.sleep(0.2)
        if inputs[0]["id"] == fail_on:
            raise RuntimeError("replica trouble")
        with lock:
            spans.append((inputs[0]["id"], began, time.monotonic()))
        yield [{**row, "twice": row["id"] * 2} for row in inputs]

    with Pipeline(name="replicas", cache_dir=cache) as pipeline:
        LoadDataFromDicts(name="load", data=ROWS, batch_size=4) >> Sleepy(
            name="sleepy", input_batch_size=4, resources=resources)
    return pipeline


def _overlapping(spans: list[tuple[int, float, float]]) -> int:
    """How many pairs of batches ran at the same time."""
    return sum(1 for (_, a0, a1), (_, b0, b1) in itertools.combinations(spans, 2)
               if a0 < b1 and b0 < a1)


def test_two_replicas_take_batches_at_the_same_time(tmp_path: pathlib.Path) -> None:
    spans: list[tuple[int, float, float]] = []
    distiset = _build(tmp_path / "two", spans, {"replicas": 2}).run(progress=False)
    rows = distiset["default"]["train"].to_list()
    assert rows == [{"id": i, "twice": 2 * i} for i in range(24)]  # in batch order
    assert len(spans) == 6
    # six batches on two replicas: at least three pairs ran side by side
    assert _overlapping(spans) >= 3, spans
    # never more than two at once
    for _, start, _ in spans:
        assert sum(1 for _, s, e in spans if s <= start < e) <= 2

    one: list[tuple[int, float, float]] = []
    _build(tmp_path / "one", one, None).run(progress=False)
    assert _overlapping(one) == 0


def test_distilabel_step_resources_give_replicas(tmp_path: pathlib.Path) -> None:
    distilabel_steps = pytest.importorskip("distilabel.steps")
    resources = distilabel_steps.StepResources(replicas=3)
    spans: list[tuple[int, float, float]] = []
    pipeline = _build(tmp_path, spans, resources)
    assert replicas_of(pipeline.steps["sleepy"]) == 3
    pipeline.run(progress=False)
    assert any(sum(1 for _, s, e in spans if s <= start < e) == 3 for _, start, _ in spans)


def test_a_failed_batch_on_a_replica_goes_on_in_order(tmp_path: pathlib.Path) -> None:
    spans: list[tuple[int, float, float]] = []
    with pytest.warns(StepFailedWarning, match="step 'sleepy' failed on batch 2"):
        distiset = _build(tmp_path, spans, {"replicas": 2}, fail_on=8).run(progress=False)
    rows = distiset["default"]["train"].to_list()
    assert [r["id"] for r in rows] == list(range(24))
    assert [r["twice"] for r in rows] == [
        None if 8 <= i < 12 else 2 * i for i in range(24)]
