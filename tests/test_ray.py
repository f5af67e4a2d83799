"""The Ray backend: the cache scenarios give the same rows and run the same batches as
the local backend, a cache is shared both ways, a driver killed mid-run resumes.

One local Ray (2 CPUs) for the whole module. The steps live in a small module written
to a temporary folder (not an installed package: it travels to the workers by value)
and, for the killed driver, run as the ``__main__`` of another process, as in a notebook.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="the Ray backend needs: pip install 'ray>=2.9'")

from distilabel_nb import StepFailedError  # noqa: E402
from distilabel_nb.cache.sqlite import SQLiteManifest  # noqa: E402
from distilabel_nb.cache.store import SegmentStore  # noqa: E402
from distilabel_nb.engine.channel import Channel  # noqa: E402
from distilabel_nb.engine.plan import step_keys  # noqa: E402

from .conftest import S3_CREDENTIALS  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

KIT = '''
"""Steps for the Ray tests; run as a script, it is a driver that runs the pipeline."""
import os
import pathlib
import signal
import sys
import time
import uuid

from distilabel_nb import Pipeline
from distilabel_nb.steps import LoadDataFromDicts, Step


class Record(Step):
    """``column = source * factor + 1``; logs every batch it computes to ``log``."""

    signature_skip = frozenset({"log", "delay", "fail_on", "fail_delay", "die_on"})
    source: str = "i"
    column: str = "x"
    factor: int = 1
    log: str = ""
    delay: float = 0.0
    fail_on: int = -1
    fail_delay: float = 0.0
    die_on: int = -1  # the worker dies (SIGKILL) the first time it starts this batch

    @property
    def inputs(self):
        return ["i", self.source]

    @property
    def outputs(self):
        return [self.column]

    def process(self, rows):
        first = rows[0]["i"]
        mark = pathlib.Path(self.log, f"died-{self.name}-{first}")
        if first == self.die_on and not mark.exists():
            mark.touch()
            time.sleep(0.2)  # mid-batch
            os.kill(os.getpid(), signal.SIGKILL)
        if first == self.fail_on:
            time.sleep(self.fail_delay)
            raise KeyError(f"no value for row {first}")
        time.sleep(self.delay)
        for row in rows:
            row[self.column] = row[self.source] * self.factor + 1
        pathlib.Path(self.log, f"{self.name}.{first}.{uuid.uuid4().hex}").touch()
        yield rows


def build(cache, log, n=120, size=10, factor=2, a_cache=True, delay=0.0, fail_on=-1,
          fail_delay=0.0, die_on=-1, b_resources=None):
    with Pipeline(name="ray-scenario", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"i": i} for i in range(n)],
                                 batch_size=size)
        a = Record(name="a", source="i", column="a", log=log, delay=delay,
                   input_batch_size=size, use_cache=a_cache)
        b = Record(name="b", source="a", column="b", factor=factor, log=log,
                   input_batch_size=size, fail_on=fail_on, fail_delay=fail_delay,
                   die_on=die_on, resources=b_resources)
        c = Record(name="c", source="b", column="c", log=log, input_batch_size=size)
        load >> a >> b >> c
    return pipeline


if __name__ == "__main__":
    cache, log, address = sys.argv[1:4]
    build(cache, log, n=300, delay=0.25).run(
        progress=False, backend="ray", backend_options={"address": address})
'''


def executed(log: pathlib.Path) -> collections.Counter[tuple[str, int]]:
    """(step, first row) of every batch computed since the log was last cleared."""
    counts: collections.Counter[tuple[str, int]] = collections.Counter()
    for path in log.iterdir():
        if path.name.startswith("died-"):  # a worker's kill mark, not a computed batch
            continue
        name, first, _ = path.name.split(".")
        counts[(name, int(first))] += 1
    return counts


def clear(log: pathlib.Path) -> None:
    for path in log.iterdir():
        path.unlink()


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, pathlib.Path]]:
    folder = tmp_path_factory.mktemp("raykit")
    path = folder / "raykit.py"
    path.write_text(KIT)
    spec = importlib.util.spec_from_file_location("raykit", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["raykit"] = module
    spec.loader.exec_module(module)
    yield module, path
    sys.modules.pop("raykit", None)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A local Ray with 2 CPUs; returns the environment its other drivers need."""
    # jsonschema imports rfc3987_syntax when it is installed (Jupyter's format extras),
    # which costs seconds of CPU; on a loaded 2-core machine Ray's dashboard agent then
    # misses the raylet's hard-coded 15 s start-up deadline (ray-project/ray#65983).
    # Ray's processes get a stand-in that makes jsonschema skip that format.
    stub = tmp_path_factory.mktemp("raystub")
    (stub / "rfc3987_syntax.py").write_text('raise ImportError("skipped for Ray")\n')
    saved = os.environ.get("PYTHONPATH")
    # Workers must import this checkout of distilabel_nb, whatever else is installed.
    path = os.pathsep.join([str(ROOT), str(stub), *([saved] if saved else [])])
    os.environ["PYTHONPATH"] = path
    # Workers reach the tests' S3 server with its credentials from their environment,
    # as on a cluster: credentials never travel with the work.
    monkeypatch = pytest.MonkeyPatch()
    for name, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        env = {**os.environ, "RAY_IGNORE_UNHANDLED_ERRORS": "1"}
        yield {"env": env, "address": ray.get_runtime_context().gcs_address}
    finally:
        ray.shutdown()
        monkeypatch.undo()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def rows(distiset: Any) -> list[dict[str, Any]]:
    return distiset["default"]["train"].to_list()


