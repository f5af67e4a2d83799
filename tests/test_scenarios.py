"""Scenario tests: real pipelines on a real cache, asserting which steps ran and what rows
came back. Each one is a case where distilabel 1.5.3 is wrong (see DISTILABEL_NOTES)."""

from __future__ import annotations

import pathlib
from typing import Any

import datasets
import pytest

from distilabel_nb import Pipeline, StepFailedError, StepFailedWarning
from distilabel_nb.steps import (
    CombineOutputs,
    GlobalStep,
    LoadDataFromDicts,
    LoadDataFromFiles,
    StepInput,
    StepOutput,
    step,
)

from .conftest import CallLog

ROWS = [{"text": f"row number {i}"} for i in range(230)]


def build(cache_dir: pathlib.Path, calls: CallLog, *, suffix: str = "!",
          upper_cache: bool = True, words_cache: bool = True, load_cache: bool = True,
          rows: list[dict[str, Any]] | None = None, extra_leaf: bool = False,
          fail_at: int | None = None, batch_size: int = 50) -> Pipeline:
    """load >> length >> upper >> words (+ an optional new leaf after words)."""

    @step(inputs=["text"], outputs=["n_chars"])
    def Length(inputs: StepInput) -> StepOutput:
        calls.record("length", len(inputs))
        for row in inputs:
            row["n_chars"] = len(row["text"])
        yield inputs

    @step(inputs=["text"], outputs=["upper"])
    def Upper(inputs: StepInput, suffix: str = "") -> StepOutput:
        calls.record("upper", len(inputs))
        for row in inputs:
            if fail_at is not None and row["text"] == f"row number {fail_at}":
                raise ValueError("the model server went away")
            row["upper"] = row["text"].upper() + suffix
        yield inputs

    @step(inputs=["upper"], outputs=["n_words"])
    def Words(inputs: StepInput) -> StepOutput:
        calls.record("words", len(inputs))
        for row in inputs:
            row["n_words"] = len(row["upper"].split())
        yield inputs

    @step(inputs=["n_words"], outputs=["long"])
    def Long(inputs: StepInput) -> StepOutput:
        calls.record("long", len(inputs))
        for row in inputs:
            row["long"] = row["n_words"] > 2
        yield inputs

    with Pipeline(name="scenario", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=rows if rows is not None else ROWS,
                                 batch_size=batch_size, use_cache=load_cache)
        length = Length(name="length", input_batch_size=batch_size)
        upper = Upper(name="upper", suffix=suffix, use_cache=upper_cache,
                      input_batch_size=batch_size)
        words = Words(name="words", use_cache=words_cache, input_batch_size=batch_size)
        load >> length >> upper >> words
        if extra_leaf:
            words >> Long(name="long")
    return pipeline


