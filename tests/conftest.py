"""Shared fixtures: a private cache root per test, a log of which batches ran."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest


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