def statuses(pipeline: Any) -> dict[str, str]:
    return {name: report.status for name, report in pipeline.last_run.steps.items()}


def scenario(kit: ModuleType, backend: str, cache: pathlib.Path, log: pathlib.Path,
             **options: Any) -> list[tuple[Any, ...]]:
    """Cold, identical, changed middle step, use_cache=False on the first step."""
    log.mkdir()
    phases = [{}, {}, {"factor": 3}, {"factor": 3, "a_cache": False}]
    seen = []
    for changes in phases:
        clear(log)
        pipeline = kit.build(str(cache), str(log), **changes)
        result = pipeline.run(progress=False, backend=backend, backend_options=options)
        seen.append((rows(result), executed(log), statuses(pipeline)))
    return seen


@pytest.mark.parametrize("worker_io", [True, False], ids=["worker-io", "driver-io"])
def test_scenarios_match_local(kit: tuple[ModuleType, pathlib.Path], cluster: dict[str, Any],
                               tmp_path: pathlib.Path, worker_io: bool) -> None:
    module, _ = kit
    local = scenario(module, "local", tmp_path / "local-cache", tmp_path / "local-log")
    remote = scenario(module, "ray", tmp_path / "ray-cache", tmp_path / "ray-log",
                      worker_io=worker_io)
    for phase, (want, got) in enumerate(zip(local, remote, strict=True)):
        assert got == want, f"phase {phase}"
    cold, same, changed, uncached = remote
    assert len(cold[0]) == 120 and cold[0][5] == {"i": 5, "a": 6, "b": 13, "c": 14}
    assert {s for s, _ in cold[1]} == {"a", "b", "c"} and max(cold[1].values()) == 1
    assert not same[1] and set(same[2].values()) == {"hit"}
    assert {s for s, _ in changed[1]} == {"b", "c"}
    assert changed[2] == {"load": "hit", "a": "hit", "b": "miss", "c": "miss"}
    assert {s for s, _ in uncached[1]} == {"a", "b", "c"}


@pytest.mark.parametrize("uri", [False, True], ids=["sqlite", "object-store-manifest"])
def test_cache_shared_with_local_both_ways(kit: tuple[ModuleType, pathlib.Path],
                                           cluster: dict[str, Any], tmp_path: pathlib.Path,
                                           uri: bool) -> None:
    module, _ = kit
    log = tmp_path / "log"
    log.mkdir()
    cache = f"file://{tmp_path}/cache" if uri else str(tmp_path / "cache")
    first = module.build(cache, str(log)).run(progress=False)  # local
    clear(log)
    pipeline = module.build(cache, str(log))
    assert rows(pipeline.run(progress=False, backend="ray")) == rows(first)
    assert not executed(log) and set(statuses(pipeline).values()) == {"hit"}
    changed = module.build(cache, str(log), factor=5).run(progress=False, backend="ray")
    clear(log)
    pipeline = module.build(cache, str(log), factor=5)
    assert rows(pipeline.run(progress=False)) == rows(changed)  # local again
    assert not executed(log)


