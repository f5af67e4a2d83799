"""distilabel's own steps on distilabel_nb's Pipeline against distilabel's Pipeline.

The pipelines of ``pipelines_distilabel.py`` (distilabel's ``LoadDataFromDicts`` and
``@step`` functions), run once with distilabel's ``Pipeline`` and once with the one import
changed to ``distilabel_nb``: a cold run, then three full hits (the median reported), each
in a fresh process, on the same machine in the same invocation. Time inside ``run()``.
Prints the figures and writes
``bench/results/interop.json``.

    python3 bench/interop.py --n 10000          # three_steps; distilabel's cold run of
    python3 bench/interop.py --n 100000         # 100,000 rows takes about 6 minutes here

distilabel's Python is bench/.venv-distilabel when it exists, else this one (which has
distilabel 1.5.3 from the project's dev extra).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import run

BENCH = Path(__file__).resolve().parent
#: Full hits measured per tool (the median is reported): a hit is short, the machine noisy.
HITS = 3


def _python(tool: str) -> str:
    venv = BENCH / ".venv-distilabel" / "bin" / "python"
    return str(venv) if tool == "distilabel" and venv.exists() else sys.executable


def measure(tool: str, pipeline: str, n: int, folder: Path) -> dict[str, float]:
    """Cold run, then full hit, of ``pipeline`` with ``tool``'s Pipeline."""
    run.SCRIPTS[tool] = "pipelines_distilabel.py"
    run.python_for = _python  # type: ignore[assignment]
    if tool == "distilabel":
        os.environ.pop("BENCH_PIPELINE", None)
    else:
        os.environ["BENCH_PIPELINE"] = "distilabel_nb"
        os.environ["PYTHONPATH"] = os.pathsep.join([str(BENCH.parent),
                                                    os.environ.get("PYTHONPATH", "")])
    cache = folder / tool
    runs: dict[str, list[dict[str, float]]] = {"cold": [], "hit": []}
    for phase in ["cold"] + ["hit"] * HITS:
        result = run.invoke(tool, pipeline, n, cache)
        if "error" in result:
            msg = f"{tool} {phase}: {result['error']} {result.get('log_tail', '')}"
            raise RuntimeError(msg)
        if not result.get("complete"):
            msg = f"{tool} {phase}: wrong rows {result}"
            raise RuntimeError(msg)
        runs[phase].append(result)
    figures = {}
    for phase, results in runs.items():
        for what in ("run_seconds", "process_seconds"):
            figures[f"{phase}_{what}"] = round(statistics.median(r[what] for r in results), 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--pipeline", default="three_steps", choices=("three_steps", "noop20"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-interop-") as tmp:
        theirs = measure("distilabel", args.pipeline, args.n, Path(tmp))
        ours = measure("distilabel_nb", args.pipeline, args.n, Path(tmp))
    report = {"rows": args.n, "pipeline": args.pipeline, "distilabel": theirs,
              "distilabel_nb": ours,
              "cold_ratio": round(theirs["cold_run_seconds"] / ours["cold_run_seconds"], 1),
              "hit_ratio": round(theirs["hit_run_seconds"] / ours["hit_run_seconds"], 1),
              "load": round(os.getloadavg()[0], 2)}
    out = BENCH / "results" / "interop.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
