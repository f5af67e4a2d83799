"""LoadDataFromHub / LoadDataFromDisk / LoadDataFromFileSystem on datasets the tests write
(no network: load_dataset reads a local folder of Parquet files)."""

from __future__ import annotations

import pathlib

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distilabel_nb import Pipeline
from distilabel_nb.steps import (
    LoadDataFromDisk,
    LoadDataFromFileSystem,
    LoadDataFromHub,
    StepInput,
    StepOutput,
    step,
)


@step(inputs=["instruction"], outputs=["n_chars"])
def CountChars(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["n_chars"] = len(row["instruction"])
    yield inputs


def write_repo(folder: pathlib.Path, words: list[str]) -> pathlib.Path:
    """A dataset repository as on the Hub: data/train-*.parquet."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"instruction": words}), folder / "data" / "train-00000.parquet")
    return folder


def hub_pipeline(cache: pathlib.Path, repo: pathlib.Path, **options: object) -> Pipeline:
    with Pipeline(name="hub", cache_dir=cache) as pipeline:
        load = LoadDataFromHub(name="load", repo_id=str(repo), split="train", **options)
        load >> CountChars(name="count")
    return pipeline


def test_load_data_from_hub_reads_through_load_dataset_keyed_by_fingerprint(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = write_repo(tmp_path / "repo", ["a", "bb", "ccc"])
    first = hub_pipeline(tmp_path / "cache", repo)
    assert first.run(progress=False)["default"]["train"]["n_chars"][:] == [1, 2, 3]
    again = hub_pipeline(tmp_path / "cache", repo)
    again.run(progress=False)
    assert again.last_run is not None
    assert set(again.last_run.statuses().values()) == {"hit"}
    write_repo(repo, ["x", "yy", "zzzz"])  # same rows count, new content
    changed = hub_pipeline(tmp_path / "cache", repo)
    assert changed.run(progress=False)["default"]["train"]["n_chars"][:] == [1, 2, 4]
    assert changed.last_run is not None and changed.last_run["load"].status == "miss"
    limited = hub_pipeline(tmp_path / "cache", repo, num_examples=2)
    assert len(limited.run(progress=False)["default"]["train"]) == 2


def test_load_data_from_hub_repo_id_as_a_runtime_parameter(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    repo = write_repo(tmp_path / "repo", ["hello"])
    with Pipeline(name="hub-param", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromHub(name="load") >> CountChars(name="count")
    distiset = pipeline.run(parameters={"load": {"repo_id": str(repo), "split": "train"}},
                            progress=False)
    assert distiset["default"]["train"][0] == {"instruction": "hello", "n_chars": 5}


def test_load_data_from_hub_without_repo_id_says_how_to_give_it(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="hub-none", cache_dir=tmp_path) as pipeline:
        LoadDataFromHub(name="load") >> CountChars(name="count")
    with pytest.raises(ValueError, match=r"step 'load' \(LoadDataFromHub\) has no repo_id"):
        pipeline.run(progress=False)


def test_load_data_from_disk_dataset_and_distiset(tmp_path: pathlib.Path) -> None:
    datasets.Dataset.from_list([{"instruction": "abc"}]).save_to_disk(str(tmp_path / "ds"))
    with Pipeline(name="disk", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromDisk(name="load", dataset_path=str(tmp_path / "ds")) >> CountChars(
            name="count")
    distiset = pipeline.run(progress=False)
    assert distiset["default"]["train"].to_list() == [{"instruction": "abc", "n_chars": 3}]
    distiset.save_to_disk(tmp_path / "saved")
    with Pipeline(name="disk2", cache_dir=tmp_path / "cache") as again:
        LoadDataFromDisk(name="load", dataset_path=str(tmp_path / "saved"),
                         is_distiset=True)
    assert again.run(progress=False)["default"]["train"][0] == {"instruction": "abc",
                                                                "n_chars": 3}


def test_load_data_from_file_system_reads_jsonl(tmp_path: pathlib.Path) -> None:
    (tmp_path / "data.jsonl").write_text('{"instruction": "hi"}\n{"instruction": "hey"}\n')
    with Pipeline(name="fs", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromFileSystem(name="load", data_files=str(tmp_path / "data.jsonl"),
                               filetype="jsonl") >> CountChars(name="count")
    assert pipeline.run(progress=False)["default"]["train"]["n_chars"][:] == [2, 3]