@pytest.mark.parametrize(("where", "worker_io"), [("s3", None), ("folder", True),
                                                  ("folder", None)])
def test_workers_read_and_write_the_cache(kit: tuple[ModuleType, pathlib.Path],
                                          cluster: dict[str, Any], s3: dict[str, Any],
                                          tmp_path: pathlib.Path,
                                          monkeypatch: pytest.MonkeyPatch, where: str,
                                          worker_io: bool | None) -> None:
    """With a cache on an object store (by default) or ``worker_io=True``, workers read
    their inputs from the cache and write their outputs to it: the driver writes only
    what its generators make and never assembles an input table; what they wrote is
    committed. A local folder is read and written by the driver by default."""
    module, _ = kit
    log = tmp_path / "log"
    log.mkdir()
    cache = (str(tmp_path / "cache") if where == "folder" else
             f"s3://distilabel-nb-test/{uuid.uuid4().hex[:8]}/cache?scheme=http"
             f"&endpoint_override=127.0.0.1:{s3['port']}&region=us-east-1")
    written: collections.Counter[str] = collections.Counter()
    assembled: list[str] = []
    write, materialize = SegmentStore.write, Channel.materialize

    def spy_write(self: SegmentStore, key: str, *args: Any) -> Any:
        written[key] += 1
        return write(self, key, *args)

    def spy_materialize(self: Channel, spec: Any) -> Any:
        assembled.append(self.name)
        return materialize(self, spec)

    with monkeypatch.context() as spies:
        spies.setattr(SegmentStore, "write", spy_write)
        spies.setattr(Channel, "materialize", spy_materialize)
        pipeline = module.build(cache, str(log))
        got = rows(pipeline.run(progress=False, backend="ray",
                                backend_options={"worker_io": worker_io}))
    keys = {name: key for name, (key, *_) in step_keys(pipeline).items()}
    if worker_io or where == "s3":
        assert set(written) == {keys["load"]}
        assert not assembled
    else:
        assert set(written) == set(keys.values())
        assert set(assembled) == {"load", "a", "b"}
    assert len(got) == 120 and got[7] == {"i": 7, "a": 8, "b": 17, "c": 18}
    clear(log)
    again = module.build(cache, str(log))
    assert rows(again.run(progress=False)) == got  # local, from what the workers wrote
    assert not executed(log) and set(statuses(again).values()) == {"hit"}


def test_widget_and_report_follow_a_ray_run(kit: tuple[ModuleType, pathlib.Path],
                                            cluster: dict[str, Any],
                                            tmp_path: pathlib.Path) -> None:
    """Events of a Ray run reach the driver: the cache graph sees steps running with
    rows done, then colours them as it does for a local run."""
    pytest.importorskip("anywidget")
    from distilabel_nb.notebook.widget import CacheGraph

    module, _ = kit
    log = tmp_path / "log"
    log.mkdir()
    cache = str(tmp_path / "cache")
    pipeline = module.build(cache, str(log), delay=0.05)
    graph = CacheGraph(pipeline)
    seen: list[tuple[str, int]] = []
    pipeline.add_listener(lambda e: seen.append((e.step, e.rows_done))
                          if e.kind == "batch_done" and e.step else None)
    pipeline.run(progress=False, backend="ray", on_event=graph.handle_event)
    assert {step for step, _ in seen} == {"load", "a", "b", "c"}
    assert max(rows for step, rows in seen if step == "c") == 120
    assert {n: v["status"] for n, v in graph.nodes.items()} == dict.fromkeys(
        ["load", "a", "b", "c"], "miss")
    assert pipeline.last_run["c"].rows == 120
    changed = module.build(cache, str(log), factor=3)
    graph = CacheGraph(changed)
    changed.run(progress=False, backend="ray", on_event=graph.handle_event)
    assert {n: v["status"] for n, v in graph.nodes.items()} == {
        "load": "hit", "a": "hit", "b": "miss", "c": "miss"}
    assert "upstream" in changed.last_run["c"].reason


