"""Cache administration on object stores: ls / show / clear / gc / verify on a cache
kept on S3 (the moto server of conftest.py) and on a ``file://`` folder, after real runs;
the same tests on a local (SQLite) cache show both give the same answers.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any

import pyarrow.fs as pafs
import pytest

from distilabel_nb import Pipeline
from distilabel_nb.cache.admin import (
    cache_clear,
    cache_location,
    cache_ls,
    cache_show,
    cache_verify,
    open_cache,
)
from distilabel_nb.cache.gc import cache_gc
from distilabel_nb.cache.markers import sign
from distilabel_nb.cli import main
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step

ROOT = pathlib.Path(__file__).resolve().parents[1]


@step(inputs=["x"], outputs=["y"])
def Double(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["y"] = row["x"] * 2
    yield inputs


@step(inputs=["y"], outputs=["z"])
def AddOne(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["z"] = row["y"] + 1
    yield inputs


@step(inputs=["x"], outputs=["w"])
def Negate(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["w"] = -row["x"]
    yield inputs


def build(cache: str, name: str, n: int = 200) -> Pipeline:
    """load -> a -> b, and load -> c."""
    with Pipeline(name=name, cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"x": i, "p": name} for i in range(n)],
                                 batch_size=50)
        a = Double(name="a", input_batch_size=50)
        load >> a >> AddOne(name="b", input_batch_size=50)
        load >> Negate(name="c", input_batch_size=50)
    return pipeline


def run(cache: str, name: str, n: int = 200) -> Pipeline:
    pipeline = build(cache, name, n)
    result = pipeline.run(progress=False)
    assert result["b"]["train"]["z"][:] == [2 * i + 1 for i in range(n)]
    assert result["c"]["train"]["w"][:] == [-i for i in range(n)]
    return pipeline


def statuses(pipeline: Pipeline) -> dict[str, str]:
    return pipeline.last_run.statuses()  # type: ignore[union-attr,no-any-return]


def objects(uri: str) -> dict[str, int]:
    """Every object of the cache (dot-folders and temporary files included), by size."""
    filesystem, path = pafs.FileSystem.from_uri(uri)
    infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True,
                                                       allow_not_found=True))
    return {i.path: i.size for i in infos if i.type == pafs.FileType.File}


def data_files(uri: str) -> dict[str, int]:
    return {p: n for p, n in objects(uri).items() if p.endswith(".arrow")}


@pytest.fixture(params=["s3", "file", "local"])
def uri(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """A cache root on S3, in a folder through the object-store manifest (``file://``),
    and in a folder with the SQLite manifest (a plain path): the same tests for all."""
    if request.param == "file":
        return f"file://{tmp_path}/cache"
    if request.param == "local":
        return str(tmp_path / "cache")
    value: str = request.getfixturevalue("s3_uri")
    return value


def test_ls_and_show(uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(uri, "alpha")
    run(uri, "beta", n=400)
    listing = {e["pipeline"]: e for e in cache_ls(uri)}
    assert {n: (e["steps"], e["entries"]) for n, e in listing.items()} == {
        "alpha": (4, 4), "beta": (4, 4)}
    assert listing["beta"]["bytes"] > listing["alpha"]["bytes"] > 0
    assert listing["alpha"]["bytes"] + listing["beta"]["bytes"] == sum(
        data_files(uri).values())
    assert main(["--cache-dir", uri, "cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["pipeline", "steps", "outputs", "size"]
    assert any(line.startswith("alpha") and " kB" in line for line in out.splitlines())
    assert "2 pipeline(s)" in out

    shown = cache_show(uri, "beta")
    assert [s["step"] for s in shown["steps"]] == ["load", "a", "c", "b"]  # the run's order
    assert {(s["last_run"], s["cache"], s["rows"]) for s in shown["steps"]} == {
        ("miss", "complete", 400)}
    assert all(s["bytes"] > 0 and s["older_versions"] == 0 for s in shown["steps"])
    run(uri, "alpha", n=300)  # new data: every step gets a new version
    steps = {s["step"]: s for s in cache_show(uri, "alpha")["steps"]}
    assert steps["load"]["rows"] == 300 and steps["b"]["older_versions"] == 1
    assert steps["b"]["older_bytes"] > 0
    assert main(["--cache-dir", uri, "cache", "show", "alpha"]) == 0
    load = next(line for line in capsys.readouterr().out.splitlines()
                if line.startswith("load"))
    assert "complete" in load and "300" in load and "just now" in load
    assert main(["--cache-dir", uri, "cache", "show", "gamma"]) == 1
    assert "no pipeline 'gamma'" in capsys.readouterr().err

    result = cache_clear(uri, "alpha")  # both versions of every step, and the run records
    assert result["removed"] == 8 and result["skipped"] == 0
    assert [e["pipeline"] for e in cache_ls(uri)] == ["beta"]
    assert not [p for p in objects(uri) if "alpha" in p]
    assert sum(data_files(uri).values()) == listing["beta"]["bytes"]


def test_clear_one_step_recomputes_it_and_its_descendants(uri: str) -> None:
    first = run(uri, "alpha")
    keys = {name: report.key for name, report in first.last_run.steps.items()}  # type: ignore[union-attr]
    result = cache_clear(uri, "alpha", "a")
    assert sorted(result["steps"]) == ["a", "b"] and result["removed"] == 2
    left = "\n".join(objects(uri))
    for name in ("a", "b"):  # markers and data files both gone
        assert f"/{keys[name]}/" not in left and f"/{keys[name]}.json" not in left
    assert f"/{keys['c']}/" in left
    again = run(uri, "alpha")
    assert statuses(again) == {"load": "hit", "a": "miss", "c": "hit", "b": "miss"}

    with pytest.raises(KeyError, match="no step 'nope'"):
        cache_clear(uri, "alpha", "nope")


def test_gc_least_recently_used_first_dry_run_and_leases(uri: str) -> None:
    old = run(uri, "old")
    middle = time.time()
    time.sleep(0.05)
    run(uri, "new")
    sizes = {e["pipeline"]: e["bytes"] for e in cache_ls(uri)}

    before = objects(uri)
    result = cache_gc(uri, max_size=0, older_than="1s", dry_run=True)
    assert result["removed"] == 8 and result["bytes_freed"] == sum(sizes.values())
    assert objects(uri) == before  # a dry run deletes nothing

    assert cache_gc(uri, older_than="1d")["removed"] == 0
    result = cache_gc(uri, older_than=time.time() - middle)  # last used before "new" ran
    assert result["removed"] == 4 and result["bytes_freed"] == sizes["old"]
    assert [e["pipeline"] for e in cache_ls(uri) if e["bytes"]] == ["new"]
    old = run(uri, "old")  # recomputed, and now the most recently used
    assert set(statuses(old).values()) == {"miss"}
    # Its size now: how a run cuts its output into files depends on timing.
    resized = {e["pipeline"]: e["bytes"] for e in cache_ls(uri)}["old"]
    result = cache_gc(uri, max_size=resized)
    assert result["bytes_freed"] == sizes["new"]
    assert {e["pipeline"]: e["bytes"] for e in cache_ls(uri) if e["bytes"]} == {
        "old": resized}

    # A key leased by a live process (a run planning) survives any gc.
    manifest, _ = open_cache(uri)  # type: ignore[misc]
    leased = old.last_run["a"].key  # type: ignore[index]
    manifest.lease([leased])  # what a run does before it reads the key's state
    result = cache_gc(uri, max_size=0)
    assert result["removed"] == 3 and result["skipped"] == 1
    # Its files remain, and those it references columns of (its upstream's, forgotten).
    held = {r for e in manifest.outputs().values() if e.key == leased for s in e.segments
            for r in s.refs}
    assert {p for p in data_files(uri) if f"/{leased}/" not in p} == {
        p for p in data_files(uri) if any(r.endswith(p.split("/", 1)[1]) for r in held)}
    assert data_files(uri)
    manifest.release()
    assert cache_gc(uri, max_size=0)["removed"] == 1
    assert not data_files(uri)
    manifest.close()


def test_gc_removes_stray_files_after_a_grace_period(uri: str) -> None:
    run(uri, "alpha")
    committed = data_files(uri)
    folder = next(iter(committed)).rsplit("/", 1)[0]
    stray = f"{folder}/00000099-1-abcdef012345.arrow"  # a writer died before its marker
    filesystem, _ = pafs.FileSystem.from_uri(uri)
    with filesystem.open_output_stream(stray) as out:
        out.write(b"left by a killed process")
    result = cache_gc(uri, max_size="1TB")
    assert result["orphans"] == 0 and stray in data_files(uri)
    result = cache_gc(uri, max_size="1TB", orphan_grace=0)
    assert result["orphans"] == 1 and result["removed"] == 0
    assert data_files(uri) == committed


def test_a_planted_marker_never_gets_a_file_outside_the_cache_deleted(
        tmp_path: pathlib.Path) -> None:
    uri = f"file://{tmp_path}/cache"
    key = run(uri, "alpha").last_run["load"].key  # type: ignore[index]
    victim = tmp_path / "victim.arrow"
    victim.write_text("not the cache's")
    marker = {"key": key, "first": 9, "rows": [1], "path": "../../victim.arrow", "bytes": 1,
              "checksum": "0", "chunk": 50, "created": 0.0, "pipeline": "alpha",
              "step": "load"}
    marker["sig"] = sign(marker)  # well signed: only its path gives it away
    (tmp_path / "cache/v1/meta/keys" / key / "seg-planted.json").write_text(json.dumps(marker))
    assert cache_gc(uri, max_size=0)["removed"] == 4
    assert victim.read_text() == "not the cache's" and not data_files(uri)


def test_verify_reports_a_damaged_segment(uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    first = run(uri, "alpha")
    files = data_files(uri)
    assert cache_verify(uri) == {"files": len(files), "damaged": []}
    key = first.last_run["load"].key  # type: ignore[index]
    target = next(p for p in files if f"/{key}/" in p)  # read by no run while a, c hit
    filesystem, _ = pafs.FileSystem.from_uri(uri)
    with filesystem.open_output_stream(target) as out:
        out.write(b"not an arrow file at all")
    assert main(["--cache-dir", uri, "cache", "verify"]) == 0
    out = capsys.readouterr().out
    # The loader's file, and the segments of a, b and c that reference its columns.
    referrers = len([p for p in files if f"/{key}/" not in p])
    assert out.startswith(f"checked {len(files)} files: {1 + referrers} damaged")
    assert "alpha/load" in out and "checksum mismatch" in out
    assert "alpha/a" in out and f"refers to {target}" in out
    assert target not in objects(uri)
    assert not [p for p in objects(uri) if "/seg-" in p and target.rsplit("/", 1)[1] in p]
    assert cache_verify(uri) == {"files": len(files) - 1 - referrers, "damaged": []}
    assert {s["step"]: s["cache"] for s in cache_show(uri, "alpha")["steps"]}["load"] \
        != "complete"
    run(uri, "alpha")  # correct rows again (asserted in run)
    assert cache_verify(uri)["damaged"] == []


def test_cli_in_a_subprocess_prints_json(s3_uri: str, s3: dict[str, Any]) -> None:
    run(s3_uri, "alpha")
    env = {**os.environ, **s3["env"], "PYTHONPATH": str(ROOT)}

    def cli(*argv: str) -> Any:
        done = subprocess.run([sys.executable, "-m", "distilabel_nb.cli", "--cache-dir",
                               s3_uri, "--json", "cache", *argv], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert [(e["pipeline"], e["steps"]) for e in cli("ls")] == [("alpha", 4)]
    before = objects(s3_uri)
    result = cli("gc", "--max-size", "0", "--dry-run")
    assert result["dry_run"] and result["removed"] == 4 and objects(s3_uri) == before


def test_clear_errors_when_the_store_is_wrong(s3: dict[str, Any],
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in s3["env"].items():
        monkeypatch.setenv(name, value)
    options = f"scheme=http&endpoint_override=127.0.0.1:{s3['port']}&region=us-east-1"
    assert main(["--cache-dir", f"s3://no-such-bucket/cache?{options}", "cache", "ls"]) == 1
    err = capsys.readouterr().err
    assert "bucket 'no-such-bucket'" in err and "does not exist" in err
    assert main(["--cache-dir", "nope://bucket/cache", "cache", "gc", "--max-size", "1"]) == 1
    err = capsys.readouterr().err
    assert "cannot open the cache at nope://bucket/cache" in err and "s3://bucket/prefix" in err
    # An empty prefix of an existing bucket is an empty cache, not an error.
    assert main(["--cache-dir", f"s3://distilabel-nb-test/none?{options}", "cache", "ls"]) == 0
    assert "is empty" in capsys.readouterr().out


def test_an_unreachable_store_is_named_with_a_fix(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")
    closed = "scheme=http&endpoint_override=127.0.0.1:9&region=us-east-1"  # nothing there
    assert main(["--cache-dir", f"s3://bucket/cache?{closed}", "cache", "ls"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the cache at s3://bucket/cache" in err
    assert "endpoint_override" in err and "AWS_ACCESS_KEY_ID" in err


def test_credentials_in_a_uri_are_never_shown() -> None:
    shown = cache_location("s3://AKIAXYZ:hunter2@bucket/p?secret_key=s3cr3t&access_key=AK2"
                           "&session_token=t0k3n&endpoint_override=host:9000")
    assert "bucket/p" in shown and "endpoint_override=host:9000" in shown
    for secret in ("AKIAXYZ", "hunter2", "s3cr3t", "AK2", "t0k3n"):
        assert secret not in shown
