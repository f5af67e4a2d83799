"""Soak: many SIGKILL trials and concurrent runs of a real pipeline on real files.

    python bench/soak/run_soak.py                 # 30 kill trials + 5 rounds of 4 processes
    python bench/soak/run_soak.py --trials 100 --rounds 10 --seed 1

Each kill trial starts the fault pipeline of ``tests/faultkit.py`` (a JSON Lines file of
300 rows, batches of 10, two slow steps, two leaves) in a fresh cache, SIGKILLs it at a
random moment once it is computing (one to three times, the later kills hitting resumed
runs), then runs it to the end and compares every row with an uninterrupted run. Each
concurrency round starts 4 processes on one fresh cache at once, then checks a fifth run
is a full hit. Figures go to ``bench/soak/results.json`` and the table in README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import platform
import random
import statistics
import sys
import tempfile
import time
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests import faultkit  # noqa: E402 (after the path set-up above)
from tests import faultkit_run as runner  # noqa: E402

MIN_BATCHES = 3 * faultkit.N_ROWS // faultkit.BATCH  # upper, nchars, words


def kill_trials(folder: pathlib.Path, data: pathlib.Path, trials: int, seed: int,
                parallel: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    plans = [(folder / f"trial{i}", rng.randrange(1 << 30), rng.randint(1, 3))
             for i in range(trials)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(runner.kill_trial, path, data, s, kills, 1.0)
                   for path, s, kills in plans]
        results = [f.result() for f in futures]
    want = faultkit.expected()
    for result, (_, s, kills) in zip(results, plans, strict=True):
        result["seed"], result["kills"] = s, kills
        result["correct"] = result["code"] == 0 and result["rows"] == want
        result["extra_batches"] = sum(result["computed"].values()) - MIN_BATCHES
        del result["rows"]
        if not result["correct"]:
            print(f"trial with seed {s} FAILED:\n{result['stderr'][-3000:]}", file=sys.stderr)
        result["stderr"] = result["stderr"][-500:]
    return results


def concurrency_round(folder: pathlib.Path, data: pathlib.Path) -> dict[str, Any]:
    cache, log = folder / "cache", folder / "log"
    processes = [runner.start(cache, data, folder / f"out{i}", log) for i in range(4)]
    codes = [runner.finish(p)[0] for p in processes]
    want = faultkit.expected()
    correct = all(c == 0 for c in codes) and all(
        faultkit.read_out(folder / f"out{i}") == want for i in range(4))
    code, _ = runner.finish(runner.start(cache, data, folder / "after", log))
    report = json.loads((folder / "after" / "report.json").read_text()) if code == 0 else {}
    hit = set(report.get("statuses", {}).values()) == {"hit"}
    warned = any("CacheWarning" in w for i in range(4)
                 for w in json.loads((folder / f"out{i}" / "report.json").read_text())["warnings"]
                 ) if correct else True
    return {"correct": correct, "full_hit_after": hit, "cache_warnings": warned,
            "batches_computed": len(faultkit.read_log(log))}


def write_readme(summary: dict[str, Any]) -> None:
    readme = pathlib.Path(__file__).with_name("README.md")
    text = readme.read_text()
    start, end = "<!-- soak:start -->", "<!-- soak:end -->"
    k, c = summary["kill"], summary["concurrency"]
    table = "\n".join([
        start,
        f"Last run: {summary['date']}, {summary['machine']}, seed {summary['seed']}, "
        f"{summary['seconds']:.0f} s.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| kill trials | {k['trials']} ({k['kills_landed']} SIGKILLs landed mid-run) |",
        f"| trials whose final rows equal an uninterrupted run's | {k['correct']} of "
        f"{k['trials']} |",
        f"| batches recomputed after kills (work lost), per trial | mean "
        f"{k['extra_mean']:.1f}, max {k['extra_max']} (of {MIN_BATCHES}) |",
        f"| rounds of 4 concurrent processes | {c['rounds']} |",
        f"| rounds with correct rows in all 4 | {c['correct']} of {c['rounds']} |",
        f"| rounds followed by a full hit, no CacheWarning | {c['clean']} of {c['rounds']} |",
        end,
    ])
    if start in text:
        text = text[: text.index(start)] + table + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + table + "\n"
    readme.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=6)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    began = time.time()
    with tempfile.TemporaryDirectory(prefix="distilabel-nb-soak-") as tmp:
        folder = pathlib.Path(tmp)
        data = faultkit.write_data(folder / "data.jsonl")
        trials = kill_trials(folder, data, args.trials, seed, args.parallel)
        rounds = [concurrency_round(folder / f"round{i}", data) for i in range(args.rounds)]
    extras = [t["extra_batches"] for t in trials]
    summary: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "seed": seed, "seconds": time.time() - began,
        "machine": f"{platform.system()} {platform.machine()}, Python "
                   f"{platform.python_version()}",
        "kill": {"trials": len(trials), "correct": sum(t["correct"] for t in trials),
                 "kills_landed": sum(t["killed"] for t in trials),
                 "extra_mean": statistics.mean(extras) if extras else 0.0,
                 "extra_max": max(extras, default=0)},
        "concurrency": {"rounds": len(rounds), "correct": sum(r["correct"] for r in rounds),
                        "clean": sum(r["full_hit_after"] and not r["cache_warnings"]
                                     for r in rounds)},
    }
    out = pathlib.Path(__file__).with_name("results.json")
    out.write_text(json.dumps({"summary": summary, "trials": trials, "rounds": rounds},
                              indent=1))
    print(json.dumps(summary, indent=1))
    if not args.no_readme:
        write_readme(summary)
    ok = summary["kill"]["correct"] == len(trials) and summary["concurrency"]["clean"] == len(
        rounds) and summary["concurrency"]["correct"] == len(rounds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
