"""Local backend vs Ray on one machine: a CPU-bound pure-Python row step, and the cost
Ray adds per batch.

    python3 bench/ray/run.py                  # 200,000 rows, batches of 1,000
    python3 bench/ray/run.py --rows 20000     # a quick look

Every run is cold (a fresh cache folder) and runs in this process; Ray is started once,
before anything is timed (its start-up is reported apart).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from distilabel_nb import Pipeline  # noqa: E402
from distilabel_nb.steps import LoadDataFromDicts, Step  # noqa: E402


class Churn(Step):
    """A pure-Python CPU-bound row step: ``rounds`` steps of an LCG per row."""

    rounds: int = 1000

    @property
    def inputs(self) -> list[str]:
        return ["i"]

    @property
    def outputs(self) -> list[str]:
        return ["h"]

    def process(self, *inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        rows = inputs[0]
        for row in rows:
            x = row["i"]
            for _ in range(self.rounds):
                x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            row["h"] = x
        yield rows


def pipeline(rows: int, batch: int, rounds: int, cache: str) -> Pipeline:
    with Pipeline(name="bench-ray", cache_dir=cache) as pipe:
        load = LoadDataFromDicts(name="load", data=[{"i": i} for i in range(rows)],
                                 batch_size=batch)
        churn = Churn(name="churn", rounds=rounds, input_batch_size=batch)
        load >> churn
    return pipe


#: What is compared: the local backend, Ray with the driver reading and writing every
#: batch (the default for a local cache folder), and Ray with the workers doing it (the
#: default for an object store; here forced on the same folder).
MODES = {"local": ("local", {}), "ray": ("ray", {"worker_io": False}),
         "ray_worker_io": ("ray", {"worker_io": True})}


def timed(rows: int, batch: int, rounds: int, mode: str, root: str) -> float:
    cache = tempfile.mkdtemp(dir=root)
    pipe = pipeline(rows, batch, rounds, cache)
    backend, options = MODES[mode]
    began = time.perf_counter()
    result = pipe.run(progress=False, backend=backend, backend_options=options)
    seconds = time.perf_counter() - began
    assert result["default"]["train"].num_rows == rows
    return seconds


def start_ray(cpus: int | None) -> float:
    import ray

    # See tests/test_ray.py: a stand-in for rfc3987_syntax keeps Ray's dashboard agent
    # within the raylet's 15 s start-up deadline on a loaded machine; the workers import
    # this checkout of distilabel_nb.
    stub = pathlib.Path(tempfile.mkdtemp()) / "rfc3987_syntax.py"
    stub.write_text('raise ImportError("skipped for Ray")\n')
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(stub.parent), os.environ.get("PYTHONPATH", "")])
    began = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    return time.perf_counter() - began


def raw_task_ms(size: int, calls: int = 500) -> float:
    """Ray alone: one small table to a task and back, two at a time (for comparison)."""
    import pyarrow as pa
    import ray

    echo: Any = ray.remote(lambda table: table)
    table = pa.table({"i": list(range(size))})
    ray.get([echo.remote(table) for _ in range(20)])
    began = time.perf_counter()
    pending = []
    for _ in range(calls):
        pending.append(echo.remote(table))
        if len(pending) >= 4:
            ray.get(pending.pop(0))
    ray.get(pending)
    return (time.perf_counter() - began) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=1_000)
    parser.add_argument("--overhead-rows", type=int, default=20_000)
    parser.add_argument("--overhead-batch", type=int, default=10)
    parser.add_argument("--cpus", type=int, default=None)
    parser.add_argument("--out", default=str(ROOT / "bench/ray/results.json"))
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="bench-ray-")
    figures: dict[str, Any] = {"rows": args.rows, "batch": args.batch, "rounds": args.rounds,
                               "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    figures["ray_start_s"] = start_ray(args.cpus)
    timed(4 * args.batch, args.batch, 1, "ray", root)  # warm-up: Ray starts its workers
    for mode in MODES:
        seconds = timed(args.rows, args.batch, args.rounds, mode, root)
        figures[f"{mode}_s"] = seconds
        figures[f"{mode}_rows_per_s"] = args.rows / seconds
        print(f"{mode}: {args.rows:,} rows in {seconds:.1f} s "
              f"= {args.rows / seconds:,.0f} rows/s", flush=True)
    figures["speedup"] = figures["local_s"] / figures["ray_s"]
    # Per-batch overhead: a step with nothing to do, in many small batches.
    n, size = args.overhead_rows, args.overhead_batch
    batches = n // size
    figures["overhead_batches"] = batches
    for mode in MODES:
        figures[f"overhead_{mode}_s"] = timed(n, size, 0, mode, root)
    local = figures["overhead_local_s"]
    for mode in ("ray", "ray_worker_io"):
        remote = figures[f"overhead_{mode}_s"]
        figures[f"overhead_{mode}_ms_per_batch"] = (remote - local) / batches * 1000
        print(f"overhead, {mode}: {batches:,} empty batches: local {local:.1f} s, "
              f"Ray {remote:.1f} s -> {(remote - local) / batches * 1000:.2f} ms per batch",
              flush=True)
    figures["ray_task_ms"] = raw_task_ms(size)
    print(f"a bare Ray task (a {size}-row table there and back): "
          f"{figures['ray_task_ms']:.2f} ms", flush=True)
    figures["load_after"] = os.getloadavg()[0]
    pathlib.Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
