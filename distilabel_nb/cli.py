"""``distilabel-nb``: run a pipeline script, manage the cache, draw a pipeline.

    distilabel-nb run SCRIPT [--no-cache]
    distilabel-nb cache ls
    distilabel-nb cache show NAME
    distilabel-nb cache clear NAME [--step STEP]
    distilabel-nb cache gc [--max-size 10GB] [--older-than 30d] [--dry-run]
    distilabel-nb cache verify
    distilabel-nb runs NAME
    distilabel-nb graph SCRIPT
    distilabel-nb graph NAME [--run ID] [-o FILE.svg]

``--cache-dir DIR`` (before the command) picks the cache root, a folder or a URI
(``s3://bucket/prefix?endpoint_override=host:9000``, ``gs://...``, ``file://...``, the
same as ``Pipeline(cache_dir=...)``); ``--json`` prints the result as JSON. The
``cache_*`` functions are the same the ``%pipeline_cache`` magic calls.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from collections.abc import Sequence
from typing import Any

from distilabel_nb.cache.admin import (
    CacheLocationError,
    cache_clear,
    cache_location,
    cache_ls,
    cache_show,
    cache_verify,
    format_age,
    format_size,
    opened,
    other_versions,
)
from distilabel_nb.cache.gc import cache_gc
from distilabel_nb.cache.history import RunEntry, pick_run
from distilabel_nb.cache.layout import CacheVersionError

__all__ = [
    "cache_clear",
    "cache_gc",
    "cache_ls",
    "cache_show",
    "cache_verify",
    "format_gc",
    "format_ls",
    "format_runs",
    "format_show",
    "main",
    "pipeline_dot",
    "recorded_run",
    "recorded_runs",
]


def _table(head: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(head, *rows, strict=True)]
    lines = []
    for row in [head, *rows]:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_ls(listing: list[dict[str, Any]], root: str | os.PathLike[str] | None = None) -> str:
    """``cache ls`` as text."""
    notes = [f"note: {v}/ holds a cache of another format version; it is not read"
             for v in other_versions(root)]
    if not listing:
        return "\n".join([f"the cache at {cache_location(root)} is empty", *notes])
    rows = [[e["pipeline"], str(e["steps"]), str(e["entries"]), format_size(e["bytes"]),
             format_age(e["last_used"])] for e in listing]
    total = sum(e["bytes"] for e in listing)
    text = _table(["pipeline", "steps", "outputs", "size", "last used"], rows, {1, 2, 3})
    return "\n".join([text, f"{len(listing)} pipeline(s), {format_size(total)} "
                      f"in {cache_location(root)}", *notes])


def format_show(shown: dict[str, Any]) -> str:
    """``cache show`` as text."""
    rows = [[s["step"], s["last_run"], s["cache"], f"{s['rows']:,}", format_size(s["bytes"]),
             format_age(s["last_used"]),
             f"{s['older_versions']} ({format_size(s['older_bytes'])})"
             if s["older_versions"] else "-"] for s in shown["steps"]]
    head = ["step", "last run", "cache", "rows", "size", "last used", "older versions"]
    if any(s.get("cost_used") is not None or s.get("cost_saved") is not None
           for s in shown["steps"]):
        head.append("last run: spent / saved")
        for row, step in zip(rows, shown["steps"], strict=True):
            row.append(_money(step.get("cost_used")) + " / " + _money(step.get("cost_saved")))
    text = _table(head, rows, {3, 4})
    return (f"pipeline {shown['pipeline']!r}: {format_size(shown['bytes'])}, last run "
            f"{format_age(shown['last_run'])}\n{text}")


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4g}"


def format_gc(result: dict[str, Any]) -> str:
    """``cache gc`` as text."""
    verb = "would free" if result["dry_run"] else "freed"
    text = (f"{verb} {format_size(result['bytes_freed'])} ({result['removed']} outputs, "
            f"{result['orphans']} stray files); cache now {format_size(result['bytes_after'])}")
    if result["skipped"]:
        text += f"; {result['skipped']} outputs kept because a running pipeline uses them"
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distilabel-nb", description="Incremental, cached LLM data-generation pipelines.")
    parser.add_argument("--cache-dir", default=None,
                        help="cache root, a folder or a URI such as s3://bucket/prefix "
                             "(default: $DISTILABEL_NB_CACHE_DIR or ~/.cache/distilabel_nb)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a Python script that defines a pipeline")
    run.add_argument("script")
    run.add_argument("--no-cache", action="store_true",
                     help="recompute everything (fresh outputs replace the cached ones)")

    graph = commands.add_parser(
        "graph", help="a script's pipeline as Graphviz DOT, or a recorded run as SVG")
    graph.add_argument("script", metavar="SCRIPT_OR_NAME",
                       help="a Python script (prints DOT) or a pipeline name in the cache")
    graph.add_argument("--run", default=None, metavar="ID",
                       help="the run to draw: an id, a prefix of one, or a position "
                            "(1 first, -1 last; the default)")
    graph.add_argument("-o", "--output", default=None, metavar="FILE",
                       help="write the SVG to FILE (default: standard output)")

    runs = commands.add_parser("runs", help="the recorded runs of a pipeline")
    runs.add_argument("name")

    cache = commands.add_parser("cache", help="inspect and manage the cache")
    actions = cache.add_subparsers(dest="action", required=True)
    actions.add_parser("ls", help="pipelines in the cache, with sizes")
    show = actions.add_parser("show", help="steps of a pipeline: status, rows, size, last use")
    show.add_argument("name")
    clear = actions.add_parser("clear", help="remove a pipeline's cached outputs")
    clear.add_argument("name")
    clear.add_argument("--step", default=None, help="only this step's outputs")
    gc = actions.add_parser("gc", help="remove least recently used outputs")
    gc.add_argument("--max-size", default=None, help="keep at most this much, e.g. 10GB")
    gc.add_argument("--older-than", default=None, help="remove what is unused since, e.g. 30d")
    gc.add_argument("--dry-run", action="store_true", help="only say what would go")
    actions.add_parser("verify", help="check every cached file against its checksum; "
                                      "damaged ones are forgotten (recomputed on next run)")
    return parser


def _load_script(script: str, cache_dir: str | None) -> list[Any]:
    """Execute ``script`` (as ``__main__`` is not: its ``run()`` calls are the caller's
    business) and return the pipelines it defines."""
    from distilabel_nb.pipeline.pipeline import Pipeline

    if cache_dir is not None:
        os.environ["DISTILABEL_NB_CACHE_DIR"] = cache_dir
    namespace = runpy.run_path(script, run_name="__distilabel_nb__")
    return [v for v in namespace.values() if isinstance(v, Pipeline)]


def _run(args: argparse.Namespace) -> int:
    pipelines = _load_script(args.script, args.cache_dir)
    if not pipelines:
        print(f"{args.script} defines no Pipeline", file=sys.stderr)
        return 2
    for pipeline in pipelines:
        distiset = pipeline.run(use_cache=not args.no_cache)
        if args.json:
            print(json.dumps({"pipeline": pipeline.name,
                              "steps": {n: r.as_dict() for n, r in pipeline.last_run.items()},
                              "rows": {c: s["train"].num_rows for c, s in distiset.items()}}))
        else:
            print(pipeline.last_run)
    return 0


def pipeline_dot(pipeline: Any) -> str:
    """A pipeline as Graphviz DOT, each step filled by what a run would do (its plan),
    from the same graph the notebook's widget draws."""
    from distilabel_nb.drawing.render import dag_to_dot, report_views, step_reports

    try:
        plan = pipeline.plan()
    except Exception:  # no usable cache: draw the steps without statuses
        plan = None
    nodes = list(pipeline.dag.nodes)
    routes = {(source, target): router.label for source, router in pipeline.routers.items()
              for target in router.targets}
    views = report_views(nodes, step_reports(plan), planned=True)
    return dag_to_dot(nodes, list(pipeline.dag.edges), routes=routes, views=views)


