"""Benchmark distilabel_nb against distilabel 1.5.3, in one run, on this machine.

Every measurement runs in a fresh subprocess, in a fresh cache directory under /tmp:
distilabel's pipelines with bench/.venv-distilabel (make it with setup_distilabel.sh),
ours with this Python. Writes bench/results/latest.json, rewrites the figures table in
bench/README.md and prints it.

    python3 bench/run.py             # everything (about 35 minutes, most of it distilabel)
    python3 bench/run.py --quick     # 10,000 rows, distilabel's slow parts skipped
    python3 bench/run.py --only nb   # ours only
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import resource
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from figures import figures, render_table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "latest.json"
README = BENCH / "README.md"
DISTILABEL_PYTHON = BENCH / ".venv-distilabel" / "bin" / "python"
SCRIPTS = {"distilabel": "pipelines_distilabel.py", "nb": "pipelines_nb.py"}
LEAF = {"three_steps": "count", "noop20": "noop_19"}
BATCH_SIZE = 50  # both tools' default, and the loaders' batch_size in both scripts
POLL_SECONDS = 0.05
KILL_POLL_SECONDS = 0.005  # while waiting for the half-way point: 20 no-op steps take < 1 s
MANIFEST_POLL_SECONDS = 0.02  # ours' progress, read from its manifest, at most this often

Result = dict[str, Any]


def python_for(tool: str) -> str:
    return str(DISTILABEL_PYTHON) if tool == "distilabel" else sys.executable


def invoke(tool: str, pipeline: str, n: int, cache: Path, *, variant: str = "base",
           timeout: float = 3600.0,
           kill_when: Callable[[float], bool] | None = None) -> Result:
    """Run one pipeline script in a new process (group) and return what it measured.

    ``process_seconds`` is the wall time from starting the process to the moment the
    script held the result table (imports and data building included); ``exit_seconds``
    runs to the process's exit. ``kill_when(seconds)``, asked from the moment the script
    calls ``run()`` (it says so through a ``.started`` file) with the seconds since then,
    returning true SIGKILLs the whole process group (the main process and any worker it
    started), as a crash would.
    """
    cache.mkdir(parents=True, exist_ok=True)
    result_file = cache.parent / f"{cache.name}.{variant}.result.json"
    started_file = Path(f"{result_file}.started")
    result_file.unlink(missing_ok=True)
    started_file.unlink(missing_ok=True)
    log_file = cache.parent / f"{cache.name}.{variant}.log"
    env = {**os.environ, "HF_HOME": str(cache.parent / f"{cache.name}.hf"),
           "PYTHONUNBUFFERED": "1"}
    command = [python_for(tool), str(BENCH / SCRIPTS[tool]), pipeline, "--n", str(n),
               "--cache-dir", str(cache), "--variant", variant, "--result", str(result_file)]
    load_before = round(os.getloadavg()[0], 2)
    with open(log_file, "w") as log:
        started = time.time()
        process = subprocess.Popen(command, cwd=BENCH, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        outcome: Result = {}
        run_started: float | None = None
        while (usage := _reap(process)) is None:
            now = time.time()
            elapsed = now - started
            if kill_when is not None and run_started is None and started_file.exists():
                run_started = float(started_file.read_text() or now)
            if run_started is not None and kill_when is not None \
                    and kill_when(now - run_started):
                outcome = {"killed_in_run_seconds": round(now - run_started, 3),
                           "killed_at_seconds": round(elapsed, 3)}
                break
            if elapsed > timeout:
                outcome = {"error": f"no result after {timeout:.0f} s (hung)", "hung": True}
                break
            time.sleep(KILL_POLL_SECONDS if run_started is not None else POLL_SECONDS)
        if outcome:
            _kill_group(process)
            return outcome
        exit_seconds = time.time() - started
    if process.returncode != 0 or not result_file.exists():
        tail = log_file.read_text(errors="replace").splitlines()[-15:]
        return {"error": f"exit code {process.returncode}", "log_tail": tail}
    result: Result = json.loads(result_file.read_text())
    result["process_seconds"] = result["done_at"] - started
    result["exit_seconds"] = exit_seconds
    # CPU time of the process and the workers it waited for: less sensitive than wall time
    # to other work on the machine, which the load average before the run tells about.
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    result["load_before"] = load_before
    return result


def _reap(process: subprocess.Popen[bytes]) -> resource.struct_rusage | None:
    """The process's resource usage once it has exited (and is reaped), else None."""
    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    if pid == 0:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def disk_usage(folder: Path) -> dict[str, int]:
    """Bytes (the sum of file sizes, like ``du -sb``) and number of files under ``folder``."""
    size = files = 0
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                size += os.path.getsize(path)
                files += 1
    return {"bytes": size, "files": files}


