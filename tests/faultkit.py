"""A small real pipeline for fault tests, runnable in this process or as a script.

    python -m tests.faultkit CACHE DATA OUT [--delay S]

``load`` (a JSON Lines file) >> ``upper`` >> [``nchars``, ``words``]. Every processed
batch appends ``step first_id rows pid`` to ``$FAULTKIT_LOG`` (one ``write`` on an
``O_APPEND`` file: lines from concurrent processes never mix), so tests can tell which
batches ran in which process. ``$FAULTKIT_INTERRUPT=step:first_id`` raises
KeyboardInterrupt when that step reaches that batch. ``--pipeline slow`` runs
``load >> slow`` instead: one step whose batches each take ``$FAULTKIT_DELAY`` seconds;
``--pipeline llm`` runs ``load >> upper >> gen``, ``gen`` a ``TextGeneration`` asking
the OpenAI-compatible server at ``$FAULTKIT_LLM_URL`` (row-level cache).
The script writes each config of the Distiset to ``OUT/<config>.arrow`` and the run
report to ``OUT/report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sqlite3
import sys
import time
import warnings
from typing import Any

import pyarrow as pa

from distilabel_nb import Pipeline
from distilabel_nb.steps import LoadDataFromFiles, StepInput, StepOutput, step

N_ROWS = 300
BATCH = 10


def write_data(path: pathlib.Path, n: int = N_ROWS) -> pathlib.Path:
    with path.open("w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": i, "text": f"row {i} of the fault test"}) + "\n")
    return path


def _log(step_name: str, rows: list[dict[str, Any]]) -> None:
    target = os.environ.get("FAULTKIT_LOG")
    if target and rows:
        line = f"{step_name} {rows[0]['id']} {len(rows)} {os.getpid()}\n".encode()
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _maybe_interrupt(step_name: str, rows: list[dict[str, Any]]) -> None:
    spec = os.environ.get("FAULTKIT_INTERRUPT", "")
    if rows and spec == f"{step_name}:{rows[0]['id']}":
        raise KeyboardInterrupt


def _pause() -> None:
    delay = float(os.environ.get("FAULTKIT_DELAY", "0"))
    if delay:
        time.sleep(delay)


@step(inputs=["id", "text"], outputs=["upper"])
def Upper(inputs: StepInput) -> StepOutput:
    _maybe_interrupt("upper", inputs)
    _pause()
    for row in inputs:
        row["upper"] = row["text"].upper()
    _log("upper", inputs)
    yield inputs


@step(inputs=["upper"], outputs=["n_chars"])
def NChars(inputs: StepInput) -> StepOutput:
    _maybe_interrupt("nchars", inputs)
    _pause()
    for row in inputs:
        row["n_chars"] = len(row["upper"])
    _log("nchars", inputs)
    yield inputs


@step(inputs=["upper"], outputs=["n_words"])
def Words(inputs: StepInput) -> StepOutput:
    _maybe_interrupt("words", inputs)
    for row in inputs:
        row["n_words"] = len(row["upper"].split())
    _log("words", inputs)
    yield inputs


@step(inputs=["id", "text"], outputs=["slow"])
def Slow(inputs: StepInput) -> StepOutput:
    _pause()
    for row in inputs:
        row["slow"] = row["id"] * 2
    _log("slow", inputs)
    yield inputs


def build_slow(cache_dir: str | os.PathLike[str], data: str | os.PathLike[str]) -> Pipeline:
    """``load >> slow``: one step paying for every batch (``$FAULTKIT_DELAY`` s each)."""
    with Pipeline(name="slow", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromFiles(name="load", data_files=str(data), batch_size=BATCH)
        load >> Slow(name="slow", input_batch_size=BATCH)
    return pipeline


def build_llm(cache_dir: str | os.PathLike[str], data: str | os.PathLike[str]) -> Pipeline:
    """``load >> upper >> gen``: an LLM task (row cache) after a logging step."""
    from distilabel_nb.llms import OpenAILLM
    from distilabel_nb.steps.tasks import TextGeneration

    with Pipeline(name="llm-faults", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromFiles(name="load", data_files=str(data), batch_size=BATCH)
        upper = Upper(name="upper", input_batch_size=BATCH)
        gen = TextGeneration(
            name="gen", input_batch_size=BATCH, input_mappings={"instruction": "upper"},
            llm=OpenAILLM(model="soak", base_url=os.environ["FAULTKIT_LLM_URL"],
                          api_key="sk-soak"))
        load >> upper >> gen
    return pipeline


def build(cache_dir: str | os.PathLike[str], data: str | os.PathLike[str],
          name: str = "faults") -> Pipeline:
    with Pipeline(name=name, cache_dir=cache_dir) as pipeline:
        load = LoadDataFromFiles(name="load", data_files=str(data), batch_size=BATCH)
        upper = Upper(name="upper", input_batch_size=BATCH)
        nchars = NChars(name="nchars", input_batch_size=BATCH)
        words = Words(name="words", input_batch_size=BATCH)
        load >> upper >> [nchars, words]
    return pipeline


def expected(n: int = N_ROWS) -> dict[str, list[dict[str, Any]]]:
    """The rows of an uninterrupted run, computed without the engine."""
    base: list[dict[str, Any]] = [{"id": i, "text": f"row {i} of the fault test"} for i in range(n)]
    upper: list[dict[str, Any]] = [{**r, "upper": r["text"].upper()} for r in base]
    return {"nchars": [{**r, "n_chars": len(r["upper"])} for r in upper],
            "words": [{**r, "n_words": len(r["upper"].split())} for r in upper]}


def rows_of(distiset: Any) -> dict[str, list[dict[str, Any]]]:
    return {config: splits["train"].to_list() for config, splits in distiset.items()}


def read_out(out: pathlib.Path) -> dict[str, list[dict[str, Any]]]:
    rows = {}
    for path in sorted(out.glob("*.arrow")):
        with pa.OSFile(str(path)) as source:
            rows[path.stem] = pa.ipc.open_file(source).read_all().to_pylist()
    return rows


def read_log(path: pathlib.Path) -> list[tuple[str, int, int, int]]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        step_name, first, rows, pid = line.split()
        entries.append((step_name, int(first), int(rows), int(pid)))
    return entries


def segment_paths(cache_dir: pathlib.Path, step_name: str) -> list[pathlib.Path]:
    """The segment files the manifest lists for a step's current outputs."""
    version = cache_dir / "v1"
    with sqlite3.connect(version / "manifest.sqlite") as conn:
        rows = conn.execute(
            "SELECT s.path FROM segments s JOIN outputs o ON s.key = o.key WHERE o.step=? "
            "ORDER BY s.first", (step_name,)).fetchall()
    return [p if p.is_absolute() else version / p for p in (pathlib.Path(r[0]) for r in rows)]


def _backend() -> dict[str, Any]:
    """``$FAULTKIT_RAY_ADDRESS``: run on that Ray cluster; its workers log as we do."""
    address = os.environ.get("FAULTKIT_RAY_ADDRESS")
    if not address:
        return {}
    env = {k: os.environ[k] for k in ("FAULTKIT_LOG", "FAULTKIT_DELAY") if k in os.environ}
    init = {"runtime_env": {"env_vars": env}, "log_to_driver": False}
    return {"backend": "ray", "backend_options": {"address": address, "init_options": init}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("cache")
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--pipeline", choices=("faults", "slow", "llm"), default="faults")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    builders = {"faults": build, "slow": build_slow, "llm": build_llm}
    pipeline = builders[args.pipeline](args.cache, args.data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        distiset = pipeline.run(progress=False, **_backend())
    for config in distiset:  # the Arrow tables: this child imports neither datasets nor pandas
        table = distiset.arrow_table(config)
        with pa.OSFile(str(out / f"{config}.arrow"), "wb") as sink, \
                pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    assert pipeline.last_run is not None
    report = {"statuses": pipeline.last_run.statuses(),
              "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}
    (out / "report.json").write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
