"""The run history the cache keeps: every finished run of a pipeline, whole, read back
by another process, and two runs compared in the words of the miss reasons."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from distilabel_nb import Pipeline
from distilabel_nb.cache.admin import cache_clear, opened
from distilabel_nb.cache.history import RunEntry, new_run_id, pick_run
from distilabel_nb.engine.reasons import compare_runs
from distilabel_nb.steps import LoadDataFromDicts, StepInput, step


@step(inputs=["text"], outputs=["styled"])
def Style(inputs: StepInput, style: str = "concise") -> Any:
    for row in inputs:
        row["styled"] = f"{style}: {row['text']}"
    yield inputs


@step(inputs=["text"], outputs=["styled"])
def StyleShouting(inputs: StepInput, style: str = "concise") -> Any:
    for row in inputs:
        row["styled"] = f"{style}: {row['text']}".upper()
    yield inputs


@step(inputs=["styled"], outputs=["n"])
def Count(inputs: StepInput) -> Any:
    for row in inputs:
        row["n"] = len(row["styled"])
    yield inputs


def build(root: str | pathlib.Path, rows: int = 1000, style: str = "concise",
          shout: bool = False) -> Pipeline:
    with Pipeline(name="story", cache_dir=root) as pipeline:
        load = LoadDataFromDicts(name="load", batch_size=250,
                                 data=[{"text": f"t{i}"} for i in range(rows)])
        write = (StyleShouting if shout else Style)(name="write", style=style)
        count = Count(name="count")
        load >> write >> count
    return pipeline


def history(root: str | pathlib.Path, name: str = "story") -> list[RunEntry]:
    with opened(root) as cache:
        assert cache is not None
        return cache[0].history(name)


def whole(root: str | pathlib.Path, entry: RunEntry) -> RunEntry:
    with opened(root) as cache:
        assert cache is not None
        found = cache[0].history_run(entry.pipeline, entry.run_id)
    assert found is not None
    return found


@pytest.fixture(params=["folder", "uri"])
def root(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """A local cache (SQLite manifest) and an object-store one (file:// URI)."""
    return str(tmp_path / "cache") if request.param == "folder" else f"file://{tmp_path}/cache"


def test_every_run_is_kept_with_its_statuses_rows_and_id(root: str) -> None:
    first = build(root)
    first.run(progress=False)
    changed = build(root, style="detailed")
    changed.run(progress=False)
    again = build(root, style="detailed")
    again.run(progress=False)
    entries = history(root)
    assert [e.run_id for e in entries] == [p.last_run.run_id for p in (first, changed, again)]
    assert [e.statuses for e in entries] == [{"miss": 3}, {"hit": 1, "miss": 2}, {"hit": 3}]
    assert [e.summary["rows"] for e in entries] == [1000, 1000, 1000]
    assert entries[1].summary["rows_reused"] == 1000      # load's rows
    assert all(not e.steps for e in entries)               # the list reads summaries only
    shown = whole(root, entries[1])
    assert {n: s["status"] for n, s in shown.steps.items()} == {
        "load": "hit", "write": "miss", "count": "miss"}
    assert shown.steps["write"]["reason"] == "style changed 'concise' -> 'detailed'"
    assert shown.edges == (("load", "write"), ("write", "count"))


def test_compare_names_what_differed_in_the_miss_reasons_words(root: str) -> None:
    runs = [build(root), build(root, style="detailed"), build(root, 1100, "detailed"),
            build(root, 1100, "detailed", shout=True)]
    for pipeline in runs:
        pipeline.run(progress=False)
    first, styled, more, shouted = (whole(root, e) for e in history(root))
    assert compare_runs(first, styled) == {
        "load": "unchanged", "write": "style changed 'concise' -> 'detailed'",
        "count": "upstream 'write' changed"}
    assert compare_runs(styled, more) == {
        "load": "data changed (1,000 -> 1,100 rows)", "write": "upstream 'load' changed",
        "count": "upstream 'write' changed"}
    assert compare_runs(more, shouted) == {
        "load": "unchanged", "count": "upstream 'write' changed",
        "write": "class changed 'Style' -> 'StyleShouting'; code of Style() changed; "
                 "code of StyleShouting() changed"}
    assert compare_runs(first, first) == dict.fromkeys(("load", "write", "count"), "unchanged")


def test_compare_says_new_and_removed_steps(tmp_path: pathlib.Path) -> None:
    build(tmp_path).run(progress=False)
    with Pipeline(name="story", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", batch_size=250,
                                 data=[{"text": f"t{i}"} for i in range(1000)])
        write = Style(name="write2")
        load >> write
    pipeline.run(progress=False)
    old, new = (whole(tmp_path, e) for e in history(tmp_path))
    assert compare_runs(old, new) == {"load": "unchanged", "write2": "new step",
                                      "write": "removed", "count": "removed"}


def test_another_process_reads_the_history(tmp_path: pathlib.Path) -> None:
    """A run in a child process (another kernel, a script) is in this one's history."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(pathlib.Path(__file__).parent.parent)!r})
        from tests.test_history import build
        build({str(tmp_path)!r}, rows=10).run(progress=False)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    entries = history(tmp_path)
    assert len(entries) == 1 and entries[0].statuses == {"miss": 3}
    assert entries[0].summary["rows"] == 10


def test_a_failed_run_is_kept_with_its_error(tmp_path: pathlib.Path) -> None:
    @step(inputs=["styled"], outputs=["n"])
    def Broken(inputs: StepInput) -> Any:
        raise ValueError("kaboom")
        yield inputs

    with Pipeline(name="story", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"text": "a"}])
        write = Style(name="write")
        load >> write >> Broken(name="count")
    with pytest.raises(Exception, match="kaboom"):
        pipeline.run(progress=False, fail_fast=True)
    (entry,) = history(tmp_path)
    assert entry.statuses.get("failed") == 1
    assert "kaboom" in whole(tmp_path, entry).steps["count"]["error"]


def test_clearing_a_pipeline_clears_its_history(root: str) -> None:
    build(root, rows=10).run(progress=False)
    assert len(history(root)) == 1
    cache_clear(root, "story")
    assert history(root) == []


def test_pick_run_by_id_prefix_or_position() -> None:
    entries = [RunEntry(new_run_id(1_700_000_000 + i), "p", 0.0, float(i), {}) for i in range(3)]
    assert pick_run(entries, "1") is entries[0]
    assert pick_run(entries, "-1") is entries[2]
    assert pick_run(entries, entries[1].run_id) is entries[1]
    assert pick_run(entries, entries[1].run_id[:-3]) is entries[1]
    with pytest.raises(KeyError, match="no run #4: 3 runs"):
        pick_run(entries, "4")
    with pytest.raises(KeyError, match="no run has the id 'zzz'"):
        pick_run(entries, "zzz")
    with pytest.raises(KeyError, match="no runs are recorded"):
        pick_run([], "1")
