"""Soak: many SIGKILL trials and concurrent runs of a real pipeline on real files.

    python bench/soak/run_soak.py                 # 30 + 30 LLM kill trials, 5 rounds of 4
    python bench/soak/run_soak.py --trials 100 --rounds 10 --llm-trials 50 --seed 1

Each kill trial starts the fault pipeline of ``tests/faultkit.py`` (a JSON Lines file of
300 rows, batches of 10, two slow steps, two leaves) in a fresh cache, SIGKILLs it at a
random moment once it is computing (one to three times, the later kills hitting resumed
runs), then runs it to the end and compares every row with an uninterrupted run. Each
concurrency round starts 4 processes on one fresh cache at once, then checks a fifth run
is a full hit. Each LLM kill trial does the same to ``load >> upper >> gen`` (``gen`` a
``TextGeneration`` with its row cache, against a local OpenAI-compatible server).
Figures go to ``bench/soak/results.json`` and the table in README.md.
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


def _llm_trial(folder: pathlib.Path, data: pathlib.Path, seed: int, kills: int,
               want: dict[str, Any]) -> dict[str, Any]:
    """One LLM kill trial with a server of its own: each kill lands at a random moment
    once ``gen`` is sending requests; then a run to the end."""
    import signal

    from tests.openai_server import OpenAIServer

    rng = random.Random(seed)
    cache, log = folder / "cache", folder / "log"
    killed = 0
    with OpenAIServer(latency=0.05, record=False) as server:
        env = {"FAULTKIT_LLM_URL": server.base_url}
        for _ in range(kills):
            process = runner.start(cache, data, folder / "killed", log, pipeline="llm",
                                   extra_env=env)
            before = server.count
            deadline = time.monotonic() + 120
            while server.count == before and process.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 1.5))
            alive = process.poll() is None
            if alive:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            killed += alive
        code, err = runner.finish(runner.start(cache, data, folder / "out", log,
                                               pipeline="llm", extra_env=env))
        sent = server.count
    correct = code == 0 and faultkit.read_out(folder / "out") == want
    if not correct:
        print(f"LLM trial with seed {seed} FAILED:\n{err[-3000:]}", file=sys.stderr)
    return {"seed": seed, "kills": kills, "killed": killed, "correct": correct,
            "requests": sent}


def llm_kill_trials(folder: pathlib.Path, data: pathlib.Path, trials: int, seed: int,
                    parallel: int) -> dict[str, Any]:
    """Kill trials of ``load >> upper >> gen`` (an LLM task with its row cache) against
    local OpenAI-compatible servers: exact rows, and how many requests were sent again."""
    from tests.openai_server import OpenAIServer

    with OpenAIServer(record=False) as server:
        code, err = runner.finish(runner.start(
            folder / "llm-ref", data, folder / "llm-ref-out", folder / "llm-ref-log",
            pipeline="llm", extra_env={"FAULTKIT_LLM_URL": server.base_url}))
    if code != 0:
        raise RuntimeError(f"the uninterrupted LLM run failed:\n{err[-3000:]}")
    want = faultkit.read_out(folder / "llm-ref-out")
    rng = random.Random(seed)
    plans = [(folder / f"llm{i}", rng.randrange(1 << 30), rng.randint(1, 3))
             for i in range(trials)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        results = list(pool.map(lambda plan: _llm_trial(plan[0], data, plan[1], plan[2], want),
                                plans))
    extra = [r["requests"] - faultkit.N_ROWS for r in results]
    return {"trials": trials, "correct": sum(r["correct"] for r in results),
            "kills_landed": sum(r["killed"] for r in results),
            "resent_mean": statistics.mean(extra) if extra else 0.0,
            "resent_max": max(extra, default=0), "runs": results}


def ray_kill_trials(folder: pathlib.Path, data: pathlib.Path, trials: int,
                    seed: int) -> dict[str, Any]:
    """Kill trials of the fault pipeline on a local Ray (2 CPUs) started here: each run
    is a driver of its own, SIGKILLed at a random moment; one trial at a time."""
    import os

    import ray

    # As tests/test_ray.py: workers import this checkout, and jsonschema skips a slow
    # optional import that makes Ray's start-up miss its deadline on a loaded machine.
    stub = folder / "raystub"
    stub.mkdir()
    (stub / "rfc3987_syntax.py").write_text('raise ImportError("skipped for Ray")\n')
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), str(stub), *filter(None, [saved])])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        env = {"FAULTKIT_RAY_ADDRESS": ray.get_runtime_context().gcs_address,
               "RAY_IGNORE_UNHANDLED_ERRORS": "1"}
        rng = random.Random(seed)
        results = []
        for i in range(trials):
            result = runner.kill_trial(folder / f"ray{i}", data, rng.randrange(1 << 30),
                                       rng.randint(1, 2), 3.0, extra_env=env)
            result["correct"] = result["code"] == 0 and result["rows"] == faultkit.expected()
            result["extra_batches"] = sum(result["computed"].values()) - MIN_BATCHES
            if not result["correct"]:
                print(f"Ray trial {i} FAILED:\n{result['stderr'][-3000:]}", file=sys.stderr)
            del result["rows"]
            result["stderr"] = result["stderr"][-500:]
            results.append(result)
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    extras = [r["extra_batches"] for r in results]
    return {"trials": trials, "correct": sum(r["correct"] for r in results),
            "kills_landed": sum(r["killed"] for r in results),
            "extra_mean": statistics.mean(extras) if extras else 0.0,
            "extra_max": max(extras, default=0), "runs": results}


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
    found = [w for i in range(4) if (folder / f"out{i}" / "report.json").exists()
             for w in json.loads((folder / f"out{i}" / "report.json").read_text())["warnings"]
             if "CacheWarning" in w]
    warned = bool(found) or not correct
    return {"correct": correct, "full_hit_after": hit, "cache_warnings": warned,
            "warnings": found,
            "batches_computed": len(faultkit.read_log(log))}


def _llm_lines(llm: dict[str, Any] | None) -> list[str]:
    if not llm:
        return []
    return [
        f"| LLM kill trials (`load >> upper >> gen`, row cache) | {llm['trials']} "
        f"({llm['kills_landed']} SIGKILLs landed mid-run) |",
        f"| LLM trials whose final rows equal an uninterrupted run's | {llm['correct']} of "
        f"{llm['trials']} |",
        f"| LLM requests sent again after kills, per trial | mean "
        f"{llm['resent_mean']:.1f}, max {llm['resent_max']} (of {faultkit.N_ROWS}) |",
    ]


def _ray_lines(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    return [
        f"| Ray kill trials (a driver per run on a local Ray) | {found['trials']} "
        f"({found['kills_landed']} SIGKILLs of the driver landed mid-run) |",
        f"| Ray trials whose final rows equal an uninterrupted run's | {found['correct']} of "
        f"{found['trials']} |",
        f"| batches recomputed after Ray kills, per trial | mean {found['extra_mean']:.1f}, "
        f"max {found['extra_max']} (of {MIN_BATCHES}) |",
    ]


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
        *_llm_lines(summary.get("llm")),
        *_ray_lines(summary.get("ray")),
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
    parser.add_argument("--llm-trials", type=int, default=30)
    parser.add_argument("--ray-trials", type=int, default=0,
                        help="kill trials on a local Ray (slow: ~40 s each on 2 cores)")
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
        llm = llm_kill_trials(folder, data, args.llm_trials, seed, args.parallel) \
            if args.llm_trials else None
        llm_runs = llm.pop("runs") if llm else []
        ray_found = ray_kill_trials(folder, data, args.ray_trials, seed) \
            if args.ray_trials else None
        ray_runs = ray_found.pop("runs") if ray_found else []
    extras = [t["extra_batches"] for t in trials]
    summary: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "seed": seed, "seconds": time.time() - began,
        "machine": f"{platform.system()} {platform.machine()}, Python "
                   f"{platform.python_version()}",
        "kill": {"trials": len(trials), "correct": sum(t["correct"] for t in trials),
                 "kills_landed": sum(t["killed"] for t in trials),
                 "extra_mean": statistics.mean(extras) if extras else 0.0,
                 "extra_max": max(extras, default=0)},
        "llm": llm,
        "ray": ray_found,
        "concurrency": {"rounds": len(rounds), "correct": sum(r["correct"] for r in rounds),
                        "clean": sum(r["full_hit_after"] and not r["cache_warnings"]
                                     for r in rounds)},
    }
    out = pathlib.Path(__file__).with_name("results.json")
    out.write_text(json.dumps({"summary": summary, "trials": trials, "rounds": rounds,
                               "llm_trials": llm_runs, "ray_trials": ray_runs}, indent=1))
    print(json.dumps(summary, indent=1))
    if not args.no_readme:
        write_readme(summary)
    ok = summary["kill"]["correct"] == len(trials) and summary["concurrency"]["clean"] == len(
        rounds) and summary["concurrency"]["correct"] == len(rounds)
    ok = ok and (llm is None or llm["correct"] == llm["trials"])
    ok = ok and (ray_found is None or ray_found["correct"] == ray_found["trials"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
