"""Faults: SIGKILL at random moments, Ctrl-C, a full disk. After each, the next run
returns exactly the rows of an uninterrupted run and keeps what was finished."""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import time
import types
from typing import Any

import pytest

from distilabel_nb import StepFailedError
from distilabel_nb.cache import store as store_module
from distilabel_nb.cache.sqlite import SQLiteManifest
from distilabel_nb.cache.store import SegmentStore
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step

from . import faultkit
from . import faultkit_run as runner

TRIALS = int(os.environ.get("DISTILABEL_NB_KILL_TRIALS", "5"))


@pytest.fixture
def data(tmp_path: pathlib.Path) -> pathlib.Path:
    return faultkit.write_data(tmp_path / "data.jsonl")


def _seed() -> int:
    seed = int(os.environ.get("DISTILABEL_NB_FAULT_SEED", random.randrange(1 << 30)))
    print(f"fault seed: {seed} (set DISTILABEL_NB_FAULT_SEED to replay)")
    return seed


def test_sigkill_at_random_moments_then_rerun(tmp_path: pathlib.Path,
                                              data: pathlib.Path) -> None:
    seed = _seed()
    want = faultkit.expected()
    with concurrent.futures.ThreadPoolExecutor(max_workers=TRIALS) as pool:
        futures = [pool.submit(runner.kill_trial, tmp_path / f"trial{i}", data, seed + i, 1 + i % 2)
                   for i in range(TRIALS)]
        results = [f.result() for f in futures]
    for i, result in enumerate(results):
        assert result["code"] == 0, f"trial {i}: {result['stderr'][-2000:]}"
        assert result["rows"] == want, f"trial {i}: rows differ from an uninterrupted run"
        assert "failed" not in result["report"]["statuses"].values()
        assert not [w for w in result["report"]["warnings"] if "CacheWarning" in w], i
    assert sum(r["killed"] for r in results) >= TRIALS // 2, "too few kills landed mid-run"


def test_ctrl_c_in_a_child_process_resumes(tmp_path: pathlib.Path, data: pathlib.Path) -> None:
    cache, log = tmp_path / "cache", tmp_path / "log"
    process = runner.start(cache, data, tmp_path / "first", log, delay=0.02)
    assert runner.wait_for_log(log, process, lines=8)
    process.send_signal(signal.SIGINT)
    code, err = runner.finish(process)
    assert code != 0 and "KeyboardInterrupt" in err, err[-2000:]
    first = faultkit.read_log(log)
    out = tmp_path / "out"
    code, err = runner.finish(runner.start(cache, data, out, log, delay=0.0))
    assert code == 0, err[-2000:]
    assert faultkit.read_out(out) == faultkit.expected()
    second = faultkit.read_log(log)[len(first):]
    for name in ("upper", "nchars", "words"):
        before = {f for s, f, _, _ in first if s == name}
        again = {f for s, f, _, _ in second if s == name}
        # A batch the interrupt cut between its last line and its return to the engine
        # was not finished; at most that one per step runs again.
        assert len(before & again) <= 1, (name, sorted(before & again))
    statuses = json.loads((out / "report.json").read_text())["statuses"]
    assert statuses["upper"] in ("partial", "hit"), statuses


