"""The Distiset as distilabel's: configs of datasets.DatasetDict, lazily built, on disk and
on the Hub (the Hub mocked at HfApi and DatasetDict.push_to_hub: nothing leaves the machine)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import datasets
import pyarrow as pa
import pytest
import yaml

from distilabel_nb import Distiset, Pipeline
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step

ROWS = [{"instruction": f"question {i}"} for i in range(5)]


@step(inputs=["instruction"], outputs=["length"])
def Length(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["length"] = len(row["instruction"])
    yield inputs


@step(inputs=["instruction"], outputs=["upper"])
def Upper(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["upper"] = row["instruction"].upper()
    yield inputs


def two_leaves(cache: pathlib.Path) -> Pipeline:
    with Pipeline(name="two-leaves", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=ROWS)
        load >> [Length(name="length"), Upper(name="upper")]
    return pipeline


def test_each_leaf_is_a_config_whose_train_split_is_a_dataset(tmp_path: pathlib.Path) -> None:
    distiset = two_leaves(tmp_path).run(progress=False)
    assert sorted(distiset) == ["length", "upper"]
    assert isinstance(distiset["length"], datasets.DatasetDict)
    train = distiset["length"]["train"]
    assert isinstance(train, datasets.Dataset)
    assert train[0] == {"instruction": "question 0", "length": 10}
    assert [row["instruction"] for row in train] == [r["instruction"] for r in ROWS]
    assert distiset["upper"]["train"].to_list()[4] == {"instruction": "question 4",
                                                        "upper": "QUESTION 4"}
    assert distiset["upper"]["train"].to_pandas()["upper"].tolist()[0] == "QUESTION 0"
    assert len(train) == train.num_rows == 5
    assert set(dict(distiset.items())) == {"length", "upper"}


def test_a_single_leaf_is_the_default_config(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="one-leaf", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=ROWS) >> Length(name="length")
    distiset = pipeline.run(progress=False)
    assert list(distiset) == ["default"]
    assert distiset["default"]["train"]["length"][:2] == [10, 10]


def test_the_split_is_built_over_the_cached_arrow_table_without_a_copy() -> None:
    table = pa.table({"text": [f"row {i}" for i in range(1000)]})
    distiset = Distiset.from_tables({"default": table})
    built = distiset["default"]["train"].data.table
    address = table.column("text").chunk(0).buffers()[2].address
    assert built.column("text").chunk(0).buffers()[2].address == address
    assert distiset.arrow_table("default") is built


SUBPROCESS = r"""
import json, sys, time
from distilabel_nb import Pipeline
from distilabel_nb.steps import LoadDataFromDicts
with Pipeline(name="lazy", cache_dir=sys.argv[1]) as pipeline:
    LoadDataFromDicts(name="load", data=[{"a": i} for i in range(10)])
distiset = pipeline.run(progress=False)
text = repr(distiset)
after_run = "datasets" in sys.modules
start = time.perf_counter()
first = distiset["default"]["train"][0]
seconds = time.perf_counter() - start
print(json.dumps({"after_run": after_run, "after_read": "datasets" in sys.modules,
                  "first": first, "seconds": seconds, "repr": text}))
