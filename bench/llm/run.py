"""LLM generation benchmark: distilabel_nb against distilabel 1.5.3, same server, same run.

    python bench/llm/run.py                 # 10,000 rows, 20 ms latency, concurrency 64
    python bench/llm/run.py --n 2000 --no-readme

A loopback OpenAI-compatible server (tests/openai_server.py, its own process) answers
every request after ``--latency`` seconds. Each side runs in a fresh process with a fresh
cache: a cold run of N rows through TextGeneration, then the same pipeline with 1% more
rows. The server counts the requests each run sends. The figures go into
bench/llm/README.md (unless --no-readme) and bench/llm/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).parent
REPO = HERE.parent.parent
VENV_PYTHON = REPO / "bench" / ".venv-distilabel" / "bin" / "python"


def distilabel_python() -> str | None:
    """bench/.venv-distilabel's Python, else this one if it has distilabel 1.5.3."""
    if VENV_PYTHON.exists():
        return str(VENV_PYTHON)
    try:
        import distilabel
    except ImportError:
        return None
    return sys.executable if distilabel.__version__ == "1.5.3" else None


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "openai_server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        server.kill()
        msg = f"the benchmark server did not start: {line}"
        raise RuntimeError(msg)
    return server, f"http://127.0.0.1:{line[1]}/v1"