def test_keyboard_interrupt_in_process_never_recomputes_finished_batches(
        tmp_path: pathlib.Path, data: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "log"
    monkeypatch.setenv("FAULTKIT_LOG", str(log))
    monkeypatch.setenv("FAULTKIT_INTERRUPT", "upper:150")
    pipeline = faultkit.build(tmp_path / "cache", data)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(progress=False)
    assert pipeline.last_run is not None
    assert pipeline.last_run["upper"].status == "partial"
    assert "15 finished batches kept" in pipeline.last_run["upper"].reason
    first = faultkit.read_log(log)
    assert sorted(f for s, f, _, _ in first if s == "upper") == list(range(0, 150, 10))

    monkeypatch.delenv("FAULTKIT_INTERRUPT")
    distiset = pipeline.run(progress=False)  # the same object: the "kernel" is usable
    assert faultkit.rows_of(distiset) == faultkit.expected()
    second = faultkit.read_log(log)[len(first):]
    for name in ("upper", "nchars", "words"):
        before = [f for s, f, _, _ in first if s == name]
        again = [f for s, f, _, _ in second if s == name]
        assert not set(before) & set(again), f"{name} recomputed finished batches"
        assert sorted(before + again) == list(range(0, 300, 10)), name
    assert pipeline.last_run["upper"].status == "partial"
    assert pipeline.last_run["upper"].rows_reused == 150


# -- a full disk ---------------------------------------------------------------------------


def _failing_os(after: int) -> types.SimpleNamespace:
    """``os`` for the store module whose file writes fail with ENOSPC after ``after``."""
    calls = {"n": 0}

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = os.fdopen(fd, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] > after:
            def write(_data: Any) -> int:
                raise OSError(errno.ENOSPC, "No space left on device")

            handle.write = write
        return handle

    fake = types.SimpleNamespace(**{name: getattr(os, name) for name in dir(os)
                                    if not name.startswith("__")})
    fake.fdopen = fdopen
    return fake


def _assert_consistent(cache: pathlib.Path) -> None:
    """Every segment the manifest lists is intact; no temporary file is left behind."""
    version = cache / "v1"
    manifest = SQLiteManifest(version / "manifest.sqlite")
    store = SegmentStore(str(version))
    try:
        for path, checksum in manifest.query("SELECT path, checksum FROM segments"):
            full = path if os.path.isabs(path) else f"{version}/{path}"
            assert store.verify(full, checksum), full
    finally:
        manifest.close()
    assert not list(version.glob("data/*/*/*.tmp-*"))


def test_disk_full_gives_a_clear_error_and_the_next_run_resumes(
        tmp_path: pathlib.Path, data: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "log"
    monkeypatch.setenv("FAULTKIT_LOG", str(log))
    monkeypatch.setenv("FAULTKIT_DELAY", "0.004")  # a few segment files per step
    cache = tmp_path / "cache"
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "os", _failing_os(after=2))
        pipeline = faultkit.build(cache, data)
        with pytest.raises(StepFailedError) as caught:
            pipeline.run(progress=False)
    message = str(caught.value)
    assert "no space left" in message and "cache" in message, message
    _assert_consistent(cache)
    first = faultkit.read_log(log)

    distiset = faultkit.build(cache, data).run(progress=False)
    assert faultkit.rows_of(distiset) == faultkit.expected()
    _assert_consistent(cache)
    assert len(faultkit.read_log(log)) - len(first) <= 90


@step(inputs=["blob"], outputs=["blob2"])
def Reverse(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["blob2"] = row["blob"][::-1]
    yield inputs


@contextlib.contextmanager
def _tmpfs(folder: pathlib.Path, size: str) -> Any:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                    reason="needs root to mount a small tmpfs")
def test_real_full_disk_on_a_small_tmpfs(tmp_path: pathlib.Path) -> None:
    rng = random.Random(7)
    rows: list[dict[str, Any]] = [{"id": i, "blob": rng.randbytes(48).hex()}
                                  for i in range(6000)]  # ~0.6 MB/step
    want = [{**r, "blob2": r["blob"][::-1]} for r in rows]
    from distilabel_nb import Pipeline

    def build(cache: pathlib.Path) -> Pipeline:
        with Pipeline(name="full", cache_dir=cache) as pipeline:
            load = LoadDataFromDicts(name="load", data=rows, batch_size=500)
            load >> Reverse(name="reverse", input_batch_size=500)
        return pipeline

    with _tmpfs(tmp_path / "disk", "700k") as disk:
        with pytest.raises((StepFailedError, OSError)) as caught:
            build(disk / "cache").run(progress=False)
        text = str(caught.value).lower()
        print("FULL-DISK ERROR:", caught.value)
        assert "no space" in text or "disk is full" in text, text
        _assert_consistent(disk / "cache")
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        distiset = build(disk / "cache").run(progress=False)
        assert distiset["default"]["train"].to_list() == want
        _assert_consistent(disk / "cache")


def test_sigkill_during_a_slow_batch_keeps_the_one_finished_before(
        tmp_path: pathlib.Path) -> None:
    """A finished batch is committed within ``max_delay`` even when no batch follows it
    soon: batches of 2 s, SIGKILL 1 s into the second one; the next run computes only
    the second and the third."""
    data = faultkit.write_data(tmp_path / "data.jsonl", n=30)
    cache, log = tmp_path / "cache", tmp_path / "log"
    process = runner.start(cache, data, tmp_path / "killed", log, delay=2.0, pipeline="slow")
    assert runner.wait_for_log(log, process, lines=1, timeout=60)
    time.sleep(1.0)
    assert process.poll() is None, "the run ended before the kill"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert [(s, f) for s, f, _, _ in faultkit.read_log(log)] == [("slow", 0)]

    out = tmp_path / "out"
    code, err = runner.finish(runner.start(cache, data, out, log, delay=0.0, pipeline="slow"))
    assert code == 0, err[-2000:]
    again = [(s, f) for s, f, _, _ in faultkit.read_log(log)][1:]
    assert again == [("slow", 10), ("slow", 20)], "only the unfinished batches run again"
    rows = faultkit.read_out(out)["default"]
    assert [r["slow"] for r in rows] == [i * 2 for i in range(30)]
    assert json.loads((out / "report.json").read_text())["statuses"]["slow"] == "partial"
