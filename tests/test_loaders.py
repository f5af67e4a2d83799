from __future__ import annotations

import json
import pathlib

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from distilabel_nb import Pipeline
from distilabel_nb.steps import LoadDataFromDicts, LoadDataFromFiles

ROWS = [{"text": f"t{i}", "n": i} for i in range(25)]


def run_loader(loader_kwargs: dict, cache_dir: pathlib.Path, cls: type = LoadDataFromFiles
               ) -> list[dict]:
    with Pipeline(name="loaders", cache_dir=cache_dir) as pipeline:
        cls(name="load", **loader_kwargs)
    return pipeline.run(progress=False)["default"]["train"].to_list()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_files_of_every_format_load_in_order(tmp_path: pathlib.Path, cache_dir: pathlib.Path,
                                             fmt: str) -> None:
    table = pa.Table.from_pylist(ROWS)
    path = tmp_path / f"data.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        pacsv.write_csv(table, path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert run_loader({"data_files": str(path), "batch_size": 10}, cache_dir) == ROWS


def test_a_folder_loads_every_file_sorted_and_num_examples_limits(
        tmp_path: pathlib.Path, cache_dir: pathlib.Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    for part in range(3):
        rows = ROWS[part * 10:(part + 1) * 10]
        (folder / f"part-{part}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run_loader({"data_files": str(folder)}, cache_dir) == ROWS
    assert run_loader({"data_files": str(folder), "num_examples": 12}, cache_dir) == ROWS[:12]


def test_missing_files_say_which(tmp_path: pathlib.Path, cache_dir: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl does not exist"):
        run_loader({"data_files": str(tmp_path / "nope.jsonl")}, cache_dir)


def test_dicts_are_batched_and_keyed_by_content(cache_dir: pathlib.Path) -> None:
    assert run_loader({"data": ROWS, "batch_size": 7}, cache_dir, LoadDataFromDicts) == ROWS
    with Pipeline(name="loaders", cache_dir=cache_dir) as pipeline:
        LoadDataFromDicts(name="load", data=ROWS, batch_size=7)
    assert pipeline.plan()["load"].status == "hit"
    with Pipeline(name="loaders", cache_dir=cache_dir) as pipeline:
        LoadDataFromDicts(name="load", data=[*ROWS[:-1], {"text": "t24", "n": -1}], batch_size=7)
    assert pipeline.plan()["load"].status == "miss"


def test_the_json_fast_path_and_the_plain_conversion_agree() -> None:
    from distilabel_nb.steps.loaders import _rows_via_json
    from distilabel_nb.tables import rows_to_table

    cases = [
        [{"a": 1, "b": "x", "c": [1, 2], "d": {"e": 0.5}}, {"a": None, "b": "y", "c": [],
                                                           "d": None}],
        [{"a": 1}, {"a": "one"}],            # changing types: the plain conversion decides
        [{"blob": b"\x00\x01"}],             # bytes are not JSON
        [{"a": 1}, {"b": 2}],                # columns that appear later
    ]
    for rows in cases:
        try:
            plain = rows_to_table(rows)
        except TypeError:
            continue
        assert _rows_via_json(rows).to_pylist() == plain.to_pylist()


def test_rows_edited_in_place_between_runs_are_the_new_rows(cache_dir: pathlib.Path) -> None:
    """The loader keeps its converted table with the content hash, not the list's identity:
    an edit in place is a miss with the new rows (and going back is a hit again)."""
    data = [dict(row) for row in ROWS]
    with Pipeline(name="in-place", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=data, batch_size=10)
    assert pipeline.run(progress=False)["default"]["train"].to_list() == ROWS
    data[3]["text"] = "edited"
    edited = pipeline.run(progress=False)["default"]["train"].to_list()
    assert edited[3]["text"] == "edited" and edited[:3] == ROWS[:3]
    assert pipeline.last_run is not None and pipeline.last_run["load"].status == "miss"
    data[3]["text"] = ROWS[3]["text"]
    assert pipeline.run(progress=False)["default"]["train"].to_list() == ROWS
    assert pipeline.last_run["load"].status == "hit"
    assert load.data is data


def test_dates_and_date_like_text_keep_their_types(cache_dir: pathlib.Path) -> None:
    """Small data goes through Arrow's JSON reader, which takes ISO text for timestamps:
    such a column is converted as large data is (text stays text, datetimes keep their
    microseconds), and datetimes and their text are different cache keys."""
    import datetime

    moment = datetime.datetime(2020, 1, 1, 0, 0, 0, 5)
    with Pipeline(name="dates", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"d": moment.isoformat(), "x": None}])
    text = pipeline.run(progress=False)["default"]["train"]
    assert text.data.table.schema.field("d").type == pa.string()
    load.data = [{"d": moment, "x": None}]
    dates = pipeline.run(progress=False)["default"]["train"]
    assert pipeline.last_run is not None and pipeline.last_run["load"].status == "miss"
    assert dates.data.table.schema.field("d").type == pa.timestamp("us")
    assert dates["d"][:] == [moment]
