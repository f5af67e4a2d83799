"""The demo: one pipeline run cold, then unchanged (a complete cache hit), then with one
step changed (a partial hit: the changed step and its descendants re-run, everything
upstream is reused). Prints, per step, what the cache did and why.

    python3 scripts/demo.py [--rows N] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

from distilabel_nb import Pipeline
from distilabel_nb.steps import KeepColumns, LoadDataFromDicts, StepInput, StepOutput, step

TOPICS = ["rivers", "compilers", "tea", "volcanoes", "chess", "bees", "jazz", "glaciers"]


@step(inputs=["topic"], outputs=["instruction"])
def WriteInstruction(inputs: StepInput, style: str = "plain") -> StepOutput:
    """Turns a topic into an instruction (stands in for a prompt-writing LLM call)."""
    for row in inputs:
        row["instruction"] = f"Write a {style} paragraph about {row['topic']} (#{row['id']})."
    yield inputs


@step(inputs=["instruction"], outputs=["generation"])
def Generate(inputs: StepInput, temperature: float = 0.7) -> StepOutput:
    """A slow, deterministic stand-in for an LLM: 20 ms per batch of rows."""
    time.sleep(0.02)
    for row in inputs:
        words = row["instruction"].split()
        row["generation"] = " ".join(reversed(words)) + f" [t={temperature}]"
    yield inputs


@step(inputs=["generation"], outputs=["n_words"])
def CountWords(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["n_words"] = len(row["generation"].split())
    yield inputs


def build(rows: int, cache_dir: pathlib.Path, temperature: float) -> Pipeline:
    data = [{"id": i, "topic": TOPICS[i % len(TOPICS)]} for i in range(rows)]
    with Pipeline(name="demo-writing-assistant", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=data, batch_size=50)
        instruct = WriteInstruction(name="instruct", style="vivid")
        generate = Generate(name="generate", temperature=temperature)
        count = CountWords(name="count")
        keep = KeepColumns(name="keep", columns=["id", "instruction", "generation", "n_words"])
        load >> instruct >> generate >> count >> keep
    return pipeline


def show(title: str, pipeline: Pipeline, seconds: float) -> None:
    print(f"\n== {title}: {seconds:.2f} s")
    assert pipeline.last_run is not None
    print(pipeline.last_run.table())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--cache-dir", type=pathlib.Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="distilabel-nb-demo-") as tmp:
        cache_dir = args.cache_dir or pathlib.Path(tmp)
        runs = [("1. cold run: every step computes", 0.7),
                ("2. unchanged re-run: complete cache hit", 0.7),
                ("3. temperature 0.7 -> 0.2: partial hit, upstream reused", 0.2)]
        for title, temperature in runs:
            pipeline = build(args.rows, cache_dir, temperature)
            start = time.perf_counter()
            distiset = pipeline.run(progress=False)
            show(title, pipeline, time.perf_counter() - start)
        table = distiset["default"]["train"]
        print(f"\nresult: {table.num_rows:,} rows, columns {table.column_names}")
        print("first row:", table.slice(0, 1).to_pylist()[0])


if __name__ == "__main__":
    main()
