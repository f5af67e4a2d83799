"""``%%pipeline`` and ``%pipeline_cache``: thin magics over ``Pipeline`` and the CLI.

``%%pipeline NAME`` runs the cell body in the user namespace inside
``with Pipeline(name=NAME) as pipeline:``, applies the cache switches clicked in earlier
graphs, shows the cache graph and runs (or, with ``--plan``, plans) the pipeline while
the graph updates live.
"""

from __future__ import annotations

import importlib
import re
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from distilabel_nb.notebook.display import register_display

__all__ = ["PipelineMagics", "load_ipython_extension", "unload_ipython_extension"]


def _usage(magic: Any) -> str:
    text = magic.parser.format_usage().replace("::", "").strip()
    return "usage: " + " ".join(text.split())


def _parse(magic: Any, line: str) -> Any:
    """The magic's arguments, split as a shell would (quotes group and are removed:
    ``--cache-dir "my cache"``)."""
    try:
        return magic.parser.parse_args(shlex.split(line))
    except ValueError as error:  # shlex: unbalanced quotes
        msg = f"{error}\n{_usage(magic)}"
        raise UsageError(msg) from None
    except UsageError as error:
        msg = f"{error}\n{_usage(magic)}"
        raise UsageError(msg) from None


@magics_class
class PipelineMagics(Magics):
    @magic_arguments()
    @argument("name", help="the pipeline's name (its cache is kept under this name)")
    @argument("--no-cache", action="store_true",
              help="recompute every step: run(use_cache=False)")
    @argument("--plan", action="store_true", help="show what a run would do; run nothing")
    @argument("--out", default="distiset", metavar="VAR",
              help="variable for the Distiset (default: distiset)")
    @argument("--cache-dir", default=None, metavar="DIR", help="cache root directory")
    @argument("--fail-fast", action="store_true",
              help="stop at the first failed batch: run(fail_fast=True)")
    @argument("--max-budget", type=float, default=None, metavar="USD",
              help="stop sending LLM requests at this much money: run(max_budget=USD)")
    @argument("--recompute", nargs="+", action="extend", default=[], metavar="STEP",
              help="force these steps (and so their descendants) to recompute")
    @cell_magic
    def pipeline(self, line: str, cell: str) -> None:
        """Declare a pipeline in the cell, run what changed, show its cache graph."""
        __tracebackhide__ = True  # IPython hides this frame in tracebacks
        args = _parse(self.pipeline, line)
        usage = _usage(self.pipeline)
        if not args.out.isidentifier():
            msg = f"--out must be a Python identifier, not {args.out!r}\n{usage}"
            raise UsageError(msg)
        if not cell.strip():
            msg = f"%%pipeline {args.name}: the cell is empty; declare the steps in it\n{usage}"
            raise UsageError(msg)
        from distilabel_nb.notebook.overrides import apply_overrides
        from distilabel_nb.pipeline.pipeline import Pipeline

        shell = self.shell
        assert shell is not None
        _import_distilabel_first(cell)
        pipeline = Pipeline(name=args.name, cache_dir=args.cache_dir)
        shell.user_ns["pipeline"] = pipeline
        with pipeline:
            self._exec(cell)
        unknown = [s for s in args.recompute if s not in pipeline.steps]
        if unknown:
            msg = (f"--recompute: no step named {', '.join(map(repr, unknown))} in pipeline "
                   f"{args.name!r}; its steps are {', '.join(pipeline.steps)}\n{usage}")
            raise UsageError(msg)
        apply_overrides(pipeline)
        use_cache, recompute = not args.no_cache, list(args.recompute)

        def runner(graph: Any) -> Any:   # the graph's Run button: shown in that graph
            result = pipeline.run(use_cache=use_cache, recompute=recompute, progress=False,
                                  fail_fast=args.fail_fast, max_budget=args.max_budget,
                                  on_event=graph.handle_event)
            shell.user_ns[args.out] = result
            return result

        graph = self._graph(pipeline, runner, use_cache, recompute)
        if args.plan:
            if graph is not None:
                graph.plan()
                _refresh(graph)
            else:
                print(pipeline.plan(use_cache=use_cache, recompute=recompute))
            return
        try:
            distiset = pipeline.run(use_cache=use_cache, recompute=recompute,
                                    progress=graph is None, fail_fast=args.fail_fast,
                                    max_budget=args.max_budget,
                                    on_event=None if graph is None else graph.handle_event)
        except BaseException:
            if graph is not None:
                _refresh(graph)      # the stored picture shows the failed step
            raise
        shell.user_ns[args.out] = distiset
        if graph is not None:
            graph.set_result(distiset)
            _refresh(graph)
        elif pipeline.last_run is not None:
            print(pipeline.last_run)

    def _exec(self, cell: str) -> None:
        """Run the body like a cell: IPython syntax, tracebacks and ``inspect`` sources."""
        __tracebackhide__ = True
        shell = self.shell
        assert shell is not None
        # One blank line for the magic's own line, so tracebacks count lines as the cell.
        source = "\n" + shell.transform_cell(cell)
        number = shell.execution_count
        filename = shell.compile.cache(source, number, raw_code="\n" + cell)
        code = shell.compile(source, filename, "exec")
        exec(code, shell.user_ns)  # running the cell is what a cell magic is for

    def _graph(self, pipeline: Any, runner: Any, use_cache: bool, recompute: list[str]) -> Any:
        """Create and display the live graph; ``None`` when it cannot be shown (a terminal
        IPython: progress bars and the report table instead)."""
        from IPython.display import display

        if not _has_frontend(self.shell):
            return None
        try:
            from distilabel_nb.notebook.widget import CacheGraph

            graph = CacheGraph(pipeline, on_run=runner, use_cache=use_cache,
                               recompute=recompute)
        except ImportError as error:
            print(f"(no cache graph: {error}; pip install 'distilabel_nb[notebook]')")
            return None
        # The display is updated after the run so that the static picture stored with it
        # (what nbconvert and GitHub show) is the final one, not the pending one.
        graph._display_handle = display(graph, display_id=True)
        return graph

    @line_magic
    def pipeline_cache(self, line: str) -> None:
        """``%pipeline_cache [ls | show NAME | clear NAME [--step S] | gc --max-size SIZE |
        verify] [--cache-dir DIR_OR_URI] [--json]``: the ``distilabel-nb cache`` command, in
        the notebook (a local cache or one on an object store, ``s3://bucket/prefix``)."""
        try:
            argv = shlex.split(line)
        except ValueError as error:
            msg = f"%pipeline_cache: {error}\n{_CACHE_USAGE}"
            raise UsageError(msg) from None
        try:
            from distilabel_nb import cli
        except ImportError:
            print("%pipeline_cache is not available yet in this version (it needs "
                  "distilabel_nb.cli); use Pipeline(cache_dir=...) and delete the folder.")
            return
        main = getattr(cli, "main", None)
        if main is None:
            print("%pipeline_cache is not available yet: distilabel_nb.cli has no main().")
            return
        front: list[str] = []
        rest: list[str] = []
        i = 0
        while i < len(argv):   # global options of the CLI go before the sub-command
            arg = argv[i]
            if arg == "--json":
                front.append(arg)
            elif arg == "--cache-dir" and i + 1 < len(argv):
                front += [arg, argv[i + 1]]
                i += 1
            elif arg.startswith("--cache-dir="):
                front.append(arg)
            else:
                rest.append(arg)
            i += 1
        try:
            code = main([*front, "cache", *(rest or ["ls"])])
        except SystemExit as exit_:   # argparse's way of reporting bad arguments
            code = exit_.code
        if code not in (0, None):
            msg = f"%pipeline_cache {line}: failed (exit status {code})\n{_CACHE_USAGE}"
            raise UsageError(msg)


