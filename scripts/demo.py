"""The demo: one pipeline run cold, then unchanged (a complete cache hit), then with one
step changed (a partial hit: the changed step and its descendants re-run, everything
upstream, LLM calls included, is reused), then with 10% more rows (only the new rows reach
the LLM). Prints, per step, what the cache did and why.

The LLM is ``OfflineLLM``: a deterministic stand-in with a simulated 20 ms latency and
word counts as tokens, so the demo needs no model and no network (see the README for the
two-line switch to a real server).

    python3 scripts/demo.py [--rows N] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

from distilabel_nb import Pipeline
from distilabel_nb.llms import OfflineLLM
from distilabel_nb.steps import KeepColumns, LoadDataFromDicts, StepInput, StepOutput, step
from distilabel_nb.steps.tasks import TextGeneration

TOPICS = ["rivers", "compilers", "tea", "volcanoes", "chess", "bees", "jazz", "glaciers"]


@step(inputs=["topic"], outputs=["instruction"])
def WriteInstruction(inputs: StepInput, style: str = "plain") -> StepOutput:
    """Turns a topic into an instruction for the LLM."""
    for row in inputs:
        row["instruction"] = f"Write a {style} paragraph about {row['topic']} (#{row['id']})."
    yield inputs


@step(inputs=["generation"], outputs=["n_words", "keep"])
def JudgeLength(inputs: StepInput, min_words: int = 8) -> StepOutput:
    """A cheap filter flag downstream of the LLM: the step one tunes most often."""
    for row in inputs:
        row["n_words"] = len((row["generation"] or "").split())
        row["keep"] = row["n_words"] >= min_words
    yield inputs


def build(rows: int, cache_dir: pathlib.Path, min_words: int) -> Pipeline:
    data = [{"id": i, "topic": TOPICS[i % len(TOPICS)]} for i in range(rows)]
    with Pipeline(name="demo-writing-assistant", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=data, batch_size=100)
        instruct = WriteInstruction(name="instruct", style="vivid")
        generate = TextGeneration(
            name="generate", input_batch_size=100,
            llm=OfflineLLM(latency=0.02, max_concurrency=50,
                           generation_kwargs={"temperature": 0.7}))
        judge = JudgeLength(name="judge", min_words=min_words)
        keep = KeepColumns(name="keep", columns=["id", "instruction", "generation", "keep"])
        load >> instruct >> generate >> judge >> keep
    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--cache-dir", type=pathlib.Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="distilabel-nb-demo-") as tmp:
        cache_dir = args.cache_dir or pathlib.Path(tmp)
        runs = [
            ("1. cold run: every step computes", args.rows, 8),
            ("2. unchanged re-run: complete cache hit", args.rows, 8),
            ("3. judge's min_words 8 -> 10: partial hit, the LLM step is reused", args.rows, 10),
            ("4. 10% more rows: only the new rows reach the LLM", args.rows * 11 // 10, 10),
        ]
        for title, rows, min_words in runs:
            pipeline = build(rows, cache_dir, min_words)
            start = time.perf_counter()
            distiset = pipeline.run(progress=False)
            print(f"\n== {title}: {time.perf_counter() - start:.2f} s")
            assert pipeline.last_run is not None
            print(pipeline.last_run.table())
        dataset = distiset["default"]["train"]  # a datasets.Dataset
        print(f"\nresult: {dataset.num_rows:,} rows, columns {dataset.column_names}")
        print("first row:", dataset[0])


if __name__ == "__main__":
    main()
