"""One door to the cache: the root resolved once, ``open_cache`` for a folder or a URI,
and reads (state, plan, preview) that lease nothing."""

from __future__ import annotations

import pathlib

import pytest

from distilabel_nb import Pipeline
from distilabel_nb.cache.access import open_cache, opened
from distilabel_nb.cache.layout import local_dir, resolve_root
from distilabel_nb.cache.objectstore import ObjectStoreManifest
from distilabel_nb.cache.sqlite import SQLiteManifest
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step


@step(inputs=["x"], outputs=["y"])
def Double(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["y"] = 2 * row["x"]
    yield inputs


def build(cache: str | pathlib.Path) -> Pipeline:
    with Pipeline(name="door", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"x": i} for i in range(120)],
                                 batch_size=50)
        load >> Double(name="double", input_batch_size=50)
    return pipeline


def test_root_argument_then_environment_then_home(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("DISTILABEL_NB_CACHE_DIR", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_root() == tmp_path / "env"
    monkeypatch.setenv("DISTILABEL_NB_CACHE_DIR", "s3://bucket/prefix")
    assert resolve_root() == "s3://bucket/prefix"
    monkeypatch.delenv("DISTILABEL_NB_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_root() == tmp_path / "home" / ".cache" / "distilabel_nb"
    # Row caches stay on this machine: beside a folder cache, under home for a URI one.
    assert local_dir(tmp_path / "arg") == tmp_path / "arg" / "v1"
    assert local_dir("s3://bucket/prefix") == tmp_path / "home" / ".cache" / "distilabel_nb" / "v1"


def test_open_cache_never_creates_unless_asked(tmp_path: pathlib.Path) -> None:
    folder, uri = tmp_path / "folder", f"file://{tmp_path}/objects"
    assert open_cache(folder) is None and not folder.exists()
    assert open_cache(uri) is None
    made = open_cache(folder, create=True)
    assert made is not None and isinstance(made.manifest, SQLiteManifest)
    made.manifest.close()
    with opened(folder) as cache:
        assert cache is not None and isinstance(cache.manifest, SQLiteManifest)
    remote = open_cache(uri, create=True)
    assert remote is not None and isinstance(remote.manifest, ObjectStoreManifest)
    remote.manifest.close()


@pytest.mark.parametrize("where", ["folder", "uri"])
def test_reads_take_no_lease_and_a_run_ends_its_own(tmp_path: pathlib.Path,
                                                    where: str) -> None:
    root = str(tmp_path / "c") if where == "folder" else f"file://{tmp_path}/c"
    pipeline = build(root)
    pipeline.run(progress=False)
    keys = {name: report.key for name, report in pipeline.last_run.steps.items()}  # type: ignore[union-attr]
    assert set(keys) == {"load", "double"}
    # Plans, previews and state reads, as the widget makes them, hold nothing after.
    assert {s.status for s in pipeline.plan().steps.values()} == {"hit"}
    assert pipeline.preview("double", n=3).to_pylist() == [  # type: ignore[union-attr]
        {"x": 0, "y": 0}, {"x": 1, "y": 2}, {"x": 2, "y": 4}]
    cache = open_cache(root)
    assert cache is not None
    assert cache.manifest.state(keys["double"]).rows == 120
    assert cache.manifest.leased_keys() == set()
    # A run leases what it plans while it runs (the garbage collector skips those)...
    cache.manifest.lease([keys["load"]])
    assert build(root).run(progress=False)["default"]["train"].num_rows == 120
    assert cache.manifest.leased_keys() == {keys["load"]}
    # ...and gives them back when it is recorded.
    cache.manifest.release()
    assert cache.manifest.leased_keys() == set()
    cache.manifest.close()
