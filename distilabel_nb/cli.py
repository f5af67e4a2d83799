"""``distilabel-nb``: run a pipeline script, manage the cache, draw a pipeline.

    distilabel-nb run SCRIPT [--no-cache]
    distilabel-nb cache ls
    distilabel-nb cache show NAME
    distilabel-nb cache clear NAME [--step STEP]
    distilabel-nb cache gc [--max-size 10GB] [--older-than 30d] [--dry-run]
    distilabel-nb cache verify
    distilabel-nb graph SCRIPT

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
    other_versions,
)
from distilabel_nb.cache.gc import cache_gc
from distilabel_nb.cache.layout import CacheVersionError

__all__ = [
    "cache_clear",
    "cache_gc",
    "cache_ls",
    "cache_show",
    "cache_verify",
    "format_gc",
    "format_ls",
    "format_show",
    "main",
    "pipeline_dot",
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
    text = _table(["step", "last run", "cache", "rows", "size", "last used", "older versions"],
                  rows, {3, 4})
    return (f"pipeline {shown['pipeline']!r}: {format_size(shown['bytes'])}, last run "
            f"{format_age(shown['last_run'])}\n{text}")


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

    graph = commands.add_parser("graph", help="print a script's pipeline as Graphviz DOT")
    graph.add_argument("script")

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


_COLORS = {"hit": "#d1f0d8", "partial": "#fff1c2", "miss": "#ffd8b5", "failed": "#ffc9c9"}


def pipeline_dot(pipeline: Any) -> str:
    """A pipeline as Graphviz DOT, each step filled by what a run would do (its plan)."""
    try:
        plan = pipeline.plan()
    except Exception:  # no usable cache: draw the steps without statuses
        plan = {}
    lines = [f"digraph {json.dumps(pipeline.name)} {{", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for name in pipeline.steps:
        step = plan.get(name)
        status = step.status if step is not None else "?"
        label = f"{name}\\n{status}" if step is not None else name
        color = _COLORS.get(status, "#ffffff")
        lines.append(f"  {json.dumps(name)} [label=\"{label}\", fillcolor=\"{color}\"];")
    lines += [f"  {json.dumps(a)} -> {json.dumps(b)};" for a, b in pipeline.dag.edges]
    return "\n".join([*lines, "}"])


def _graph(args: argparse.Namespace) -> int:
    for pipeline in _load_script(args.script, args.cache_dir):
        print(pipeline_dot(pipeline))
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
        return _cache(args)
    except (KeyError, ValueError, CacheVersionError, CacheLocationError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"distilabel-nb: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