def recorded_runs(root: str | os.PathLike[str] | None, name: str) -> list[RunEntry]:
    """The runs of pipeline ``name`` recorded in the cache at ``root``, oldest first."""
    with opened(root) as cache:
        if cache is None:
            msg = f"no cache at {cache_location(root)}"
            raise KeyError(msg)
        return cache[0].history(name)


def recorded_run(root: str | os.PathLike[str] | None, name: str, wanted: str) -> RunEntry:
    """One recorded run of ``name``, whole: ``wanted`` is an id, a prefix or a position."""
    entries = recorded_runs(root, name)
    if not entries:
        msg = (f"no runs of pipeline {name!r} are recorded in {cache_location(root)} "
               "(runs are recorded from this version on; `distilabel-nb cache ls` lists "
               "the pipelines)")
        raise KeyError(msg)
    entry = pick_run(entries, wanted)
    with opened(root) as cache:
        found = cache[0].history_run(name, entry.run_id) if cache is not None else None
    if found is None:
        msg = f"run {entry.run_id} of {name!r} vanished or is damaged"
        raise KeyError(msg)
    return found


def format_runs(entries: list[RunEntry]) -> str:
    head = ["#", "run", "finished", "statuses", "seconds", "rows", "tokens", "saved"]
    money = any(e.summary.get("cost_saved") or e.summary.get("cost_used") for e in entries)
    if money:
        head += ["spent", "money saved"]
    rows = []
    for i, e in enumerate(entries, 1):
        statuses = " ".join(f"{n} {s}" for s, n in e.statuses.items())
        row = [str(i), e.run_id, format_age(e.finished), statuses + (
            " (error)" if e.error else ""), f"{e.seconds:.2f}", f"{e.summary.get('rows', 0):,}",
            f"{e.summary.get('tokens_used', 0):,}", f"{e.summary.get('tokens_saved', 0):,}"]
        if money:
            row += [f"${e.summary.get('cost_used') or 0:.4f}",
                    f"${e.summary.get('cost_saved') or 0:.4f}"]
        rows.append(row)
    return _table(head, rows, right=set(range(4, len(head))) | {0})


