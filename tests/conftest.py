"""Shared fixtures: a private cache root per test, a log of which batches ran."""

from __future__ import annotations

import importlib.util
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .browser_helpers import free_port

#: The tests of distilabel's own classes need the ``distilabel`` extra.
collect_ignore_glob = [] if importlib.util.find_spec("distilabel") else [
    "test_interop_*.py", "test_distilabel_*.py"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test ever touches ~/.cache: the default cache root points into tmp_path."""
    monkeypatch.setenv("DISTILABEL_NB_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture
def cache_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "cache"


class CallLog:
    """Which step processed which rows, in order: the did / did-not of every scenario."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def record(self, step: str, rows: int) -> None:
        self.calls.append((step, rows))

    def steps(self) -> set[str]:
        return {name for name, _ in self.calls}

    def rows(self, step: str) -> int:
        return sum(n for name, n in self.calls if name == step)

    def batches(self, step: str) -> int:
        return sum(1 for name, _ in self.calls if name == step)

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def calls() -> Iterator[CallLog]:
    log = CallLog()
    yield log


#: What the tests' S3 server accepts (moto takes any key).
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                  "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """An S3-compatible server (moto) on 127.0.0.1 with a bucket ``distilabel-nb-test``;
    its port and the credentials clients need in their environment."""
    server_mod = pytest.importorskip("moto.server", reason="needs: pip install 'moto[server]'")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}",
                              aws_access_key_id="test", aws_secret_access_key="test",
                              region_name="us-east-1")
        client.create_bucket(Bucket="distilabel-nb-test")
        yield {"port": port, "env": S3_CREDENTIALS}
    finally:
        server.stop()


@pytest.fixture
def s3_uri(s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh cache root on the S3 server (a new prefix), its credentials in the
    environment."""
    for name, value in s3["env"].items():
        monkeypatch.setenv(name, value)
    return (f"s3://distilabel-nb-test/{uuid.uuid4().hex[:8]}/cache?scheme=http"
            f"&endpoint_override=127.0.0.1:{s3['port']}&region=us-east-1")