_IMPORTS_DISTILABEL = re.compile(r"^\s*(?:from|import)\s+distilabel(?:[.\s]|$)", re.MULTILINE)


def _import_distilabel_first(cell: str) -> None:
    """A cell importing distilabel's classes has it imported before the pipeline is
    entered: the pipeline joins distilabel's pipeline manager only when distilabel is
    already imported, and without that its steps' ``>>`` would fail."""
    if "distilabel" not in sys.modules and _IMPORTS_DISTILABEL.search(cell):
        importlib.import_module("distilabel.pipeline")


def _has_frontend(shell: Any) -> bool:
    """A kernel with a front end that may show widgets (not the terminal IPython)."""
    return getattr(shell, "kernel", None) is not None


def _refresh(graph: Any) -> None:
    handle = getattr(graph, "_display_handle", None)
    if handle is not None:
        handle.update(graph)


_CACHE_USAGE = ("usage: %pipeline_cache [ls | show NAME | clear NAME [--step STEP] | "
                "gc [--max-size SIZE] [--older-than AGE] [--dry-run] | verify] "
                "[--cache-dir DIR_OR_URI] [--json]")

PipelineMagics.pipeline.parser.prog = "%pipeline"  # IPython prefixes one more %

_loaded: dict[int, PipelineMagics] = {}


def load_ipython_extension(ipython: Any) -> None:
    if id(ipython) in _loaded:
        return
    magics = PipelineMagics(ipython)
    ipython.register_magics(magics)
    register_display(ipython)
    _loaded[id(ipython)] = magics


def unload_ipython_extension(ipython: Any) -> None:
    magics = _loaded.pop(id(ipython), None)
    if magics is None:
        return
    manager = ipython.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    manager.registry.pop(type(magics).__name__, None)