def distilabel_leaf_batches(cache: Path, pipeline: str) -> int:
    """How many batches distilabel's last step has finished: one JSON file each."""
    pattern = f"bench-{pipeline}/steps_data/{LEAF[pipeline]}_*/batch_*.json"
    return sum(1 for _ in cache.glob(pattern))


def nb_leaf_batches(cache: Path, pipeline: str) -> int:
    """How many batches ours' last step has committed: its segments' batch counts in the
    manifest (SQLite, opened read-only; 0 while there is none or it is busy)."""
    query = ("SELECT s.rows FROM segments s JOIN outputs o ON o.key = s.key "
             "WHERE o.pipeline = ? AND o.step = ?")
    count = 0
    for manifest in cache.glob("*/manifest.sqlite"):  # one folder per cache format version
        try:
            with contextlib.closing(sqlite3.connect(f"{manifest.as_uri()}?mode=ro", uri=True,
                                                    timeout=0.05)) as conn:
                rows = conn.execute(query, (f"bench-{pipeline}", LEAF[pipeline])).fetchall()
        except sqlite3.Error:
            continue
        count += sum(len(json.loads(counts)) for (counts,) in rows)
    return count


def leaf_batches(tool: str, cache: Path, pipeline: str) -> int:
    if tool == "distilabel":
        return distilabel_leaf_batches(cache, pipeline)
    return nb_leaf_batches(cache, pipeline)


def resume(tool: str, pipeline: str, n: int, work: Path, cold: Result) -> Result:
    """Kill a cold run at half-way, run again, and time the second run.

    Half-way is the same for both tools: the last step has half of its batches done
    (distilabel: one file each in its cache; ours: committed in the manifest). If that
    takes twice the cold run, the kill comes then.
    """
    cache = Path(tempfile.mkdtemp(prefix=f"{tool}-{pipeline}-resume-", dir=work))
    half = cold["run_seconds"] / 2
    total_batches = math.ceil(n / BATCH_SIZE)
    checked = [0.0]
    all_at_once = [False]

    def kill_when(in_run: float) -> bool:
        if all_at_once[0]:
            return False
        if in_run >= 4 * half:
            return True
        if in_run - checked[0] < MANIFEST_POLL_SECONDS and tool == "nb":
            return False  # a query per poll would take a share of the run's two cores
        checked[0] = in_run
        done = leaf_batches(tool, cache, pipeline)
        # A short run commits its batches at the end, all at once: no half-way to kill at.
        all_at_once[0] = done >= total_batches
        return total_batches / 2 <= done < total_batches

    killed = invoke(tool, pipeline, n, cache, kill_when=kill_when)
    out: Result = {"killed": killed}
    if "killed_in_run_seconds" not in killed:
        if "run_seconds" in killed:  # a short run: its last step committed late
            out["not_killed"] = ("the run finished before its last step had half of its "
                                 "batches committed" + (", all at once at the end"
                                                         if all_at_once[0] else ""))
        else:
            out["error"] = killed.get("error", "the run failed before it could be killed")
        return out
    out["killed_at_cold_fraction"] = round(killed["killed_in_run_seconds"] / cold["run_seconds"],
                                           3)
    batches = leaf_batches(tool, cache, pipeline)
    out["leaf_batches_at_kill"] = round(min(batches, total_batches) / total_batches, 3)
    if tool == "distilabel":
        out["rows_done_at_kill"] = out["leaf_batches_at_kill"]
    # A resumed run should take about half a cold one; allow a full one and a margin
    # before calling it hung (distilabel 1.5.3 often deadlocks here).
    timeout = cold["process_seconds"] * 1.25 + 60
    rerun = invoke(tool, pipeline, n, cache, timeout=timeout)
    out["rerun"] = rerun
    if "run_seconds" in rerun:
        out["rerun_over_cold"] = round(rerun["run_seconds"] / cold["run_seconds"], 3)
    leaf = _get_step(rerun, LEAF[pipeline])
    if leaf is not None:  # ours: [status, rows reused, rows computed] of the last step
        out["rows_done_at_kill"] = round(leaf[1] / n, 3)
        out["rows_done_at_kill_by_step"] = {name: round(step[1] / n, 3)
                                            for name, step in rerun["steps"].items()}
    shutil.rmtree(cache, ignore_errors=True)
    return out


