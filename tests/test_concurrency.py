"""Several processes on one cache: all finish with the right rows, the cache stays intact,
and garbage collection beside a run never deletes what the run uses."""

from __future__ import annotations

import contextlib
import json
import pathlib
import threading
import time
from typing import Any

from distilabel_nb.cache.gc import cache_gc
from distilabel_nb.cli import cache_clear

from . import faultkit
from . import faultkit_run as runner
from .test_faults import _assert_consistent


def _report(out: pathlib.Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def test_four_processes_run_the_same_pipeline_at_once(tmp_path: pathlib.Path) -> None:
    data = faultkit.write_data(tmp_path / "data.jsonl")
    cache, log = tmp_path / "cache", tmp_path / "log"
    processes = [runner.start(cache, data, tmp_path / f"out{i}", log, delay=0.01)
                 for i in range(4)]
    results = [runner.finish(p) for p in processes]
    want = faultkit.expected()
    for i, (code, err) in enumerate(results):
        assert code == 0, err[-3000:]
        assert faultkit.read_out(tmp_path / f"out{i}") == want, f"process {i}"
        warned = [w for w in _report(tmp_path / f"out{i}")["warnings"]
                  if "CacheWarning" in w]
        assert not warned, warned
    _assert_consistent(cache)
    # A later run is a full hit with the right rows.
    code, err = runner.finish(runner.start(cache, data, tmp_path / "after", log))
    assert code == 0, err[-3000:]
    assert faultkit.read_out(tmp_path / "after") == want
    assert set(_report(tmp_path / "after")["statuses"].values()) == {"hit"}


def test_gc_and_clear_beside_a_run_never_delete_what_it_uses(tmp_path: pathlib.Path) -> None:
    data = faultkit.write_data(tmp_path / "data.jsonl")
    cache, log = tmp_path / "cache", tmp_path / "log"
    process = runner.start(cache, data, tmp_path / "out", log, delay=0.02)
    assert runner.wait_for_log(log, process)
    stop = threading.Event()
    freed: list[tuple[float, int]] = []

    def collect() -> None:
        while not stop.is_set():
            started = time.time()
            result = cache_gc(cache, max_size=0, orphan_grace=0.0)
            freed.append((started, result["bytes_freed"]))
            with contextlib.suppress(KeyError):  # nothing recorded yet
                cache_clear(cache, "faults")
            time.sleep(0.01)

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        code, err = runner.finish(process)
    finally:
        stop.set()
        collector.join()
    assert code == 0, err[-3000:]
    assert faultkit.read_out(tmp_path / "out") == faultkit.expected()
    warned = [w for w in _report(tmp_path / "out")["warnings"]
              if "CacheWarning" in w]
    assert not warned, warned
    # While batches were being computed (until the log's last line), nothing was freed;
    # after the run recorded itself its leases ended and gc may take everything.
    last_batch = log.stat().st_mtime
    during = [n for started, n in freed if started < last_batch]
    assert len(during) > 3 and not any(during), "gc removed outputs a running process leased"
    # Once the run is over its outputs are fair game.
    _assert_consistent(cache)
    cache_gc(cache, max_size=0)
    assert not list((cache / "v1" / "data").glob("*/*/*.arrow"))
