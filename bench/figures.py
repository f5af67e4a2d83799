"""From the raw results of run.py to the figures table (and its Markdown)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["figures", "render_table"]

Result = dict[str, Any]
TOOLS = ("distilabel", "distilabel_nb")
MB = 2**20


def _get(result: Result, *path: str) -> Any:
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} MB"


def _count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _figure(report: Result, label: str, path: tuple[str, ...], fmt: Callable[[Any], str],
            target: str = "", *, at_least: float | None = None,
            at_most: float | None = None, scale: float = 1.0, ratio: bool = True) -> Result:
    """One row: both tools' values, distilabel / ours, and the target with its verdict.

    ``at_least`` applies to the ratio (distilabel / ours); ``at_most`` to ours alone.
    """
    values = {}
    for tool in TOOLS:
        raw = _get(report["results"], tool, *path)
        values[tool] = raw / scale if isinstance(raw, (int, float)) else None
        if raw is None:
            values[tool + "_why"] = _why_missing(_get(report["results"], tool), path)
    ours, theirs = values["distilabel_nb"], values["distilabel"]
    times = theirs / ours if ratio and ours and theirs is not None else None
    met = None
    if at_least is not None and times is not None:
        met = times >= at_least
    if at_most is not None and ours is not None:
        met = ours <= at_most
    return {"label": label, "distilabel": theirs, "distilabel_nb": ours, "ratio": times,
            "target": target, "met": met,
            "text": {tool: values.get(tool + "_why") or fmt(values[tool]) for tool in TOOLS}}


def _why_missing(results: Result | None, path: tuple[str, ...]) -> str:
    """'hung', 'failed' or 'not run', from the scenario result along ``path``."""
    node: Any = results
    for key in (*path, None):
        if not isinstance(node, dict):
            return "not run"
        if node.get("hung"):
            return "hung"
        if "error" in node:
            return "failed"
        if node.get("not_killed"):  # a resume whose run ended before half-way
            return "finished first"
        rerun = node.get("rerun")  # a resume: the rerun after the kill
        if isinstance(rerun, dict) and (rerun.get("hung") or "error" in rerun):
            return "hung" if rerun.get("hung") else "failed"
        if key is None or key not in node:
            return "not run"
        node = node[key]
    return "n/a"


def figures(report: Result) -> list[Result]:
    sizes = report["sizes"]
    n, noop_n, memory_n = sizes["three_steps"], sizes["noop20"], sizes["memory"]
    three = f"three steps, {n:,} rows"
    noop = f"20 no-op steps, {noop_n:,} rows"
    rows = [
        _figure(report, f"{three}: cold, in `run()`", ("three_steps", "cold", "run_seconds"),
                _seconds, ">= 100x", at_least=100),
        _figure(report, f"{three}: cold, whole process",
                ("three_steps", "cold", "process_seconds"), _seconds),
        _figure(report, f"{three}: full hit, in `run()`", ("three_steps", "hit", "run_seconds"),
                _seconds, ">= 20x", at_least=20),
        _figure(report, f"{three}: full hit, whole process",
                ("three_steps", "hit", "process_seconds"), _seconds, ">= 3x", at_least=3),
        _figure(report, f"{three}: last step changed, in `run()`",
                ("three_steps", "partial", "run_seconds"), _seconds),
        _figure(report, f"{three}: rerun after a kill at half-way / cold",
                ("three_steps", "resume", "rerun_over_cold"), _fraction, "~0.5 (ours <= 0.6)",
                at_most=0.6, ratio=False),
        _figure(report, f"{three}: rows finished before the kill (see below)",
                ("three_steps", "resume", "rows_done_at_kill"), _percent, ratio=False),
        _figure(report, f"{three}: cache after the cold run",
                ("three_steps", "cache", "bytes"), _mb, ">= 5x (<= 1/5)", at_least=5,
                scale=MB),
        _figure(report, f"{three}: cache files after the cold run",
                ("three_steps", "cache", "files"), _count),
        _figure(report, f"{three}: peak RSS, cold run", ("three_steps", "cold", "rss_mb"),
                _mb, ">= 2x (<= 1/2)", at_least=2),
        _figure(report, f"{noop}: cold, in `run()`", ("noop20", "cold", "run_seconds"),
                _seconds, ">= 200x", at_least=200),
        _figure(report, f"{noop}: full hit, in `run()`", ("noop20", "hit", "run_seconds"),
                _seconds),
        _figure(report, f"{noop}: last step changed, in `run()`",
                ("noop20", "partial", "run_seconds"), _seconds),
        _figure(report, f"{noop}: rerun after a kill at half-way / cold",
                ("noop20", "resume", "rerun_over_cold"), _fraction, ratio=False),
        _figure(report, f"{noop}: cache after the cold run", ("noop20", "cache", "bytes"),
                _mb, scale=MB),
        _figure(report, f"three steps, {memory_n:,} rows: peak RSS, whole process",
                ("memory", "rss_mb"), _mb),
        _figure(report, f"three steps, {memory_n:,} rows: peak RSS added by `run()`",
                ("memory", "rss_run_extra_mb"), _mb, "<= 400 MB", at_most=400),
    ]
    return rows


def anomalies(report: Result) -> list[str]:
    """Runs that failed, hung, or returned an incomplete or wrong table."""
    found = []
    for tool, by_pipeline in report["results"].items():
        for pipeline, scenarios in by_pipeline.items():
            runs = {"": scenarios} if pipeline == "memory" else scenarios
            for scenario, result in runs.items():
                where = f"{tool} {pipeline} {scenario}".strip()
                found.extend(_check_run(where, result, report))
    return found


def _check_run(where: str, result: Result, report: Result) -> list[str]:
    if not isinstance(result, dict) or "bytes" in result:
        return []
    if "rerun" in result or "killed" in result:  # a resume: the kill, then the rerun
        problems = [f"{where}: {result['error']}"] if "error" in result else []
        return problems + _check_run(f"{where} (rerun)", result.get("rerun", {}), report)
    if "error" in result:
        errors = [line.strip() for line in result.get("log_tail", [])
                  if re.match(r"\s*\w+(Error|Exception)\b", line)]
        detail = f" ({errors[-1]})" if errors else ""
        return [f"{where}: {result['error']}{detail}"]
    if not result:
        return []
    problems = []
    if not result.get("complete"):
        problems.append(f"{where}: {result.get('rows')} rows, "
                        f"{result.get('distinct_texts')} distinct, expected {result['n']}")
    if result.get("variant") == "changed" and "sum_n_words" in result \
            and result["sum_n_words"] != result["n"]:
        problems.append(f"{where}: the changed step's output is stale "
                        f"(sum of n_words {result['sum_n_words']}, expected {result['n']})")
    return problems


def render_table(report: Result) -> str:
    lines = ["| figure | distilabel 1.5.3 | distilabel_nb | distilabel / ours | target | met |",
             "|---|---:|---:|---:|---|:-:|"]
    for row in report["figures"]:
        ratio = "" if row["ratio"] is None else f"{row['ratio']:,.1f}x"
        met = {True: "yes", False: "**no**", None: ""}[row["met"]]
        lines.append(f"| {row['label']} | {row['text']['distilabel']} | "
                     f"{row['text']['distilabel_nb']} | {ratio} | {row['target']} | {met} |")
    machine, versions = report["machine"], report["versions"]
    lines += [
        "",
        f"Measured {report['date']} with `{report['command']}` on {machine['nproc']} cores "
        f"({machine['cpu'] or 'unknown CPU'}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}, {machine['platform']}; "
        + ", ".join(f"{name} {value}" for name, value in versions.items() if value) + ".",
    ]
    columns = report.get("columns", {})
    if len(columns) > 1:  # --only: each tool's column from its own run
        names = {"distilabel": "distilabel 1.5.3", "distilabel_nb": "distilabel_nb"}
        lines[-1] += " Columns from separate runs on this machine: " + "; ".join(
            f"{names.get(tool, tool)}: `{run['command']}` at {run['date']}"
            + (f" (commit {run['git commit']})" if run.get("git commit") else "")
            + (f", load average {run['load_average_at_start'][0]} at the start"
               if run.get("load_average_at_start") else "")
            for tool, run in sorted(columns.items())) + "."
    elif "load_average_at_start" in report:
        start, end = report["load_average_at_start"], report["load_average_at_end"]
        lines[-1] += (f" Load average (1, 5, 15 min) at the start {', '.join(map(str, start))},"
                      f" at the end {', '.join(map(str, end))}.")
        if max(start[0], end[0]) > machine["nproc"]:
            lines[-1] += (" Above the core count: other work shared the machine, and wall"
                          " times grew (distilabel's most: it runs a process per step).")
    problems = anomalies(report)
    if problems:
        lines += ["", "Runs that failed or returned a wrong result:", ""]
        lines += [f"- {problem}" for problem in problems]
    return "\n".join(lines)