def _get_step(result: Result, name: str) -> list[Any] | None:
    steps = result.get("steps")
    return steps.get(name) if isinstance(steps, dict) else None


def scenarios(tool: str, pipeline: str, n: int, work: Path, *, with_resume: bool) -> Result:
    """Cold run, cache size, full hit, partial (last step changed), resume after a kill."""
    cache = Path(tempfile.mkdtemp(prefix=f"{tool}-{pipeline}-", dir=work))
    out: Result = {}
    log(f"{tool} {pipeline} n={n}: cold")
    out["cold"] = invoke(tool, pipeline, n, cache)
    if "error" in out["cold"]:
        return out
    out["cache"] = disk_usage(cache)
    hf_cache = cache.parent / f"{cache.name}.hf"
    if hf_cache.exists():  # distilabel's Distiset: an Arrow copy made by `datasets`
        out["cache"]["hf_datasets_bytes"] = disk_usage(hf_cache)["bytes"]
    log(f"{tool} {pipeline} n={n}: full hit")
    out["hit"] = invoke(tool, pipeline, n, cache)
    log(f"{tool} {pipeline} n={n}: partial (last step changed)")
    out["partial"] = invoke(tool, pipeline, n, cache, variant="changed")
    shutil.rmtree(cache, ignore_errors=True)
    if with_resume:
        log(f"{tool} {pipeline} n={n}: resume after a kill at half-way")
        out["resume"] = resume(tool, pipeline, n, work, out["cold"])
    return out


