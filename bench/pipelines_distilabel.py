"""The benchmark pipelines written for distilabel 1.5.3 (run with bench/.venv-distilabel).

Usage: see ``harness.py``. The same pipelines for distilabel_nb are in ``pipelines_nb.py``;
the two files differ only where the APIs do. With ``BENCH_PIPELINE=distilabel_nb`` these
very steps (distilabel's ``LoadDataFromDicts`` and ``@step`` functions) run on
distilabel_nb's ``Pipeline``, the one import a user changes (``bench/interop.py``).
"""


import os
import time

# Offline and quiet about the Hub: the Distiset is built locally through `datasets`.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import harness
from data import make_rows

# The environment above must be set before distilabel imports the Hugging Face libraries.
STARTED = time.perf_counter()
from distilabel.mixins.runtime_parameters import RuntimeParameter  # noqa: E402

if os.environ.get("BENCH_PIPELINE") == "distilabel_nb":
    from distilabel_nb import Pipeline
else:
    from distilabel.pipeline import Pipeline  # type: ignore[assignment]
from distilabel.steps import LoadDataFromDicts, StepInput, StepOutput, step  # noqa: E402

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
def CountWords(inputs: StepInput, sep: RuntimeParameter[str] = " ") -> StepOutput:
    for row in inputs:
        row["n_words"] = len(row["text"].split(sep))
    yield inputs


@step(inputs=["text"], outputs=[])
def Noop(inputs: StepInput, tag: RuntimeParameter[str] = "") -> StepOutput:
    yield inputs


def build(args: harness.Args, rows: list[dict[str, str]]) -> Pipeline:
    with Pipeline(name=f"bench-{args.pipeline}", cache_dir=args.cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=rows, batch_size=50)
        if args.pipeline == "three_steps":
            load >> AddLength(name="add_length") >> Upper(name="upper") >> CountWords(
                name="count"
            )
        else:
            previous = load
            for i in range(harness.NOOP_STEPS):
                noop = Noop(name=f"noop_{i:02d}")
                previous >> noop
                previous = noop
    return pipeline


def run_parameters(args: harness.Args) -> dict[str, dict[str, str]]:
    """The last step's parameter, as a runtime parameter.

    In distilabel 1.5.3 a value given to a ``@step`` function's ``RuntimeParameter`` through
    the constructor enters the step's signature but never reaches the function (``process``
    gets only what ``run(parameters=...)`` set), so the value is passed here: it changes the
    signature too, since ``run()`` sets runtime parameters before computing it.
    """
    changed = args.variant == "changed"
    if args.pipeline == "three_steps":
        return {"count": {"sep": harness.CHANGED_SEP if changed else " "}}
    last = f"noop_{harness.NOOP_STEPS - 1:02d}"
    return {last: {"tag": harness.CHANGED_TAG if changed else ""}}


def main() -> None:
    args = harness.parse_args()
    started = time.perf_counter()
    rows = make_rows(args.n)
    data_seconds = time.perf_counter() - started
    pipeline = build(args, rows)
    rss_before = harness.reset_peak_rss()
    harness.mark_run_start(args)
    started = time.perf_counter()
    distiset = pipeline.run(use_cache=True, parameters=run_parameters(args))  # type: ignore[arg-type]
    run_seconds = time.perf_counter() - started
    done_at = time.time()
    rss = harness.peak_rss_mb(rss_before)
    train = distiset["default"]["train"]
    columns = {"text": list(train["text"])}
    if "n_words" in train.column_names:
        columns["n_words"] = list(train["n_words"])
    harness.write_result(args, {
        "tool": os.environ.get("BENCH_PIPELINE", "distilabel"),
        "import_seconds": IMPORT_SECONDS, "data_seconds": data_seconds,
        "run_seconds": run_seconds, "done_at": done_at, **rss,
        **harness.check_table(columns, args.n),
    })


if __name__ == "__main__":
    main()