def expected(suffix: str = "!", rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    out = []
    for row in rows if rows is not None else ROWS:
        upper = row["text"].upper() + suffix
        out.append({"text": row["text"], "n_chars": len(row["text"]), "upper": upper,
                    "n_words": len(upper.split())})
    return out


def rows_of(distiset: Any, config: str = "default") -> list[dict[str, Any]]:
    dataset = distiset[config]["train"]
    assert isinstance(dataset, datasets.Dataset)
    return dataset.to_list()


def test_cold_run_computes_everything_and_identical_rerun_computes_nothing(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    pipeline = build(cache_dir, calls)
    first = pipeline.run(progress=False)
    assert rows_of(first) == expected()
    assert pipeline.last_run is not None
    assert pipeline.last_run.statuses() == dict.fromkeys(["load", "length", "upper", "words"],
                                                         "miss")
    assert calls.steps() == {"length", "upper", "words"}
    assert calls.rows("length") == len(ROWS)

    calls.clear()
    pipeline = build(cache_dir, calls)
    second = pipeline.run(progress=False)
    assert calls.calls == []
    assert rows_of(second) == rows_of(first)
    assert pipeline.last_run is not None
    assert set(pipeline.last_run.statuses().values()) == {"hit"}
    assert pipeline.last_run["words"].rows_reused == len(ROWS)


def test_changed_middle_step_reruns_it_and_descendants_with_full_result(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    build(cache_dir, calls).run(progress=False)
    calls.clear()
    pipeline = build(cache_dir, calls, suffix="?")
    distiset = pipeline.run(progress=False)
    assert calls.steps() == {"upper", "words"}
    assert rows_of(distiset) == expected("?")
    assert pipeline.last_run is not None
    report = pipeline.last_run
    assert report.statuses() == {"load": "hit", "length": "hit", "upper": "miss",
                                 "words": "miss"}
    assert report["upper"].reason == "suffix changed '!' -> '?'"
    assert report["words"].reason == "upstream 'upper' changed"


def test_reverting_a_change_is_a_hit_of_the_earlier_version(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    build(cache_dir, calls).run(progress=False)
    build(cache_dir, calls, suffix="?").run(progress=False)
    calls.clear()
    pipeline = build(cache_dir, calls)
    assert rows_of(pipeline.run(progress=False)) == expected()
    assert calls.calls == []


def test_adding_a_step_downstream_runs_only_the_new_step(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    build(cache_dir, calls).run(progress=False)
    calls.clear()
    pipeline = build(cache_dir, calls, extra_leaf=True)
    distiset = pipeline.run(progress=False)
    assert calls.steps() == {"long"}
    assert pipeline.last_run is not None
    assert pipeline.last_run["long"].reason == "new step"
    assert [r["long"] for r in rows_of(distiset)] == [r["n_words"] > 2 for r in expected()]


def test_changed_branch_with_a_reused_sibling_does_not_hang(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    def make(prefix: str) -> Pipeline:
        @step(inputs=["text"], outputs=["a"])
        def BranchA(inputs: StepInput, prefix: str = "") -> StepOutput:
            calls.record("a", len(inputs))
            for row in inputs:
                row["a"] = prefix + row["text"]
            yield inputs

        @step(inputs=["text"], outputs=["b"])
        def BranchB(inputs: StepInput) -> StepOutput:
            calls.record("b", len(inputs))
            for row in inputs:
                row["b"] = len(row["text"])
            yield inputs

        with Pipeline(name="branches", cache_dir=cache_dir) as pipeline:
            load = LoadDataFromDicts(name="load", data=ROWS)
            load >> [BranchA(name="a", prefix=prefix), BranchB(name="b")]
        return pipeline

    make("x-").run(progress=False)
    calls.clear()
    pipeline = make("y-")
    distiset = pipeline.run(progress=False)
    assert calls.steps() == {"a"}
    assert [r["a"] for r in rows_of(distiset, "a")] == ["y-" + r["text"] for r in ROWS]
    assert distiset["b"]["train"].num_rows == len(ROWS)
    assert pipeline.last_run is not None
    assert pipeline.last_run.statuses() == {"load": "hit", "a": "miss", "b": "hit"}


def test_every_step_with_use_cache_false_recomputes_with_its_descendants(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    build(cache_dir, calls).run(progress=False)
    for _ in range(2):
        calls.clear()
        pipeline = build(cache_dir, calls, upper_cache=False, words_cache=False)
        assert rows_of(pipeline.run(progress=False)) == expected()
        assert calls.steps() == {"upper", "words"}
        assert pipeline.last_run is not None
        assert pipeline.last_run["upper"].reason == "cache disabled on this step"
        assert pipeline.last_run["length"].status == "hit"


def test_use_cache_false_on_a_generator_reruns_everything_after_it(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    build(cache_dir, calls).run(progress=False)
    calls.clear()
    pipeline = build(cache_dir, calls, load_cache=False)
    pipeline.run(progress=False)
    assert pipeline.last_run is not None
    assert set(pipeline.last_run.statuses().values()) == {"miss"}
    assert calls.steps() == {"length", "upper", "words"}


def test_run_without_cache_recomputes_all_and_replaces_the_cached_outputs(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    counter = {"n": 0}

    def make() -> Pipeline:
        @step(inputs=["text"], outputs=["draw"])
        def Draw(inputs: StepInput) -> StepOutput:
            for row in inputs:
                counter["n"] += 1
                row["draw"] = counter["n"]
            yield inputs

        with Pipeline(name="draws", cache_dir=cache_dir) as pipeline:
            LoadDataFromDicts(name="load", data=ROWS[:10]) >> Draw(name="draw")
        return pipeline

    first = rows_of(make().run(progress=False))
    fresh = rows_of(make().run(use_cache=False, progress=False))
    assert [r["draw"] for r in fresh] == [r["draw"] + 10 for r in first]
    assert rows_of(make().run(progress=False)) == fresh


def test_loader_data_changed_at_the_same_length_is_a_miss(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    build(cache_dir, calls).run(progress=False)
    calls.clear()
    changed = [dict(r) for r in ROWS]
    changed[7] = {"text": "row number X"}
    pipeline = build(cache_dir, calls, rows=changed)
    assert rows_of(pipeline.run(progress=False)) == expected(rows=changed)
    assert calls.steps() == {"length", "upper", "words"}
    assert pipeline.last_run is not None
    assert pipeline.last_run["load"].reason == "data changed (same 230 rows, different content)"


def test_edited_file_of_the_same_size_is_a_miss(tmp_path: pathlib.Path,
                                                cache_dir: pathlib.Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "aaa"}\n{"text": "bbb"}\n')

    def run() -> list[dict[str, Any]]:
        with Pipeline(name="files", cache_dir=cache_dir) as pipeline:
            LoadDataFromFiles(name="load", data_files=str(data))
        return rows_of(pipeline.run(progress=False))

    assert run() == [{"text": "aaa"}, {"text": "bbb"}]
    data.write_text('{"text": "aaa"}\n{"text": "ccc"}\n')
    assert run() == [{"text": "aaa"}, {"text": "ccc"}]


def test_failed_batch_goes_on_with_none_outputs_and_only_it_is_retried(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    """As in distilabel, the run goes on: the failed batch's rows continue with the
    step's outputs set to None; nothing computed from them is cached."""
    pipeline = build(cache_dir, calls, fail_at=160)
    with pytest.warns(StepFailedWarning) as caught:
        rows = rows_of(pipeline.run(progress=False))
    messages = [str(w.message) for w in caught if w.category is StepFailedWarning]
    assert any("step 'upper' failed on batch 3 (50 rows): ValueError: the model server "
               "went away" in m and "Traceback" in m for m in messages), messages
    # words then fails on those rows too (None has no split), as it would in distilabel
    assert any("step 'words' failed on batch 3" in m for m in messages), messages
    want = expected()
    for row in want[150:200]:
        row["upper"] = row["n_words"] = None
    assert rows == want
    assert pipeline.last_run is not None
    assert pipeline.last_run["upper"].status == "failed"
    assert "batch 3 failed (ValueError: the model server went away)" in \
        pipeline.last_run["upper"].reason
    assert pipeline.last_run["words"].status == "failed"
    assert pipeline.last_run["length"].status == "miss"

    calls.clear()
    pipeline = build(cache_dir, calls)
    assert rows_of(pipeline.run(progress=False)) == expected()
    # only the failed batch runs again, in upper and in words after it
    assert calls.rows("upper") == 50 and calls.rows("words") == 50
    assert calls.rows("length") == 0
    assert pipeline.last_run is not None
    assert pipeline.last_run["upper"].status == "partial"
    assert pipeline.last_run["upper"].rows_reused == 180


def test_fail_fast_stops_at_the_first_failure_and_the_next_run_resumes(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    pipeline = build(cache_dir, calls, fail_at=160)
    with pytest.raises(StepFailedError, match=r"step 'upper' failed on batch 3 \(rows 150-199\)"):
        pipeline.run(progress=False, fail_fast=True)
    assert pipeline.last_run is not None
    assert pipeline.last_run["upper"].status == "failed"
    calls.clear()
    pipeline = build(cache_dir, calls)
    assert rows_of(pipeline.run(progress=False)) == expected()
    # batches 0-2 of upper were kept: only 230 - 150 rows are processed again
    assert calls.rows("upper") == len(ROWS) - 150
    assert pipeline.last_run is not None
    assert pipeline.last_run["upper"].status == "partial"
    assert pipeline.last_run["upper"].rows_reused == 150


def test_keyboard_interrupt_keeps_finished_batches_and_the_rerun_resumes(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    def make(interrupt: bool) -> Pipeline:
        @step(inputs=["text"], outputs=["k"])
        def Slow(inputs: StepInput) -> StepOutput:
            calls.record("slow", len(inputs))
            if interrupt and calls.batches("slow") == 4:
                raise KeyboardInterrupt
            for row in inputs:
                row["k"] = row["text"][::-1]
            yield inputs

        with Pipeline(name="interrupt", cache_dir=cache_dir) as pipeline:
            LoadDataFromDicts(name="load", data=ROWS, batch_size=10) >> Slow(
                name="slow", input_batch_size=10)
        return pipeline

    with pytest.raises(KeyboardInterrupt):
        make(interrupt=True).run(progress=False)
    calls.clear()
    pipeline = make(interrupt=False)
    distiset = pipeline.run(progress=False)
    assert [r["k"] for r in rows_of(distiset)] == [r["text"][::-1] for r in ROWS]
    assert calls.rows("slow") == len(ROWS) - 30
    assert pipeline.last_run is not None
    assert pipeline.last_run["slow"].status == "partial"


def test_multi_input_step_receives_aligned_batches(cache_dir: pathlib.Path) -> None:
    @step(inputs=["text"], outputs=["left"])
    def Left(inputs: StepInput) -> StepOutput:
        yield [{**row, "left": row["text"][:3]} for row in inputs]

    @step(inputs=["text"], outputs=["right"])
    def Right(inputs: StepInput) -> StepOutput:
        yield [{"right": row["text"][-1]} for row in inputs]

    with Pipeline(name="diamond", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=ROWS, batch_size=7)
        combine = CombineOutputs(name="combine", input_batch_size=20)
        load >> [Left(name="left", input_batch_size=13), Right(name="right")] >> combine
    rows = rows_of(pipeline.run(progress=False))
    assert rows == [{"text": r["text"], "left": r["text"][:3], "right": r["text"][-1]}
                    for r in ROWS]


def test_global_step_receives_all_rows_at_once(cache_dir: pathlib.Path) -> None:
    seen: list[int] = []

    class Dedupe(GlobalStep):
        @property
        def inputs(self) -> list[str]:
            return ["text"]

        def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
            seen.append(len(inputs))
            unique = {row["text"][-1]: row for row in inputs}
            yield list(unique.values())

    with Pipeline(name="global", cache_dir=cache_dir) as pipeline:
        LoadDataFromDicts(name="load", data=ROWS, batch_size=20) >> Dedupe(name="dedupe")
    distiset = pipeline.run(progress=False)
    assert seen == [len(ROWS)]
    assert distiset["default"]["train"].num_rows == 10


def test_plan_says_what_a_run_would_do_without_running(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    build(cache_dir, calls).run(progress=False)
    calls.clear()
    pipeline = build(cache_dir, calls, suffix="?")
    plan = pipeline.plan()
    assert calls.calls == []
    assert plan.statuses() == {"load": "hit", "length": "hit", "upper": "miss", "words": "miss"}
    assert plan["upper"].reason == "suffix changed '!' -> '?'"
    # planning did not write anything that would change the next run
    pipeline.run(progress=False)
    assert calls.steps() == {"upper", "words"}


def test_truncated_cache_file_is_detected_and_recomputed(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    build(cache_dir, calls).run(progress=False)
    files = sorted((cache_dir / "v1" / "data").rglob("*.arrow"))
    assert files
    for path in files:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    calls.clear()
    pipeline = build(cache_dir, calls)
    with pytest.warns(UserWarning, match="recomputing"):
        distiset = pipeline.run(progress=False)
    assert rows_of(distiset) == expected()


STEP_SOURCE = '''
from distilabel_nb.steps import StepInput, StepOutput, step


@step(inputs=["text"], outputs=["out"])
def Transform(inputs: StepInput) -> StepOutput:
    {body}
    yield inputs
'''


def _load_step_module(tmp_path: pathlib.Path, name: str, body: str) -> Any:
    import importlib.util

    path = tmp_path / f"{name}.py"
    path.write_text(STEP_SOURCE.format(body=body))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("for row in inputs: row['out'] = row['text'] + '.'  # a comment only", "hit"),
        ("for row in inputs:\n        row['out'] = row['text'] + '.'", "hit"),
        ("for row in inputs: row['out'] = row['text'] + '!'", "miss"),
    ],
    ids=["comment-only", "reformatted", "edited"],
)
def test_editing_a_step_body_is_a_miss_but_comments_and_formatting_are_not(
        tmp_path: pathlib.Path, cache_dir: pathlib.Path, body: str, status: str) -> None:
    def run(module_name: str, code: str) -> Pipeline:
        module = _load_step_module(tmp_path, module_name, code)
        with Pipeline(name="edits", cache_dir=cache_dir) as pipeline:
            LoadDataFromDicts(name="load", data=ROWS[:5]) >> module.Transform(name="t")
        pipeline.run(progress=False)
        return pipeline

    run("original", "for row in inputs: row['out'] = row['text'] + '.'")
    pipeline = run("edited", body)
    assert pipeline.last_run is not None
    assert pipeline.last_run["t"].status == status
    assert pipeline.last_run["load"].status == "hit"
    if status == "miss":
        assert pipeline.last_run["t"].reason == "code of Transform() changed"


CONCURRENT_SCRIPT = '''
import json, sys, time
from distilabel_nb import Pipeline
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step

@step(inputs=["text"], outputs=["rev"])
def Reverse(inputs: StepInput) -> StepOutput:
    time.sleep(0.01)
    for row in inputs:
        row["rev"] = row["text"][::-1]
    yield inputs

with Pipeline(name="concurrent", cache_dir=sys.argv[1]) as pipeline:
    rows = [{"text": f"row {i}"} for i in range(400)]
    LoadDataFromDicts(name="load", data=rows, batch_size=20) >> Reverse(
        name="rev", input_batch_size=20)
table = pipeline.run(progress=False)["default"]["train"]
print(json.dumps(table.to_list()))
'''


def test_two_processes_running_the_same_pipeline_both_get_exact_rows(
        tmp_path: pathlib.Path, cache_dir: pathlib.Path) -> None:
    import json
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(CONCURRENT_SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), str(cache_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    want = [{"text": f"row {i}", "rev": f"row {i}"[::-1]} for i in range(400)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert json.loads(out) == want
    # the cache they left is intact and complete: a third run is a full hit
    third = subprocess.run([sys.executable, str(script), str(cache_dir)], capture_output=True,
                           text=True, timeout=120, check=True)
    assert json.loads(third.stdout) == want


def test_dry_run_runs_one_row_and_never_touches_the_real_cache(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    pipeline = build(cache_dir, calls)
    distiset = pipeline.dry_run()
    assert rows_of(distiset) == expected()[:1]
    assert calls.rows("length") == 1
    assert not (cache_dir / "v1" / "data").exists()
    calls.clear()
    assert rows_of(pipeline.run(progress=False)) == expected()
    assert calls.rows("length") == len(ROWS)


def test_changing_the_generator_batch_size_reuses_a_complete_cache(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    build(cache_dir, calls).run(progress=False)
    calls.clear()
    pipeline = build(cache_dir, calls, batch_size=20)
    assert rows_of(pipeline.run(progress=False)) == expected()
    assert calls.calls == []


def test_changing_the_batch_size_after_an_interrupted_run_recomputes_cleanly(
        cache_dir: pathlib.Path, calls: CallLog) -> None:
    with pytest.raises(StepFailedError):
        build(cache_dir, calls, fail_at=160).run(progress=False, fail_fast=True)
    calls.clear()
    pipeline = build(cache_dir, calls, batch_size=20)
    assert rows_of(pipeline.run(progress=False)) == expected()
    assert pipeline.last_run is not None
    assert pipeline.last_run["upper"].status == "miss"
    assert "batch size changed" in pipeline.last_run["upper"].reason
    assert calls.rows("upper") == len(ROWS)
