"""distilabel's steps join our pipeline as they join theirs: names, ``>>``, lists on either
side, ``connect``, routing batch functions, mixed with our own steps."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from distilabel.pipeline import routing_batch_function, sample_n_steps
from distilabel.pipeline.base import _GlobalPipelineManager
from distilabel.steps import (
    GroupColumns,
    KeepColumns,
    LoadDataFromDicts,
    StepInput,
    step,
)

from distilabel_nb import Pipeline
from distilabel_nb.steps import StepInput as OurStepInput
from distilabel_nb.steps import step as our_step

from .distilabel_helpers import instructions, rows


@step(inputs=["instruction"], outputs=["length"])
def Length(inputs: StepInput):
    for row in inputs:
        row["length"] = len(row["instruction"])
    yield inputs


@step(inputs=["instruction"], outputs=["upper"])
def Upper(inputs: StepInput):
    for row in inputs:
        row["upper"] = row["instruction"].upper()
    yield inputs


@our_step(inputs=["instruction"], outputs=["words"])
def Words(inputs: OurStepInput):
    for row in inputs:
        row["words"] = len(row["instruction"].split())
    yield inputs


def test_steps_get_distilabels_names_and_edges(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="names", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(data=instructions(3))
        a, b = Length(), Length()
        keep = KeepColumns(columns=["instruction", "length"])
        load >> [a, b]
        [a, b] >> keep
    assert list(pipeline.steps) == ["load_data_from_dicts_0", "length_0", "length_1",
                                    "keep_columns_0"]
    assert load.pipeline is not None and a.name == "length_0"
    assert pipeline.dag.edges == [("load_data_from_dicts_0", "length_0"),
                                  ("load_data_from_dicts_0", "length_1"),
                                  ("length_0", "keep_columns_0"),
                                  ("length_1", "keep_columns_0")]
    assert _GlobalPipelineManager.get_pipeline() is None  # put back on exit


def test_our_steps_and_theirs_connect_both_ways(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="mixed", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=instructions(5), batch_size=2)
        words = Words(name="words")
        upper = Upper(name="upper")
        length = Length(name="length")
        load >> words >> upper      # theirs >> ours >> theirs
        upper.connect(length)       # distilabel's connect
    out = rows(pipeline.run(progress=False))
    assert [r["words"] for r in out] == [3] * 5
    assert out[0]["upper"] == "QUESTION NUMBER 0" and out[4]["length"] == 17
    assert pipeline.last_run.statuses() == dict.fromkeys(
        ["load", "words", "upper", "length"], "miss")


def test_routing_batch_functions_route_and_rerun_as_a_full_hit(tmp_path: pathlib.Path) -> None:
    @routing_batch_function()
    def first_only(steps: list[str]) -> list[str]:
        return steps[:1]

    def build() -> Pipeline:
        with Pipeline(name="routed", cache_dir=tmp_path) as pipeline:
            load = LoadDataFromDicts(name="load", data=instructions(8), batch_size=2)
            a, b, c = Length(name="a"), Length(name="b"), Length(name="c")
            group = GroupColumns(name="group", columns=["length"])
            load >> sample_n_steps(2) >> [a, b, c] >> group
            load2 = LoadDataFromDicts(name="load2", data=instructions(4), batch_size=2)
            other = Upper(name="other")
            keep = KeepColumns(name="keep", columns=["instruction"])
            load2 >> first_only >> [other, keep]
        return pipeline

    pipeline = build()
    distiset = pipeline.run(progress=False)
    grouped = rows(distiset, "group")
    assert len(grouped) == 8  # each batch went to two of the three steps
    assert all(len(r["grouped_length"]) == 2 for r in grouped)
    assert len(rows(distiset, "other")) == 4
    assert not rows(distiset, "keep")
    assert pipeline.routers["load"].targets == ["a", "b", "c"]
    assert pipeline.routers["load2"].targets == ["other", "keep"]
    again = build()
    assert rows(again.run(progress=False), "group") == grouped
    assert set(again.last_run.statuses().values()) == {"hit"}


def test_a_step_outside_any_pipeline_still_warns_as_in_distilabel() -> None:
    with Pipeline(name="closed"):
        pass
    lonely = Length()
    assert lonely.pipeline is None


def test_import_distilabel_nb_never_imports_distilabel(tmp_path: pathlib.Path) -> None:
    code = textwrap.dedent("""
        import sys
        import distilabel_nb
        from distilabel_nb import Pipeline
        from distilabel_nb.steps import LoadDataFromDicts
        with Pipeline(name="p", cache_dir=sys.argv[1]) as p:
            LoadDataFromDicts(data=[{"a": 1}])
        p.run(progress=False)
        assert "distilabel" not in sys.modules, "distilabel was imported"
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("nested", [False, True])
def test_the_innermost_pipeline_gets_the_steps(tmp_path: pathlib.Path, nested: bool) -> None:
    with Pipeline(name="outer", cache_dir=tmp_path) as outer:
        LoadDataFromDicts(name="a", data=instructions(1))
        if nested:
            with Pipeline(name="inner", cache_dir=tmp_path) as inner:
                LoadDataFromDicts(name="b", data=instructions(1))
            assert list(inner.steps) == ["b"]
        LoadDataFromDicts(name="c", data=instructions(1))
    assert list(outer.steps) == ["a", "c"]