def _graph(args: argparse.Namespace) -> int:
    if os.path.isfile(args.script):
        for pipeline in _load_script(args.script, args.cache_dir):
            print(pipeline_dot(pipeline))
        return 0
    from distilabel_nb.drawing.render import render_svg

    svg = render_svg(recorded_run(args.cache_dir, args.script, args.run or "-1"))
    if args.output is None:
        print(svg)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(svg)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _runs(args: argparse.Namespace) -> int:
    entries = recorded_runs(args.cache_dir, args.name)
    if args.json:
        print(json.dumps([{"run_id": e.run_id, "started": e.started, "finished": e.finished,
                           **e.summary} for e in entries], default=str))
    elif entries:
        print(format_runs(entries))
    else:
        print(f"no runs of pipeline {args.name!r} are recorded in "
              f"{cache_location(args.cache_dir)}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    root = args.cache_dir
    result: Any
    if args.action == "ls":
        result = cache_ls(root)
        text = format_ls(result, root)
    elif args.action == "show":
        result = cache_show(root, args.name)
        text = format_show(result)
    elif args.action == "clear":
        result = cache_clear(root, args.name, args.step)
        what = f"step {args.step!r} of " if args.step else ""
        below = [s for s in result["steps"] if s != args.step] if args.step else []
        also = f" (and downstream: {', '.join(map(repr, below))})" if below else ""
        text = (f"cleared {what}pipeline {args.name!r}{also}: {result['removed']} outputs, "
                f"{format_size(result['bytes'])}")
        if result["skipped"]:
            text += f" ({result['skipped']} in use by a running pipeline were kept)"
    elif args.action == "verify":
        result = cache_verify(root)
        lines = [f"checked {result['files']} files: {len(result['damaged'])} damaged"]
        lines += [f"  {d['pipeline']}/{d['step']}: {d['path']}: {d['why']} (forgotten: "
                  "the next run recomputes it)" for d in result["damaged"]]
        text = "\n".join(lines)
    else:
        if args.max_size is None and args.older_than is None:
            print("cache gc needs --max-size and/or --older-than", file=sys.stderr)
            return 2
        result = cache_gc(root, args.max_size, args.older_than, args.dry_run)
        text = format_gc(result)
    print(json.dumps(result, default=str) if args.json else text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``distilabel-nb`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "graph":
            return _graph(args)
        if args.command == "runs":
            return _runs(args)
        return _cache(args)
    except (KeyError, ValueError, CacheVersionError, CacheLocationError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"distilabel-nb: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