def side(python: str | os.PathLike[str], script: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([str(python), str(HERE / script), *args], capture_output=True,
                          text=True, env=env, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or not lines:
        msg = f"{script} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        raise RuntimeError(msg)
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=640,
                        help="ours: input_batch_size (10 x concurrency)")
    parser.add_argument("--distilabel-batch-size", type=int, default=64,
                        help="distilabel sends a whole batch at once: its concurrency")
    parser.add_argument("--no-distilabel", action="store_true")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()

    server, base_url = start_server(args.latency)
    n = str(args.n)
    results: dict = {"n": args.n, "latency": args.latency, "concurrency": args.concurrency,
                     "target_rows_per_s": args.concurrency / args.latency,
                     "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                                f"Python {platform.python_version()}",
                     "load_before": os.getloadavg()[0]}
    try:
        results["ceiling"] = side(sys.executable, "ceiling.py", "--base-url", base_url,
                                  "--n", n, "--concurrency", str(args.concurrency))
        print("ceiling", results["ceiling"], flush=True)
        results["nb"] = side(sys.executable, "nb_side.py", "--base-url", base_url, "--n", n,
                             "--concurrency", str(args.concurrency),
                             "--batch-size", str(args.batch_size))
        print("distilabel_nb", results["nb"], flush=True)
        reference = None if args.no_distilabel else distilabel_python()
        if reference is not None:
            results["distilabel"] = side(reference, "distilabel_side.py", "--base-url",
                                         base_url, "--n", n, "--batch-size",
                                         str(args.distilabel_batch_size))
            print("distilabel", results["distilabel"], flush=True)
    finally:
        server.terminate()
        server.wait(10)
    results["when"] = time.strftime("%Y-%m-%d %H:%M")
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_readme:
        write_readme(results, args)


def write_readme(r: dict, args: argparse.Namespace) -> None:
    n, target = r["n"], r["target_rows_per_s"]
    nb_cold, nb_add = r["nb"]["cold"], r["nb"]["added"]
    rate = n / nb_cold["seconds"]
    ceiling = r["ceiling"]["rows_per_s"]
    lines = [
        "| | rows/s (cold run) | % of concurrency / latency | "
        "re-run after +1% rows: requests sent | rows returned |",
        "|---|---:|---:|---:|---:|",
        f"| bare asyncio client, no SDK (machine ceiling) | {ceiling:,.0f} | "
        f"{100 * ceiling / target:.0f}% | | |",
        f"| distilabel_nb `TextGeneration` + `OpenAILLM` | {rate:,.0f} | "
        f"{100 * rate / target:.0f}% | {nb_add['requests']:,} | {nb_add['rows']:,} |",
    ]
    ratio_line = ""
    if "distilabel" in r:
        d_cold, d_add = r["distilabel"]["cold"], r["distilabel"].get("added", {})
        d_rate = n / d_cold["seconds"]
        lines.append(f"| distilabel 1.5.3 `TextGeneration` + `OpenAILLM` | {d_rate:,.0f} | "
                     f"{100 * d_rate / target:.0f}% | {d_add.get('requests', 0):,} | "
                     f"{d_add.get('rows', 0):,} |")
        ratio_line = (f"\nThroughput ratio, distilabel_nb / distilabel 1.5.3: "
                      f"**{rate / d_rate:.1f}x**.\n")
    table = "\n".join(lines)
    text = f"""# LLM generation benchmark

{n:,} rows through `TextGeneration` against a loopback OpenAI-compatible server that answers
every request after {1000 * r['latency']:.0f} ms (`tests/openai_server.py`, in its own process),
with `max_concurrency={r['concurrency']}`: the target is concurrency / latency =
{target:,.0f} rows/s. Both tools run in the same `run.py` invocation, on the same server, each
in a fresh process with a fresh cache; the server counts the requests of every run.

```bash
python bench/llm/run.py          # {n:,} rows; about {_minutes(r)} minutes, most of it distilabel's
python bench/llm/run.py --n 2000 --no-readme   # smoke run
```

distilabel runs in `bench/.venv-distilabel` (`bash bench/setup_distilabel.sh`, plus
`bench/.venv-distilabel/bin/pip install openai==1.59.7`), else in this Python when it has
distilabel 1.5.3 (the `dev` extra); without either only our side runs.

The machine is shared (other jobs run on its 2 cores at the same time): figures move by
tens of percent from one run to the next; compare the lines of one table, measured
together, rather than tables of different days.

## Results ({r['when']}; {r['machine']}; load average {r['load_before']:.1f} at start)

{table}
{ratio_line}
- distilabel_nb, cold: {nb_cold['requests']:,} requests for {n:,} rows, {nb_cold['none']} failed.
  Re-run with 1% more rows: **{nb_add['requests']:,} requests**
  ({100 * nb_add['requests'] / n:.2f}% of the cold run's), {nb_add['rows_reused']:,} rows
  reused from the row cache, {nb_add['tokens_saved']:,} tokens reported saved,
  {nb_add['seconds']:.2f} s.
"""
    if "distilabel" in r:
        d_add = r["distilabel"].get("added", {})
        text += (f"- distilabel 1.5.3, re-run with 1% more rows: "
                 f"{d_add.get('requests', 0):,} requests and {d_add.get('rows', 0):,} rows "
                 f"returned for {int(n * 1.01):,} input rows")
        if d_add.get("rows", 0) != int(n * 1.01):
            text += (": its cache returned the previous run's result, **the added rows are "
                     "silently missing**")
        text += ".\n"
    text += f"""
## Reading the figures

- Ours runs with `input_batch_size={args.batch_size}` (ten times the concurrency) so that 64
  requests stay in flight: a batch is sent with at most `max_concurrency` requests at once
  and only the tail of each batch waits for its slowest request. distilabel has no
  concurrency setting: it sends a whole batch at once, so its
  `input_batch_size={args.distilabel_batch_size}` is its concurrency.
- The openai SDK costs CPU on every request (building the request, headers, response
  handling): about 1-2 ms on this machine, more than the 20 ms latency divided by 64
  concurrent requests (0.3 ms). On a CPU-bound client the throughput is the client's CPU
  rate, not concurrency / latency; the bare-client line shows how far this machine gets
  with no SDK at all. distilabel_nb takes the SDK's generic request path (what
  `client.post` does: no typed-dict transform, no response models) on the SDK's own
  aiohttp client (`openai.DefaultAioHttpClient`), with the request options built once and
  copied per call, the body sent as orjson bytes, the answer read as bytes and parsed by
  orjson, and the base URL + path parsed once per client. What is left is the SDK's
  per-request work (headers, the httpx request it builds and hands to aiohttp, its
  retry loop), the one-time `import openai` (~1 s of the cold run) and the pipeline's
  own (row keys, row cache writes, the output table).
- Raw figures: `bench/llm/results.json`.
"""
    (HERE / "README.md").write_text(text)


def _minutes(r: dict) -> int:
    total = r["nb"]["cold"]["seconds"] + r["ceiling"]["seconds"]
    if "distilabel" in r:
        total += sum(v["seconds"] for v in r["distilabel"].values())
    return max(1, round(total / 60 + 0.5))


if __name__ == "__main__":
    main()
