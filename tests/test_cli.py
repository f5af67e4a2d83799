"""The ``distilabel-nb`` command: cache ls / show / clear / gc, run, graph."""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import textwrap

import pytest

from distilabel_nb.cli import cache_ls, cache_show, main

from .test_gc import build


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def filled(cache_dir: pathlib.Path) -> pathlib.Path:
    build(cache_dir, "alpha").run(progress=False)
    build(cache_dir, "beta", n=3000).run(progress=False)
    return cache_dir


def test_entry_point_is_declared() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert any(e.name == "distilabel-nb" and e.value == "distilabel_nb.cli:main"
               for e in scripts)


def test_ls(filled: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--cache-dir", str(filled), "cache", "ls")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["pipeline", "steps", "outputs", "size"]
    assert any(line.startswith("alpha") and " kB" in line for line in lines)
    assert any(line.startswith("beta") for line in lines)
    assert "2 pipeline(s)" in out
    code, out, _ = cli(capsys, "--cache-dir", str(filled), "--json", "cache", "ls")
    listing = json.loads(out)
    assert {e["pipeline"]: e["steps"] for e in listing} == {"alpha": 2, "beta": 2}


def test_ls_of_an_empty_cache(tmp_path: pathlib.Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--cache-dir", str(tmp_path / "none"), "cache", "ls")
    assert code == 0 and "is empty" in out
    assert not (tmp_path / "none").exists()


def test_show(filled: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--cache-dir", str(filled), "cache", "show", "beta")
    assert code == 0
    assert "pipeline 'beta'" in out
    load = next(line for line in out.splitlines() if line.startswith("load"))
    assert "complete" in load and "3,000" in load and "just now" in load
    shown = cache_show(filled, "beta")
    assert [s["step"] for s in shown["steps"]] == ["load", "double"]
    assert all(s["rows"] == 3000 and s["bytes"] > 0 for s in shown["steps"])


def test_show_counts_older_versions(cache_dir: pathlib.Path) -> None:
    build(cache_dir, "alpha").run(progress=False)
    build(cache_dir, "alpha", n=300).run(progress=False)  # new data: new versions
    steps = {s["step"]: s for s in cache_show(cache_dir, "alpha")["steps"]}
    assert steps["load"]["rows"] == 300
    assert steps["load"]["older_versions"] == 1 and steps["load"]["older_bytes"] > 0


def test_show_unknown_pipeline(filled: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "--cache-dir", str(filled), "cache", "show", "gamma")
    assert code == 1
    assert "no pipeline 'gamma'" in err and "alpha" in err


def test_clear_one_step_then_all(filled: pathlib.Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--cache-dir", str(filled), "cache", "clear", "beta",
                       "--step", "double")
    assert code == 0 and "cleared step 'double' of pipeline 'beta'" in out
    steps = {s["step"]: s for s in cache_show(filled, "beta")["steps"]}
    assert steps["double"]["cache"] == "not cached" and steps["load"]["cache"] == "complete"
    pipeline = build(filled, "beta", n=3000)
    pipeline.run(progress=False)
    assert pipeline.last_run.statuses() == {"load": "hit", "double": "miss"}  # type: ignore[union-attr]

    code, out, _ = cli(capsys, "--cache-dir", str(filled), "cache", "clear", "beta")
    assert code == 0 and "2 outputs" in out
    assert [e["pipeline"] for e in cache_ls(filled)] == ["alpha"]
    code, _, err = cli(capsys, "--cache-dir", str(filled), "cache", "clear", "alpha",
                       "--step", "nope")
    assert code == 1 and "no step 'nope'" in err


def test_gc(filled: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--cache-dir", str(filled), "cache", "gc", "--max-size", "10GB")
    assert code == 0 and out.startswith("freed 0 B")
    code, out, _ = cli(capsys, "--cache-dir", str(filled), "cache", "gc", "--max-size", "0",
                       "--dry-run")
    assert code == 0 and out.startswith("would free")
    code, out, _ = cli(capsys, "--cache-dir", str(filled), "--json", "cache", "gc",
                       "--older-than", "0s")
    assert code == 0 and json.loads(out)["removed"] == 4
    code, _, err = cli(capsys, "--cache-dir", str(filled), "cache", "gc")
    assert code == 2 and "--max-size" in err
    code, _, err = cli(capsys, "--cache-dir", str(filled), "cache", "gc", "--max-size", "lots")
    assert code == 1 and "not a size" in err


def test_ls_notes_other_format_versions(filled: pathlib.Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (filled / "v2").mkdir()
    _, out, _ = cli(capsys, "--cache-dir", str(filled), "cache", "ls")
    assert "v2/ holds a cache of another format version" in out


SCRIPT = textwrap.dedent("""
    from distilabel_nb import Pipeline
    from distilabel_nb.steps import LoadDataFromDicts, KeepColumns

    with Pipeline(name="scripted") as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"a": i, "b": -i} for i in range(20)])
        keep = KeepColumns(name="keep", columns=["a"])
        load >> keep
""")


def test_run_and_graph_a_script(tmp_path: pathlib.Path, cache_dir: pathlib.Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "pipe.py"
    script.write_text(SCRIPT)
    code, out, _ = cli(capsys, "--cache-dir", str(cache_dir), "--json", "run", str(script))
    assert code == 0
    result = json.loads(out)
    assert result["rows"] == {"default": 20}
    assert result["steps"]["keep"]["status"] == "miss"
    code, out, _ = cli(capsys, "--cache-dir", str(cache_dir), "run", str(script))
    assert code == 0 and "hit" in out
    assert [e["pipeline"] for e in cache_ls(cache_dir)] == ["scripted"]
    code, out, _ = cli(capsys, "graph", str(script))
    assert code == 0 and "digraph" in out and "load" in out and "keep" in out


def test_verify_finds_damage_no_run_would_read(filled: pathlib.Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--cache-dir", str(filled), "cache", "verify")
    assert code == 0 and out.startswith("checked 4 files: 0 damaged")
    # The loader's output is read by no run while the step after it is a hit.
    target = sorted((filled / "v1" / "data").glob("*/*/*.arrow"))[0]
    target.write_bytes(target.read_bytes()[:-7])
    code, out, _ = cli(capsys, "--cache-dir", str(filled), "cache", "verify")
    assert code == 0 and "1 damaged" in out and "checksum mismatch" in out
    assert not target.exists()
    code, out, _ = cli(capsys, "--cache-dir", str(filled), "cache", "verify")
    assert out.startswith("checked 3 files: 0 damaged")
    statuses = set()
    for name, n in (("alpha", 200), ("beta", 3000)):
        pipeline = build(filled, name, n=n)
        rows = pipeline.run(progress=False)["default"]["train"].to_list()
        assert rows == [{"x": i, "p": name, "y": 2 * i} for i in range(n)]
        statuses |= set(pipeline.last_run.statuses().values())  # type: ignore[union-attr]
    assert statuses == {"hit", "miss"}  # the damaged loader output was recomputed


def test_runs_lists_the_recorded_runs_and_graph_draws_one(
        cache_dir: pathlib.Path, tmp_path: pathlib.Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from .test_history import build as build_story

    build_story(cache_dir, rows=10).run(progress=False)
    build_story(cache_dir, rows=10, style="detailed").run(progress=False)
    code, out, _ = cli(capsys, "--cache-dir", str(cache_dir), "runs", "story")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["#", "run", "finished", "statuses"]
    assert "3 miss" in lines[1] and "1 hit 2 miss" in lines[2] and len(lines) == 3
    code, out, _ = cli(capsys, "--cache-dir", str(cache_dir), "--json", "runs", "story")
    listed = json.loads(out)
    assert [r["statuses"] for r in listed] == [{"miss": 3}, {"hit": 1, "miss": 2}]
    target = tmp_path / "first.svg"
    code, _, _ = cli(capsys, "--cache-dir", str(cache_dir), "graph", "story",
                     "--run", listed[0]["run_id"][:-2], "-o", str(target))
    first = target.read_text()
    assert code == 0 and first.count('data-status="miss"') == 3
    code, last, _ = cli(capsys, "--cache-dir", str(cache_dir), "graph", "story")
    assert code == 0 and last.count('data-status="miss"') == 2
    assert 'data-step="load" data-status="hit"' in last
    assert "style changed" in last      # the reason is each node's tooltip
    code, _, err = cli(capsys, "--cache-dir", str(cache_dir), "graph", "story", "--run", "7")
    assert code == 1 and "no run #7: 2 runs are recorded" in err
    code, out, _ = cli(capsys, "--cache-dir", str(cache_dir), "runs", "nothing")
    assert code == 0 and "no runs of pipeline 'nothing'" in out
