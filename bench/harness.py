"""What both pipeline scripts share: their command line and the result they write.

Standard library only, so that it runs under the project's Python and under the
distilabel venv alike. A pipeline script is run as::

    python pipelines_<tool>.py PIPELINE --n N --cache-dir DIR [--variant changed]
        [--result FILE]

and writes one JSON object to ``--result`` (or stdout) when ``run()`` returns.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = [
    "CHANGED_SEP",
    "CHANGED_TAG",
    "NOOP_STEPS",
    "PIPELINES",
    "Args",
    "check_table",
    "current_rss_mb",
    "mark_run_start",
    "parse_args",
    "peak_rss_mb",
    "reset_peak_rss",
    "write_result",
]

PIPELINES = ("three_steps", "noop20")
NOOP_STEPS = 20
# The value the last step's parameter takes in the "changed" variant (the "partial" scenario):
# CountWords splits on a tab instead of a space; the last no-op step gets another tag.
CHANGED_SEP = "\t"
CHANGED_TAG = "changed"


class Args(argparse.Namespace):
    pipeline: str
    n: int
    cache_dir: str
    variant: str
    result: str | None


def parse_args(argv: Sequence[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", choices=PIPELINES)
    parser.add_argument("--n", type=int, required=True, help="rows to load")
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--variant", choices=("base", "changed"), default="base",
                        help="'changed' alters a parameter of the last step only")
    parser.add_argument("--result", help="write the JSON result here (default: stdout)")
    return parser.parse_args(argv, namespace=Args())


def _maxrss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss() -> dict[str, float]:
    """Call just before ``run()``: note the memory so far, then restart the peak count.

    The input rows are built before the run and stay resident through it; resetting the
    high-water mark (``/proc/self/clear_refs``) lets ``peak_rss_mb`` tell the run's own
    peak from the peak reached while building the data.
    """
    before = {"rss_before_run_mb": current_rss_mb(),
              "rss_peak_before_run_mb": round(_maxrss_mb(resource.RUSAGE_SELF), 1)}
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # not Linux, or not allowed: the run's peak then includes the data's
        pass
    return before


def peak_rss_mb(before: dict[str, float]) -> dict[str, float]:
    """Call right after ``run()``: the peak resident memory, whole process and run only.

    ``rss_mb`` is the process's peak plus its largest finished child's (distilabel's step
    workers are child processes; RUSAGE_CHILDREN gives the largest one, not a sum).
    ``rss_run_extra_mb`` is what the run added on top of the data already in memory.
    """
    run_peak = _maxrss_mb(resource.RUSAGE_SELF)
    children = _maxrss_mb(resource.RUSAGE_CHILDREN)
    return {**before,
            "rss_run_peak_self_mb": round(run_peak, 1),
            "rss_children_mb": round(children, 1),
            "rss_mb": round(max(run_peak, before["rss_peak_before_run_mb"]) + children, 1),
            "rss_run_extra_mb": round(run_peak - before["rss_before_run_mb"] + children, 1)}


def mark_run_start(args: Args) -> None:
    """Tell the orchestrator that ``run()`` starts now (it times a kill at half-way from it)."""
    if args.result:
        with open(args.result + ".started", "w") as f:
            f.write(repr(time.time()))


def current_rss_mb() -> float:
    """The resident set size now (not the peak), from /proc."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return round(pages * resource.getpagesize() / 2**20, 1)


def check_table(columns: dict[str, list[Any]], n: int) -> dict[str, Any]:
    """Facts about the result that show it is complete and has no duplicate rows."""
    texts = columns["text"]
    facts: dict[str, Any] = {"rows": len(texts), "distinct_texts": len(set(texts)),
                             "complete": len(texts) == n and len(set(texts)) == n}
    if "n_words" in columns:
        facts["sum_n_words"] = sum(columns["n_words"])
    return facts


def write_result(args: Args, fields: dict[str, Any]) -> None:
    """Write ``fields`` (timings, ``peak_rss_mb()`` taken right after the run, checks)."""
    result = {"pipeline": args.pipeline, "n": args.n, "variant": args.variant, **fields,
              "written_at": time.time()}
    text = json.dumps(result)
    if args.result:
        with open(args.result, "w") as f:
            f.write(text)
    else:
        print(text)
    sys.stdout.flush()
