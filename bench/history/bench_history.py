"""How fast a pipeline's run history is read when it holds hundreds of runs.

    python3 bench/history/bench_history.py [--runs 100 500 2000] [--steps 6]

A 6-step pipeline is run for real a few times (a changed parameter each time, so the
runs differ); its history is then filled up to N runs with copies of those records (new
ids and times: what N real runs would write, without waiting for them). Timed, median of
5 after a warm-up, on a local cache (SQLite manifest) and a ``file://`` object-store one:

- ``history()`` cold: the strip's list (summaries only) from a cache just opened, what a
  new kernel's first graph reads; warm: again on the same manifest, what a graph's
  refresh reads (the object-store manifest reads only runs it has not read before);
- ``history_run(id)``: one run whole (colours, reasons), what choosing a chip reads;
- compare: two runs read whole and compared (``compare_runs``);
- ``CacheGraph(pipeline)``: a graph displayed (history read, SVG drawn), in-process;
- ``distilabel-nb runs NAME``: the command, in-process (the Python start not counted).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from distilabel_nb import Pipeline
from distilabel_nb.cache.access import open_cache
from distilabel_nb.cache.history import new_run_id
from distilabel_nb.engine.reasons import compare_runs
from distilabel_nb.steps import LoadDataFromDicts, StepInput, step


@step(inputs=["text"], outputs=["text"])
def Touch(inputs: StepInput, tag: str = "a") -> Any:
    for row in inputs:
        row["text"] = f"{row['text']}{tag}"
    yield inputs


def build(root: str, steps: int, tag: str) -> Pipeline:
    with Pipeline(name="bench-history", cache_dir=root) as pipeline:
        last: Any = LoadDataFromDicts(name="load", data=[{"text": str(i)} for i in range(50)])
        for i in range(steps - 1):
            node = Touch(name=f"step_{i}", tag=tag if i == steps // 2 else "a")
            last >> node
            last = node
    return pipeline


def timed(func: Callable[[], Any], repeat: int = 5) -> float:
    func()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def fill(root: str, steps: int, runs: int) -> Pipeline:
    """Real runs first, then copies of their records up to ``runs`` in all."""
    real = []
    for i in range(min(5, runs)):
        pipeline = build(root, steps, tag=f"t{i}")
        pipeline.run(progress=False)
        real.append(pipeline)
    manifest = real[-1]._cache()[0]
    entries = [manifest.history_run("bench-history", e.run_id)
               for e in manifest.history("bench-history")]
    start = time.time() - runs
    for n in range(runs - len(entries)):
        model = entries[n % len(entries)]
        assert model is not None
        manifest.record_history(dataclasses.replace(
            model, run_id=new_run_id(start + n), started=start + n, finished=start + n + 0.5))
    return real[-1]


def measure(root: str, steps: int, runs: int) -> dict[str, float]:
    from distilabel_nb.cli import main
    from distilabel_nb.notebook.widget import CacheGraph

    pipeline = fill(root, steps, runs)
    listed = pipeline.history()
    assert len(listed) == runs, len(listed)
    first, last = listed[0].run_id, listed[-1].run_id

    def compare() -> None:
        old, new = pipeline.history_run(first), pipeline.history_run(last)
        assert old is not None and new is not None
        compare_runs(old, new)

    def graph() -> None:
        CacheGraph(pipeline).close()

    def command() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            main(["--cache-dir", root, "runs", "bench-history"])

    def cold() -> None:
        cache = open_cache(root)
        assert cache is not None
        assert len(cache[0].history("bench-history")) == runs
        cache[0].close()

    assert pipeline.history_run(last) is not None
    return {"cold_ms": timed(cold, 3) * 1e3, "history_ms": timed(pipeline.history) * 1e3,
            "history_run_ms": timed(lambda: pipeline.history_run(last)) * 1e3,
            "compare_ms": timed(compare) * 1e3,
            "graph_ms": timed(graph, 3) * 1e3,
            "cli_runs_ms": timed(command, 3) * 1e3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for kind in ("folder", "file://"):
        for runs in args.runs:
            with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
                root = tmp if kind == "folder" else f"file://{tmp}"
                rows.append({"cache": kind, "runs": runs, **measure(root, args.steps, runs)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    head = f"{'cache':<8} {'runs':>5} {'cold list':>10} {'warm list':>10} {'one run':>8} " \
           f"{'compare':>8} {'graph':>8} {'cli runs':>9}   (ms, median)"
    print(head)
    for r in rows:
        print(f"{r['cache']:<8} {r['runs']:>5} {r['cold_ms']:>10.1f} {r['history_ms']:>10.1f} "
              f"{r['history_run_ms']:>8.1f} {r['compare_ms']:>8.1f} {r['graph_ms']:>8.1f} "
              f"{r['cli_runs_ms']:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
