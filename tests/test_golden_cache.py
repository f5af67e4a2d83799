"""The versioned cache format: a golden cache written by format v1 is read as a full hit
with the expected rows; a cache of an unknown format is refused clearly, never misread."""

from __future__ import annotations

import hashlib
import pathlib
import shutil
import sqlite3
import warnings

import pytest

from distilabel_nb import CACHE_VERSION
from distilabel_nb.cache.layout import CacheVersionError
from distilabel_nb.cli import main

from .golden import golden_pipeline

GOLDEN = pathlib.Path(__file__).parent / "golden" / "cache"


@pytest.fixture
def golden(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the golden cache (runs touch the manifest: never the original)."""
    return pathlib.Path(shutil.copytree(GOLDEN, tmp_path / "golden"))


def _digest(root: pathlib.Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_the_golden_cache_is_small() -> None:
    assert sum(p.stat().st_size for p in GOLDEN.rglob("*") if p.is_file()) < 20_000


def test_golden_v1_cache_is_a_full_hit(golden: pathlib.Path) -> None:
    assert CACHE_VERSION == 1, "a new format: keep the v1 golden cache, add one for the new"
    pipeline = golden_pipeline.build(golden)
    assert set(pipeline.plan().statuses().values()) == {"hit"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        distiset = pipeline.run(progress=False)
    assert set(pipeline.last_run.statuses().values()) == {"hit"}  # type: ignore[union-attr]
    assert distiset["default"]["train"].to_list() == golden_pipeline.expected()


def test_golden_cache_changed_step_recomputes_only_it(golden: pathlib.Path) -> None:
    pipeline = golden_pipeline.build(golden)
    pipeline.steps["shout"].mark = "?"  # type: ignore[attr-defined]
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert pipeline.last_run.statuses() == {  # type: ignore[union-attr]
        "words": "hit", "shout": "miss", "rank": "miss"}
    assert rows[0]["shout"] == "ALPHA?"


@pytest.mark.parametrize("version", ["2", "0", "garbage"])
def test_unknown_format_is_refused_and_left_untouched(golden: pathlib.Path,
                                                       version: str) -> None:
    conn = sqlite3.connect(golden / "v1" / "manifest.sqlite", isolation_level=None)
    conn.execute("UPDATE meta SET v=? WHERE k='cache_version'", (version,))
    conn.close()
    before = _digest(golden)
    with pytest.raises(CacheVersionError, match=f"cache format '{version}'.*reads format 1"):
        golden_pipeline.build(golden).run(progress=False)
    with pytest.raises(CacheVersionError):
        golden_pipeline.build(golden).plan()
    assert _digest(golden) == before


def test_cli_refuses_an_unknown_format(golden: pathlib.Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    conn = sqlite3.connect(golden / "v1" / "manifest.sqlite", isolation_level=None)
    conn.execute("UPDATE meta SET v='7' WHERE k='cache_version'")
    conn.close()
    for argv in (["cache", "ls"], ["cache", "show", "golden"], ["cache", "gc", "--max-size", "0"]):
        assert main(["--cache-dir", str(golden), *argv]) == 1
        assert "cache format '7'" in capsys.readouterr().err
    assert list((golden / "v1" / "data").glob("*/*/*.arrow"))


def test_a_newer_layout_beside_is_ignored(golden: pathlib.Path) -> None:
    """A later version writes its own v<N> folder; this one never reads it."""
    (golden / "v9").mkdir()
    (golden / "v9" / "manifest.sqlite").write_bytes(b"not for us")
    pipeline = golden_pipeline.build(golden)
    assert pipeline.run(progress=False)["default"]["train"].to_list() == (
        golden_pipeline.expected())
    assert (golden / "v9" / "manifest.sqlite").read_bytes() == b"not for us"