def machine() -> Result:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), "")
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu,
            "memory_gib": round(memory_gib, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def versions() -> Result:
    found: Result = {}
    probes = {"distilabel": (str(DISTILABEL_PYTHON), "distilabel"),
              "distilabel_nb": (sys.executable, "distilabel_nb"),
              "pyarrow (ours)": (sys.executable, "pyarrow")}
    for label, (python, module) in probes.items():
        if not Path(python).exists():
            continue
        code = f"import {module}; print({module}.__version__)"
        done = subprocess.run([python, "-c", code], capture_output=True, text=True,
                              check=False)
        found[label] = done.stdout.strip() or None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH,
                            capture_output=True, text=True, check=False).stdout.strip()
    edited = subprocess.run(["git", "status", "--porcelain", "--", "../distilabel_nb"],
                            cwd=BENCH, capture_output=True, text=True, check=False).stdout
    # The engine is installed editable: uncommitted edits to it are what was measured.
    found["git commit"] = f"{commit}+uncommitted engine edits" if edited.strip() else commit
    return found


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="10,000 rows, 100,000 for the memory figure; distilabel's "
                             "resume and 20-step runs skipped (a smoke run)")
    parser.add_argument("--only", choices=("nb", "distilabel"),
                        help="run one tool only; the other's columns are kept from the "
                             "--out file's earlier run (the table says which run is which)")
    parser.add_argument("--n", type=int, help="rows for three_steps (default 100,000)")
    parser.add_argument("--noop-n", type=int, default=1_000, help="rows for noop20")
    parser.add_argument("--rss-n", type=int,
                        help="rows for ours' memory figure (default 1,000,000)")
    parser.add_argument("--no-readme", action="store_true",
                        help="do not rewrite the table in bench/README.md")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON results file")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="run nothing: redo the table (and README) from a results file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.render:
        report = json.loads(args.render.read_text())
        report["figures"] = figures(report)
        publish(report, args)
        return
    n = args.n or (10_000 if args.quick else 100_000)
    rss_n = args.rss_n or (100_000 if args.quick else 1_000_000)
    tools = [args.only] if args.only else ["distilabel", "nb"]
    if "distilabel" in tools and not DISTILABEL_PYTHON.exists():
        sys.exit("bench/.venv-distilabel is missing: run bench/setup_distilabel.sh first "
                 "(or pass --only nb)")
    command = "python3 bench/run.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    report: Result = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "versions": versions(),
        "sizes": {"three_steps": n, "noop20": args.noop_n, "memory": rss_n},
        "quick": args.quick, "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "results": {},
    }
    work = Path(tempfile.mkdtemp(prefix="distilabel-nb-bench-"))
    try:
        for tool in tools:
            slow_skipped = tool == "distilabel" and args.quick
            results: Result = {"three_steps": scenarios(tool, "three_steps", n, work,
                                                         with_resume=not slow_skipped)}
            if not slow_skipped:
                results["noop20"] = scenarios(tool, "noop20", args.noop_n, work,
                                              with_resume=True)
            if tool == "nb":
                log(f"nb three_steps n={rss_n}: cold, for peak memory")
                cache = Path(tempfile.mkdtemp(prefix="nb-memory-", dir=work))
                results["memory"] = invoke(tool, "three_steps", rss_n, cache)
                shutil.rmtree(cache, ignore_errors=True)
            report["results"]["distilabel_nb" if tool == "nb" else tool] = results
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.only:
        keep_other_columns(report, args.out)
    report["figures"] = figures(report)
    publish(report, args)


def keep_other_columns(report: Result, previous_file: Path) -> None:
    """With ``--only``, the other tool's results come from the results file being replaced
    (its earlier run), and ``report["columns"]`` says which run each column comes from."""
    run_here = {"command": report["command"], "date": report["date"],
                "git commit": report["versions"].get("git commit"),
                "load_average_at_start": report["load_average_at_start"],
                "load_average_at_end": report["load_average_at_end"]}
    columns = {tool: run_here for tool in report["results"]}
    try:
        previous: Result = json.loads(previous_file.read_text())
    except (OSError, ValueError):
        report["columns"] = columns
        return
    for tool, results in previous.get("results", {}).items():
        if tool in report["results"]:
            continue
        report["results"][tool] = results
        earlier = previous.get("columns", {}).get(tool)
        columns[tool] = earlier or {key: previous.get(key) for key in (
            "command", "date", "load_average_at_start", "load_average_at_end")}
        for name, value in previous.get("versions", {}).items():  # e.g. distilabel's version
            report["versions"].setdefault(name, value)
    report["columns"] = columns


def publish(report: Result, args: argparse.Namespace) -> None:
    """Write the JSON results, the README's table, and print the table."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    table = render_table(report)
    if not args.no_readme:
        rewrite_readme(table)
    print(table)


def rewrite_readme(table: str) -> None:
    start, end = "<!-- figures:start -->", "<!-- figures:end -->"
    text = README.read_text()
    if start not in text or end not in text:
        log(f"{README} has no {start} ... {end} markers: table not written")
        return
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    README.write_text(f"{head}{start}\n{table}\n{end}{tail}")


if __name__ == "__main__":
    main()