def test_failed_batch_raises_the_step_error_and_is_retried_alone(
        kit: tuple[ModuleType, pathlib.Path], cluster: dict[str, Any],
        tmp_path: pathlib.Path) -> None:
    module, _ = kit
    log = tmp_path / "log"
    log.mkdir()
    cache = str(tmp_path / "cache")
    pipeline = module.build(cache, str(log), fail_on=60, fail_delay=1.0)
    with pytest.raises(StepFailedError, match=r"step 'b' failed on batch 6 .*KeyError") as info:
        pipeline.run(progress=False, backend="ray", backend_options={"window": 2},
                     fail_fast=True)
    assert isinstance(info.value.__cause__, KeyError)
    assert "raised in a Ray worker" in "".join(getattr(info.value.__cause__, "__notes__", []))
    assert statuses(pipeline)["b"] == "failed"
    manifest = SQLiteManifest(pathlib.Path(cache) / "v1" / "manifest.sqlite")
    committed = set(manifest.state(step_keys(pipeline)["b"][0]).batches)
    manifest.close()
    # Batches 0-5 were committed before the failure, and batch 7, which finished while
    # batch 6 was failing (two are in flight), is kept too.
    assert set(range(6)) | {7} <= committed and 6 not in committed
    clear(log)
    pipeline = module.build(cache, str(log))
    assert len(rows(pipeline.run(progress=False, backend="ray"))) == 120
    again = {first // 10 for step, first in executed(log) if step == "b"}
    assert 6 in again and again == set(range(12)) - committed
    assert statuses(pipeline)["b"] == "partial"


@pytest.mark.parametrize("where", ["task", "actor"])
def test_a_worker_killed_mid_batch_is_retried_with_exact_rows(
        kit: tuple[ModuleType, pathlib.Path], cluster: dict[str, Any],
        tmp_path: pathlib.Path, where: str) -> None:
    module, _ = kit
    log = tmp_path / "log"
    log.mkdir()
    resources = {"replicas": 1} if where == "actor" else None  # replicas: actors
    pipeline = module.build(str(tmp_path / "cache"), str(log), die_on=60,
                            b_resources=resources)
    got = rows(pipeline.run(progress=False, backend="ray"))
    assert (log / "died-b-60").exists(), "the worker was not killed"
    want = module.build(str(tmp_path / "local"), str(tmp_path)).run(progress=False)
    assert got == rows(want)
    assert statuses(pipeline) == dict.fromkeys(["load", "a", "b", "c"], "miss")
    done = executed(log)
    assert done[("b", 60)] == 1 and all(n == 1 for n in done.values())
    assert {first for step, first in done if step == "b"} == set(range(0, 120, 10))


def test_driver_killed_then_resumed(kit: tuple[ModuleType, pathlib.Path],
                                    cluster: dict[str, Any], tmp_path: pathlib.Path) -> None:
    """A driver (steps defined in its __main__) is SIGKILLed mid-run; the next run, here,
    reuses every batch it committed and returns exactly the uninterrupted rows."""
    module, script = kit
    log = tmp_path / "log"
    log.mkdir()
    cache = str(tmp_path / "cache")
    driver = subprocess.Popen([sys.executable, str(script), cache, str(log),
                               cluster["address"]], cwd=ROOT, env=cluster["env"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while sum(1 for s, _ in executed(log) if s == "a") < 8:
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the driver computed nothing in 120 s"
        time.sleep(0.1)
    time.sleep(1.5)  # the batch writer commits at least every second
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    pipeline = module.build(cache, str(log), n=300)
    manifest = SQLiteManifest(pathlib.Path(cache) / "v1" / "manifest.sqlite")
    committed = set(manifest.state(step_keys(pipeline)["a"][0]).batches)
    manifest.close()
    assert 0 < len(committed) < 30, committed
    clear(log)
    result = pipeline.run(progress=False, backend="ray")
    resumed = {first // 10 for step, first in executed(log) if step == "a"}
    assert resumed and not resumed & committed
    assert resumed | committed == set(range(30))
    assert statuses(pipeline)["a"] == "partial"
    fresh = module.build(str(tmp_path / "fresh"), str(log), n=300).run(progress=False)
    assert rows(result) == rows(fresh)


def test_stateful_steps_live_in_actors(cluster: dict[str, Any],
                                       tmp_path: pathlib.Path) -> None:
    """A step with load() (defined here, in a function) runs in its replicas; an LLM task
    gives the same rows and token counts as locally."""
    from distilabel_nb import RayPipeline
    from distilabel_nb.llms import OfflineLLM
    from distilabel_nb.steps import LoadDataFromDicts, Step
    from distilabel_nb.steps.tasks import TextGeneration

    log = tmp_path / "log"
    log.mkdir()

    class Offset(Step):
        signature_skip = frozenset({"log"})
        log: str = ""

        @property
        def inputs(self) -> list[str]:
            return ["i"]

        @property
        def outputs(self) -> list[str]:
            return ["o", "instruction"]

        def load(self) -> None:
            self.base = 100

        def process(self, *inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
            (log / f"{os.getpid()}.{inputs[0][0]['i']}").touch()
            for row in inputs[0]:
                row["o"] = row["i"] + self.base
                row["instruction"] = f"Say {row['i']}"
            yield inputs[0]

    def build(cache: pathlib.Path) -> Any:
        with RayPipeline(name="actors", cache_dir=cache) as pipeline:
            load = LoadDataFromDicts(name="load", data=[{"i": i} for i in range(60)],
                                     batch_size=10)
            offset = Offset(name="offset", log=str(log), input_batch_size=10)
            offset.resources = {"replicas": 2, "num_cpus": 0}  # type: ignore[attr-defined]
            gen = TextGeneration(name="gen", llm=OfflineLLM(), input_batch_size=10)
            load >> offset >> gen
        return pipeline

    remote = build(tmp_path / "ray")
    got = rows(remote.run(progress=False))  # RayPipeline: backend="ray" by default
    assert [r["o"] for r in got] == [i + 100 for i in range(60)]
    pids = {path.name.split(".")[0] for path in log.iterdir()}
    assert len(pids) == 2 and str(os.getpid()) not in pids
    local = build(tmp_path / "local")
    assert rows(local.run(progress=False, backend="local")) == got
    assert remote.last_run["gen"].tokens_used == local.last_run["gen"].tokens_used > 0


def test_core_import_does_not_import_ray() -> None:
    code = "import sys, distilabel_nb; from distilabel_nb import RayPipeline; " \
           "assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_routed_pipeline_gives_the_local_rows(cluster: dict[str, Any],
                                              tmp_path: pathlib.Path) -> None:
    """Routing is decided in the driver: a Ray run routes every batch as a local run."""
    from .test_routing import build

    local = build(tmp_path / "local", []).run(progress=False)
    pipeline = build(tmp_path / "ray", [])
    remote = pipeline.run(progress=False, backend="ray")
    assert rows(remote) == rows(local) and len(rows(remote)) == 200
    assert set(statuses(pipeline).values()) == {"miss"}


def test_distilabel_steps_run_in_their_replicas(cluster: dict[str, Any],
                                                tmp_path: pathlib.Path) -> None:
    """distilabel's own Step subclass (a PrivateAttr set in load()) with
    ``StepResources(replicas=2)``: two workers, none of them the driver; rows as local."""
    distilabel_steps = pytest.importorskip("distilabel.steps")
    from pydantic import PrivateAttr

    from distilabel_nb import Pipeline

    class Offset(distilabel_steps.Step):  # type: ignore[misc, name-defined]
        base: int = 100
        _pid: int = PrivateAttr(0)

        @property
        def inputs(self) -> list[str]:
            return ["i"]

        @property
        def outputs(self) -> list[str]:
            return ["o", "pid"]

        def load(self) -> None:
            super().load()
            self._pid = os.getpid()

        def process(self, inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
            for row in inputs:
                row["o"] = row["i"] + self.base
                row["pid"] = self._pid
            yield inputs

    def build(cache: pathlib.Path) -> Any:
        with Pipeline(name="distilabel-ray", cache_dir=cache) as pipeline:
            load = distilabel_steps.LoadDataFromDicts(
                name="load", data=[{"i": i} for i in range(40)], batch_size=10)
            load >> Offset(name="offset", input_batch_size=10,
                           resources=distilabel_steps.StepResources(replicas=2))
        return pipeline

    remote = rows(build(tmp_path / "ray").run(progress=False, backend="ray"))
    assert [r["o"] for r in remote] == [i + 100 for i in range(40)]
    pids = {r["pid"] for r in remote}
    assert len(pids) == 2 and os.getpid() not in pids
    local = rows(build(tmp_path / "local").run(progress=False, backend="local"))
    assert [r["o"] for r in local] == [r["o"] for r in remote]
