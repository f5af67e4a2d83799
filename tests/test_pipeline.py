"""Pipeline methods as distilabel's: draw(), dump(), run(use_fs_to_pass_data=...), and
steps joining through ``pipeline=``."""

from __future__ import annotations

import pathlib

from distilabel_nb import Pipeline
from distilabel_nb.steps import KeepColumns, LoadDataFromDicts


def test_draw_writes_the_cache_graph_as_svg(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="drawn", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromDicts(name="load", data=[{"a": 1}]) >> KeepColumns(name="keep",
                                                                       columns=["a"])
    pipeline.run(progress=False)
    path = pipeline.draw(tmp_path / "pipeline.svg", top_to_bottom=True, show_edge_labels=False)
    svg = pathlib.Path(path).read_text()
    assert path == str(tmp_path / "pipeline.svg")
    assert svg.lstrip().startswith(("<svg", "<?xml")) and "load" in svg and "keep" in svg
    assert pipeline.draw(None) == svg  # the document itself, written nowhere


def test_use_fs_to_pass_data_is_accepted_and_the_rows_are_the_same(
        tmp_path: pathlib.Path) -> None:
    with Pipeline(name="fs", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=[{"a": 1}, {"a": 2}])
    rows = pipeline.run(use_fs_to_pass_data=True, progress=False)["default"]["train"].to_list()
    assert rows == [{"a": 1}, {"a": 2}]


def test_a_step_joins_the_pipeline_given_as_in_distilabel(tmp_path: pathlib.Path) -> None:
    pipeline = Pipeline(name="explicit", cache_dir=tmp_path)
    load = LoadDataFromDicts(name="load", data=[{"a": 1}], pipeline=pipeline)
    keep = KeepColumns(name="keep", columns=["a"], pipeline=pipeline)
    load >> keep
    assert list(pipeline.steps) == ["load", "keep"]
    assert pipeline.run(progress=False)["default"]["train"][0] == {"a": 1}
    dumped = pipeline.dump()
    assert dumped["pipeline"]["connections"] == [{"from": "load", "to": ["keep"]},
                                                 {"from": "keep", "to": []}]
    assert dumped["pipeline"]["steps"][1]["step"]["type_info"] == {
        "module": "distilabel_nb.steps.columns", "name": "KeepColumns"}