"""


def test_a_run_never_imports_datasets_only_reading_a_split_does(
        tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", SUBPROCESS, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["after_run"] is False
    assert result["after_read"] is True
    assert result["first"] == {"a": 0}
    assert "num_rows: 10" in result["repr"] and "default: DatasetDict" in result["repr"]
    print(f"first access to a split (imports datasets): {result['seconds']:.2f} s")


def test_save_to_disk_and_load_from_disk_as_distilabel(tmp_path: pathlib.Path) -> None:
    distiset = two_leaves(tmp_path / "cache").run(progress=False)
    distiset.save_to_disk(tmp_path / "saved")
    configs = tmp_path / "saved" / "distiset_configs"
    card = (configs / "README.md").read_text()
    assert "size_categories: n<1K" in card and "- distilabel" in card
    assert '"upper": "QUESTION 0"' in card
    pipeline_yaml = yaml.safe_load((configs / "pipeline.yaml").read_text())
    assert pipeline_yaml["pipeline"]["name"] == "two-leaves"
    assert [s["name"] for s in pipeline_yaml["pipeline"]["steps"]] == ["load", "length", "upper"]

    loaded = Distiset.load_from_disk(tmp_path / "saved")
    assert sorted(loaded) == ["length", "upper"]
    assert loaded["upper"]["train"].to_list() == distiset["upper"]["train"].to_list()
    assert loaded.pipeline_path == configs / "pipeline.yaml"
    assert loaded.pipeline_config == pipeline_yaml


def test_load_from_disk_of_a_missing_folder_names_it(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError, match="save_to_disk"):
        Distiset.load_from_disk(tmp_path / "nothing-here")


class FakeHub:
    """What would reach the Hub: DatasetDict pushes and HfApi uploads, recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import huggingface_hub

        self.pushed: list[dict[str, Any]] = []
        self.uploaded: dict[str, str] = {}
        hub = self

        def push(dataset_dict: datasets.DatasetDict, repo_id: str, **kwargs: Any) -> None:
            hub.pushed.append({"repo_id": repo_id, "rows": dataset_dict["train"].to_list(),
                               **kwargs})

        def upload_file(api: Any, *, path_or_fileobj: Any, path_in_repo: str, repo_id: str,
                        repo_type: str, **kwargs: Any) -> None:
            assert repo_type == "dataset" and repo_id == "me/data"
            content = path_or_fileobj
            hub.uploaded[path_in_repo] = (content.decode() if isinstance(content, bytes)
                                          else pathlib.Path(content).read_text())

        def download(api: Any, *args: Any, **kwargs: Any) -> str:
            raise OSError("offline in tests")

        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", push)
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", upload_file)
        monkeypatch.setattr(huggingface_hub.HfApi, "hf_hub_download", download)


def test_push_to_hub_pushes_each_config_then_the_card_and_pipeline_yaml(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = FakeHub(monkeypatch)
    distiset = two_leaves(tmp_path).run(progress=False)
    distiset.push_to_hub("me/data", private=True, token="hf_test")
    assert [(p["config_name"], p["private"], p["token"]) for p in hub.pushed] == [
        ("length", True, "hf_test"), ("upper", True, "hf_test")]
    assert hub.pushed[1]["rows"][0] == {"instruction": "question 0", "upper": "QUESTION 0"}
    assert sorted(hub.uploaded) == ["README.md", "pipeline.yaml"]
    assert "# Dataset Card for data" in hub.uploaded["README.md"]
    assert 'load_dataset("me/data", "upper")' in hub.uploaded["README.md"]
    assert "hf_test" not in hub.uploaded["README.md"] + hub.uploaded["pipeline.yaml"]
    dumped = yaml.safe_load(hub.uploaded["pipeline.yaml"])
    assert dumped["pipeline"]["connections"][0] == {"from": "load", "to": ["length", "upper"]}


def test_push_to_hub_without_a_token_says_how_to_give_one(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = FakeHub(monkeypatch)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no saved login
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    distiset = Distiset.from_tables({"default": pa.table({"x": [1]})})
    with pytest.raises(ValueError, match="HF_TOKEN"):
        distiset.push_to_hub("me/data")
    assert hub.pushed == [] and hub.uploaded == {}


def test_train_test_split_and_repr() -> None:
    distiset = Distiset.from_tables({"default": pa.table({"x": list(range(10))})})
    assert "features: ['x']" in repr(distiset) and "num_rows: 10" in repr(distiset)
    distiset.train_test_split(train_size=0.8, seed=0)
    assert sorted(distiset["default"]) == ["test", "train"]
    assert len(distiset["default"]["train"]) == 8
    assert "test: Dataset" in repr(distiset)
