"""A cache on S3-compatible storage: a moto server on 127.0.0.1, a bucket per module.

The object-store manifest is tested first on a plain folder (``file://``, fast), then
through S3: a run from a fresh process is a full hit, and two processes filling the
same cache at once leave it intact.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import pathlib
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from distilabel_nb.cache.access import open_cache
from distilabel_nb.cache.layout import CacheWarning
from distilabel_nb.cache.markers import sign
from distilabel_nb.cache.objectstore import ObjectStoreManifest
from distilabel_nb.cache.records import RunRecord

ROOT = pathlib.Path(__file__).resolve().parents[1]

KIT = '''
"""A pipeline on a cache URI; as a script, runs it and prints what happened as JSON."""
import hashlib
import json
import pathlib
import sys
import time
import uuid

from distilabel_nb import Pipeline
from distilabel_nb.steps import LoadDataFromDicts, Step


class Twice(Step):
    """``column = source * 2``, slowly; logs every batch it computes to ``log``."""

    signature_skip = frozenset({"log", "delay"})
    source: str = "i"
    column: str = "x"
    log: str = ""
    delay: float = 0.0

    @property
    def inputs(self):
        return ["i", self.source]

    @property
    def outputs(self):
        return [self.column]

    def process(self, rows):
        time.sleep(self.delay)
        for row in rows:
            row[self.column] = row[self.source] * 2
        pathlib.Path(self.log, f"{self.name}.{rows[0]['i']}.{uuid.uuid4().hex}").touch()
        yield rows


def build(cache, log, delay=0.0):
    with Pipeline(name="s3-scenario", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"i": i} for i in range(200)],
                                 batch_size=10)
        a = Twice(name="a", source="i", column="a", log=log, delay=delay,
                  input_batch_size=10)
        b = Twice(name="b", source="a", column="b", log=log, delay=delay,
                  input_batch_size=20)
        load >> a >> b
    return pipeline


def digest(distiset):
    rows = distiset["default"]["train"].to_list()
    return len(rows), hashlib.sha256(json.dumps(rows).encode()).hexdigest()


if __name__ == "__main__":
    cache, log, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    pipeline = build(cache, log, delay)
    if len(sys.argv) > 4:  # start together: say ready, wait for the go
        barrier = pathlib.Path(sys.argv[4])
        (barrier / f"ready-{uuid.uuid4().hex}").touch()
        while not (barrier / "go").exists():
            time.sleep(0.01)
    result = pipeline.run(progress=False)
    statuses = {name: report.status for name, report in pipeline.last_run.steps.items()}
    print(json.dumps({"statuses": statuses, "digest": digest(result)}))
'''


# -- the manifest on a folder --------------------------------------------------------------
def test_manifest_markers_on_a_folder(tmp_path: pathlib.Path) -> None:
    manifest, store = open_cache(f"file://{tmp_path}/cache", create=True)  # type: ignore[misc]
    table = pa.table({"i": list(range(30))})
    key = "k" * 32
    for first in (0, 2):
        segment = store.write(key, first, [table.slice(0, 10), table.slice(10, 10)])
        manifest.add_segment(key, first, [10, 10], segment.path, segment.nbytes,
                             segment.checksum, 10, "p", "s")
    orphan = store.write(key, 4, [table.slice(0, 10)])  # a writer died before its marker
    state = ObjectStoreManifest(manifest.fs, manifest.base).state(key)
    assert sorted(state.batches) == [0, 1, 2, 3] and not state.complete
    assert orphan.path not in {ref.path for ref in state.batches.values()}
    manifest.complete(key, 4, 10, "p", "s")
    fresh = ObjectStoreManifest(manifest.fs, manifest.base)
    state = fresh.state(key)
    assert state.complete and state.rows == 40 and state.batches[3].offset == 10
    assert store.read(state.batches[3].path, state.batches[3].checksum).num_rows == 20

    # A damaged marker is dropped with a warning, never trusted.
    markers = tmp_path / "cache/v1/meta/keys" / key
    done = next(p for p in markers.iterdir() if p.name.startswith("done-"))
    done.write_text(done.read_text().replace('"n_batches": 4', '"n_batches": 3'))
    with pytest.warns(CacheWarning, match="completion marker"):
        state = ObjectStoreManifest(manifest.fs, manifest.base).state(key)
    assert sorted(state.batches) == [0, 1, 2, 3] and not state.complete
    marker = next(p for p in markers.iterdir() if p.name.startswith("seg-00000002"))
    marker.write_text(marker.read_text().replace('"first": 2', '"first": 3'))
    with pytest.warns(CacheWarning, match="commit marker"):
        state = ObjectStoreManifest(manifest.fs, manifest.base).state(key)
    assert sorted(state.batches) == [0, 1] and not state.complete

    # A marker naming a file outside its key's folder is refused, even well signed.
    outside = {"key": key, "first": 6, "rows": [10], "path": "../../elsewhere.arrow",
               "bytes": 1, "checksum": "0", "chunk": 10, "created": 0.0}
    outside["sig"] = sign(outside)
    (markers / "seg-outside.json").write_text(json.dumps(outside))
    with pytest.warns(CacheWarning, match="commit marker"):
        assert 6 not in ObjectStoreManifest(manifest.fs, manifest.base).state(key).batches

    # drop_segment and invalidate forget markers; invalidate returns the unused files.
    fresh.drop_segment(state.batches[0].path)
    assert not fresh.state(key).batches
    manifest.add_segment(key, 0, [10], orphan.path, orphan.nbytes, orphan.checksum, 10,
                         "p", "s")
    assert fresh.state(key).batches[0].path == orphan.path
    assert fresh.invalidate([key]) == [orphan.path]
    assert not fresh.state(key).batches

    # Run records and leases.
    manifest.record_runs([RunRecord("p/1", "s", key, {"x": 1}, "miss", 40, 1, 0.5, 1.0)])
    assert manifest.last_runs("p/1")["s"].description == {"x": 1}
    other = ObjectStoreManifest(manifest.fs, manifest.base)
    other.lease(["z" * 32])
    assert "z" * 32 in manifest.leased_keys()
    other.release()
    assert "z" * 32 not in manifest.leased_keys()


# -- S3 (the server: tests/conftest.py) ------------------------------------------------
@pytest.fixture
def uri(s3_uri: str) -> str:
    return s3_uri


@pytest.fixture
def kit(tmp_path: pathlib.Path) -> Iterator[tuple[ModuleType, pathlib.Path]]:
    path = tmp_path / "s3kit.py"
    path.write_text(KIT)
    spec = importlib.util.spec_from_file_location("s3kit", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["s3kit"] = module
    spec.loader.exec_module(module)
    yield module, path
    sys.modules.pop("s3kit", None)


def _driver(script: pathlib.Path, uri: str, log: pathlib.Path, delay: float,
            env: dict[str, str], *barrier: pathlib.Path) -> subprocess.Popen[bytes]:
    import os

    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(script), uri, str(log), str(delay), *map(str, barrier)]
    return subprocess.Popen(command, cwd=ROOT, env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _report(driver: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, err = driver.communicate(timeout=240)
    assert driver.returncode == 0, err.decode()[-3000:]
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


def test_s3_cache_reused_by_a_fresh_process(kit: tuple[ModuleType, pathlib.Path], uri: str,
                                            s3: dict[str, Any],
                                            tmp_path: pathlib.Path) -> None:
    module, script = kit
    log = tmp_path / "log"
    log.mkdir()
    pipeline = module.build(uri, str(log))
    first = module.digest(pipeline.run(progress=False))
    assert first[0] == 200 and len(list(log.iterdir())) == 20 + 10
    filesystem, path = pafs.FileSystem.from_uri(uri)
    assert isinstance(filesystem, pafs.S3FileSystem)
    names = [i.path for i in filesystem.get_file_info(pafs.FileSelector(path, recursive=True))]
    assert any("/meta/keys/" in n and "/seg-" in n for n in names)
    assert any(n.endswith(".arrow") and "/data/" in n for n in names)
    report = _report(_driver(script, uri, log, 0.0, s3["env"]))
    assert set(report["statuses"].values()) == {"hit"}
    assert tuple(report["digest"]) == first
    assert len(list(log.iterdir())) == 30  # nothing ran in the second process


def test_two_processes_fill_one_s3_cache(kit: tuple[ModuleType, pathlib.Path], uri: str,
                                         s3: dict[str, Any], tmp_path: pathlib.Path) -> None:
    module, script = kit
    log = tmp_path / "log"
    log.mkdir()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    drivers = [_driver(script, uri, log, 0.05, s3["env"], barrier) for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(list(barrier.iterdir())) < 2:
        assert all(d.poll() is None for d in drivers), "a driver died before starting"
        assert time.monotonic() < deadline, "the drivers did not start in 120 s"
        time.sleep(0.02)
    (barrier / "go").touch()
    reports = [_report(driver) for driver in drivers]
    assert all(set(r["statuses"].values()) <= {"miss", "partial"} for r in reports)
    twice = collections.Counter(p.name.rsplit(".", 1)[0] for p in log.iterdir())
    assert max(twice.values()) == 2  # the same batches were computed by both, at once
    expected = module.digest(module.build(f"file://{tmp_path}/local", str(tmp_path)).run(
        progress=False))
    assert all(tuple(r["digest"]) == expected for r in reports)
    for path in list(log.iterdir()):
        path.unlink()
    pipeline = module.build(uri, str(log))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # nothing damaged, nothing dropped
        third = module.digest(pipeline.run(progress=False))
    assert third == expected
    assert {r.status for r in pipeline.last_run.steps.values()} == {"hit"}
    assert not list(log.iterdir())
