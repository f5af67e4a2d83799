from __future__ import annotations

import io
import pathlib

from distilabel_nb import Pipeline, RunEvent
from distilabel_nb.engine.progress import ProgressBars
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step


@step(inputs=["x"], outputs=["y"])
def Double(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["y"] = row["x"] * 2
    yield inputs


def build(cache_dir: pathlib.Path) -> Pipeline:
    with Pipeline(name="events", cache_dir=cache_dir) as pipeline:
        LoadDataFromDicts(name="load", data=[{"x": i} for i in range(100)], batch_size=10) >> \
            Double(name="double", input_batch_size=25)
    return pipeline


def test_a_run_emits_a_stream_of_events_the_report_is_built_from(
        cache_dir: pathlib.Path) -> None:
    events: list[RunEvent] = []
    pipeline = build(cache_dir)
    pipeline.run(progress=False, on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("step_planned") == 2
    # each step reports once, as soon as it ends (load first)
    finished = [e.step for e in events if e.kind == "step_finished"]
    assert finished == ["load", "double"]
    done = [e for e in events if e.kind == "batch_done" and e.step == "double"]
    assert [e.rows_done for e in done] == [25, 50, 75, 100]
    assert {(e.rows_total, e.batches_total) for e in done} == {(100, 4)}
    report = pipeline.last_run
    assert report is not None
    assert report["double"].rows == 100 and report["double"].rows_computed == 100
    assert report["double"].bytes > 0
    assert "double" in report.table()
    # a step reused whole reports once too, at the end of the run
    again: list[RunEvent] = []
    build(cache_dir).run(progress=False, on_event=again.append)
    assert [(e.step, e.status) for e in again if e.kind == "step_finished"] == [
        ("load", "hit"), ("double", "hit")]


def test_progress_bars_draw_one_line_per_step(cache_dir: pathlib.Path) -> None:
    stream = io.StringIO()
    build(cache_dir).run(progress=False, on_event=ProgressBars(stream, interval=0))
    text = stream.getvalue()
    assert "load" in text and "double" in text and "100 rows" in text


def test_a_failing_listener_never_breaks_a_run(cache_dir: pathlib.Path) -> None:
    def broken(event: RunEvent) -> None:
        raise RuntimeError("listener bug")

    pipeline = build(cache_dir)
    pipeline.add_listener(broken)
    import pytest

    with pytest.warns(RuntimeWarning, match="listener bug"):
        distiset = pipeline.run(progress=False)
    assert distiset["default"]["train"].num_rows == 100


def test_preview_shows_the_first_cached_rows_of_a_step(cache_dir: pathlib.Path) -> None:
    pipeline = build(cache_dir)
    assert pipeline.preview("double") is None
    pipeline.run(progress=False)
    preview = pipeline.preview("double", n=3)
    assert preview is not None
    assert preview.to_pylist() == [{"x": 0, "y": 0}, {"x": 1, "y": 2}, {"x": 2, "y": 4}]
    import pytest

    with pytest.raises(KeyError, match="has no step 'nope'"):
        pipeline.preview("nope")
