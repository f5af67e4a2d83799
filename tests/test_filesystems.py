"""Object stores that fail: resets, 503 SlowDown, slow answers and a store that stays
down, injected by a seeded proxy (tests/faultproxy.py) in front of moto on 127.0.0.1.
The SDK's own bounded retries get a run through; a store that stays down gives an error
naming the cache, and nothing committed is lost."""

from __future__ import annotations

import os
import random
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pyarrow.fs as pafs
import pytest

from distilabel_nb import Pipeline, StepFailedError
from distilabel_nb.cache.access import open_cache
from distilabel_nb.cache.filesystems import CacheUnreachableError, open_filesystem
from distilabel_nb.cache.layout import CacheWarning
from distilabel_nb.engine.plan import step_keys
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step

from .conftest import CallLog
from .faultproxy import FaultProxy

ROWS = [{"i": i} for i in range(60)]


def test_retries_and_timeouts_come_from_the_uri_or_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    base = "s3://bucket-x/prefix?scheme=http&endpoint_override=127.0.0.1:9&region=us-east-1"
    filesystem, path = open_filesystem(f"{base}&max_attempts=3&request_timeout=7")
    assert isinstance(filesystem, pafs.S3FileSystem) and path == "bucket-x/prefix"
    options = filesystem.__reduce__()[1][0]
    assert options["request_timeout"] == 7 and options["connect_timeout"] == 10
    assert options["endpoint_override"] == "127.0.0.1:9"
    with pytest.raises(ValueError, match="max_attempts"):
        open_filesystem(f"{base}&max_attempts=many")
    monkeypatch.setenv("DISTILABEL_NB_S3_MAX_ATTEMPTS", "2")
    assert isinstance(open_filesystem(base)[0], pafs.S3FileSystem)


@pytest.fixture
def proxy(s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    for name, value in s3["env"].items():
        monkeypatch.setenv(name, value)
    seed = int(os.environ.get("DISTILABEL_NB_FAULT_SEED", random.randrange(1 << 30)))
    print(f"fault seed: {seed} (set DISTILABEL_NB_FAULT_SEED to replay)")
    with FaultProxy(s3["port"], seed=seed, rate=0.0, max_in_a_row=2, slow=0.2) as running:
        yield running


def _uri(proxy: FaultProxy, attempts: int) -> str:
    return (f"s3://distilabel-nb-test/{uuid.uuid4().hex[:8]}/cache?scheme=http"
            f"&endpoint_override=127.0.0.1:{proxy.port}&region=us-east-1"
            f"&max_attempts={attempts}&request_timeout=5&connect_timeout=2")


def _build(uri: str, calls: CallLog, before_batch: Any = None) -> Pipeline:
    @step(inputs=["i"], outputs=["sq"])
    def Square(inputs: StepInput) -> StepOutput:
        if before_batch is not None:
            before_batch(inputs[0]["i"])
        calls.record("square", len(inputs))
        yield [{**row, "sq": row["i"] ** 2} for row in inputs]

    with Pipeline(name="flaky-store", cache_dir=uri) as pipeline:
        LoadDataFromDicts(name="load", data=ROWS, batch_size=10) >> Square(
            name="square", input_batch_size=10)
    return pipeline


def _rows(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(pipeline.run(progress=False)["default"]["train"].to_list())


WANT = [{"i": i, "sq": i * i} for i in range(60)]


def test_resets_slowdowns_and_slow_answers_are_retried(proxy: FaultProxy,
                                                       calls: CallLog) -> None:
    uri = _uri(proxy, attempts=4)  # at most two faults in a row: four attempts suffice
    proxy.rate = 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # nothing taken for damaged
        assert _rows(_build(uri, calls)) == WANT
        assert calls.rows("square") == 60
        pipeline = _build(uri, calls)
        assert _rows(pipeline) == WANT
    assert calls.rows("square") == 60  # the second run was a full hit, through the faults
    assert pipeline.last_run is not None
    assert set(pipeline.last_run.statuses().values()) == {"hit"}
    assert min(proxy.counts[f] for f in ("reset", "503", "slow")) > 0, proxy.counts


def test_a_store_that_stays_down_names_the_cache_and_loses_nothing(
        proxy: FaultProxy, calls: CallLog) -> None:
    uri = _uri(proxy, attempts=2)
    assert _rows(_build(uri, calls)) == WANT
    proxy.down = True
    began = time.monotonic()
    with pytest.raises(CacheUnreachableError) as caught:
        _build(uri, calls).run(progress=False)
    message = str(caught.value)
    assert "s3://distilabel-nb-test/" in message and "nothing" not in message.split(":")[0]
    assert "SlowDown" in message or "SLOW_DOWN" in message or "503" in message, message
    assert "the next run resumes" in message
    assert time.monotonic() - began < 60  # bounded
    proxy.down = False
    calls.clear()
    pipeline = _build(uri, calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert _rows(pipeline) == WANT
    assert calls.calls == [] and pipeline.last_run is not None
    assert set(pipeline.last_run.statuses().values()) == {"hit"}


def test_a_store_going_down_mid_run_keeps_every_committed_batch(
        proxy: FaultProxy, calls: CallLog) -> None:
    uri = _uri(proxy, attempts=2)
    holder: list[Pipeline] = []

    def go_down_at_30(first: int) -> None:
        if first != 30:
            return
        manifest, _ = open_cache(uri, create=True)  # type: ignore[misc]
        key = step_keys(holder[0])["square"][0]
        deadline = time.monotonic() + 30  # the writer's timer commits batches 0-2
        while set(manifest.state(key).batches) != {0, 1, 2}:
            assert time.monotonic() < deadline, "batches 0-2 were not committed"
            time.sleep(0.05)
        manifest.release()
        proxy.down = True

    holder.append(_build(uri, calls, go_down_at_30))
    # the step's write fails (StepFailedError), or, first, the run's record at its end
    with pytest.raises((StepFailedError, CacheUnreachableError)) as caught:
        holder[0].run(progress=False)
    assert "cannot write to the cache at s3://distilabel-nb-test/" in str(caught.value)
    proxy.down = False
    calls.clear()
    pipeline = _build(uri, calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert _rows(pipeline) == WANT
    assert calls.rows("square") == 30  # batches 0-2 were committed before the store fell
    assert pipeline.last_run is not None
    assert pipeline.last_run["square"].status == "partial"
