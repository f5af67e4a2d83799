"""The benchmark pipelines written for distilabel_nb (run with the project's Python).

Usage: see ``harness.py``. The same pipelines for distilabel 1.5.3 are in
``pipelines_distilabel.py``; the two files differ only where the APIs do.
"""

from __future__ import annotations

import time

import harness
from data import make_rows

STARTED = time.perf_counter()
from distilabel_nb import Pipeline  # noqa: E402  (timed import)
from distilabel_nb.steps import LoadDataFromDicts, StepInput, StepOutput, step  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - STARTED


@step(inputs=["text"], outputs=["n_chars"])
def AddLength(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["n_chars"] = len(row["text"])
    yield inputs


@step(inputs=["text"], outputs=["upper"])
def Upper(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["upper"] = row["text"].upper()
    yield inputs


@step(inputs=["text"], outputs=["n_words"])
def CountWords(inputs: StepInput, sep: str = " ") -> StepOutput:
    for row in inputs:
        row["n_words"] = len(row["text"].split(sep))
    yield inputs


@step(inputs=["text"], outputs=[])
def Noop(inputs: StepInput, tag: str = "") -> StepOutput:
    yield inputs


def build(args: harness.Args, rows: list[dict[str, str]]) -> Pipeline:
    """The pipeline; in the "changed" variant the last step gets another parameter value."""
    changed = args.variant == "changed"
    with Pipeline(name=f"bench-{args.pipeline}", cache_dir=args.cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=rows, batch_size=50)
        if args.pipeline == "three_steps":
            sep = harness.CHANGED_SEP if changed else " "
            load >> AddLength(name="add_length") >> Upper(name="upper") >> CountWords(
                name="count", sep=sep
            )
        else:
            previous = load
            for i in range(harness.NOOP_STEPS):
                last = i == harness.NOOP_STEPS - 1
                tag = harness.CHANGED_TAG if changed and last else ""
                noop = Noop(name=f"noop_{i:02d}", tag=tag)
                previous >> noop
                previous = noop
    return pipeline


def main() -> None:
    args = harness.parse_args()
    started = time.perf_counter()
    rows = make_rows(args.n)
    data_seconds = time.perf_counter() - started
    pipeline = build(args, rows)
    rss_before = harness.reset_peak_rss()
    harness.mark_run_start(args)
    started = time.perf_counter()
    distiset = pipeline.run(use_cache=True)
    run_seconds = time.perf_counter() - started
    table = distiset.arrow_table("default")  # the Arrow table, no datasets import
    done_at = time.time()
    rss = harness.peak_rss_mb(rss_before)
    columns = {"text": table.column("text").to_pylist()}
    if "n_words" in table.column_names:
        columns["n_words"] = table.column("n_words").to_pylist()
    # Per step: what the cache did, and how many rows it reused / computed.
    steps = {name: [report.status, report.rows_reused, report.rows_computed]
             for name, report in pipeline.last_run.items()}
    harness.write_result(args, {
        "tool": "distilabel_nb", "import_seconds": IMPORT_SECONDS, "data_seconds": data_seconds,
        "run_seconds": run_seconds, "done_at": done_at, **rss,
        "steps": steps,
        **harness.check_table(columns, args.n),
    })


if __name__ == "__main__":
    main()
