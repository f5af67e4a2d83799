"""%%pipeline and %pipeline_cache in a real IPython shell."""

from __future__ import annotations

import json
import pathlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("IPython")
pytest.importorskip("anywidget")

from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

from distilabel_nb.notebook import overrides
from distilabel_nb.notebook.widget import CacheGraph

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")

BODY = '''
from distilabel_nb.steps import LoadDataFromDicts, StepInput, step

@step(inputs=["text"], outputs=["n"])
def Count(inputs: StepInput):
    for row in inputs:
        row["n"] = len(row["text"])   # EDIT
    yield inputs

@step(inputs=["n"], outputs=["double"])
def Double(inputs: StepInput):
    for row in inputs:
        row["double"] = row["n"] * 2
    yield inputs

load = LoadDataFromDicts(name="load", batch_size=4, data=[{"text": "x" * i} for i in range(10)])
count = Count(name="count")
double = Double(name="double")
load >> count >> double
'''


@pytest.fixture(scope="module")
def ip() -> Any:
    shell = start_ipython()
    shell.run_line_magic("load_ext", "distilabel_nb")
    return shell


@pytest.fixture(autouse=True)
def _clean(ip: Any) -> Iterator[None]:
    overrides.clear_overrides()
    for name in ("pipeline", "distiset", "result"):
        ip.user_ns.pop(name, None)
    yield
    overrides.clear_overrides()


def cell(ip: Any, line: str, body: str = BODY) -> Any:
    return ip.run_cell_magic("pipeline", line, body)


def statuses(ip: Any) -> dict[str, str]:
    return dict(ip.user_ns["pipeline"].last_run.statuses())


def test_load_and_unload_are_symmetric(ip: Any) -> None:
    magics = ip.magics_manager.magics
    assert "pipeline" in magics["cell"] and "pipeline_cache" in magics["line"]
    ip.run_line_magic("unload_ext", "distilabel_nb")
    assert "pipeline" not in magics["cell"] and "pipeline_cache" not in magics["line"]
    ip.run_line_magic("load_ext", "distilabel_nb")
    assert "pipeline" in magics["cell"] and "pipeline_cache" in magics["line"]


def test_run_binds_pipeline_and_distiset_then_hits(ip: Any, cache_dir: pathlib.Path) -> None:
    cell(ip, f"demo --cache-dir {cache_dir}")
    pipeline = ip.user_ns["pipeline"]
    assert pipeline.name == "demo" and list(pipeline.steps) == ["load", "count", "double"]
    assert statuses(ip) == dict.fromkeys(pipeline.steps, "miss")
    table = ip.user_ns["distiset"]["default"]["train"]
    assert table["double"][:] == [2 * i for i in range(10)]
    cell(ip, f"demo --cache-dir {cache_dir}")
    assert statuses(ip) == dict.fromkeys(pipeline.steps, "hit")
    assert ip.user_ns["distiset"]["default"]["train"].to_list() == table.to_list()


def test_editing_a_step_body_reruns_it_and_its_descendants(ip: Any,
                                                           cache_dir: pathlib.Path) -> None:
    cell(ip, f"edit --cache-dir {cache_dir}")
    cell(ip, f"edit --cache-dir {cache_dir}", BODY.replace("# EDIT", "# only a comment"))
    assert statuses(ip) == {"load": "hit", "count": "hit", "double": "hit"}
    cell(ip, f"edit --cache-dir {cache_dir}",
         BODY.replace('len(row["text"])', 'len(row["text"]) + 1'))
    assert statuses(ip) == {"load": "hit", "count": "miss", "double": "miss"}
    assert "code" in ip.user_ns["pipeline"].last_run["count"].reason
    assert ip.user_ns["distiset"]["default"]["train"]["n"][:][:2] == [1, 2]


def test_options(ip: Any, cache_dir: pathlib.Path) -> None:
    cell(ip, f"opts --cache-dir {cache_dir} --out result")
    assert "result" in ip.user_ns and "distiset" not in ip.user_ns
    cell(ip, f"opts --cache-dir {cache_dir} --out result --recompute count")
    assert statuses(ip) == {"load": "hit", "count": "miss", "double": "miss"}
    cell(ip, f"opts --cache-dir {cache_dir} --no-cache")
    assert statuses(ip) == dict.fromkeys(["load", "count", "double"], "miss")
    ip.user_ns.pop("distiset")
    ip.user_ns["pipeline"].last_run = None
    cell(ip, f"opts --plan --cache-dir {cache_dir}")
    assert "distiset" not in ip.user_ns                 # --plan runs nothing
    assert ip.user_ns["pipeline"].last_run is None
    spaced = cache_dir.parent / "a cache folder"
    cell(ip, f'opts --cache-dir "{spaced}"')            # quoted as in a shell
    assert (spaced / "v1").is_dir() and not any(p.name.startswith('"')
                                                for p in cache_dir.parent.iterdir())


def test_clicked_switch_applies_to_the_next_cell_run(ip: Any, cache_dir: pathlib.Path) -> None:
    cell(ip, f"click --cache-dir {cache_dir}")
    CacheGraph(ip.user_ns["pipeline"]).toggle("count")
    cell(ip, f"click --cache-dir {cache_dir}")
    assert statuses(ip) == {"load": "hit", "count": "miss", "double": "miss"}
    assert ip.user_ns["pipeline"].steps["count"].use_cache is False
    assert ip.user_ns["pipeline"].last_run["count"].reason == "cache disabled on this step"


def test_fail_fast_stops_where_the_default_goes_on(ip: Any, cache_dir: pathlib.Path) -> None:
    from distilabel_nb import StepFailedError, StepFailedWarning

    body = BODY.replace('row["n"] = len(row["text"])   # EDIT',
                        'row["n"] = 1 / (len(row["text"]) - 5)')
    with pytest.raises(StepFailedError, match=r"step 'count' failed on batch 0"):
        cell(ip, f"ff --cache-dir {cache_dir} --fail-fast", body)
    assert "distiset" not in ip.user_ns
    with pytest.warns(StepFailedWarning) as caught:
        cell(ip, f"ff --cache-dir {cache_dir}", body)
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "step 'count' failed on batch 0", "step 'double' failed on batch 0"]
    assert statuses(ip) == {"load": "hit", "count": "failed", "double": "failed"}
    rows = ip.user_ns["distiset"]["default"]["train"].to_list()
    assert [(r["n"], r["double"]) for r in rows] == [(None, None)] * 10


@pytest.mark.parametrize("line", ["", "--bogus demo", "demo --out 1x", "demo extra",
                                  "demo --recompute", 'demo --cache-dir "unclosed'])
def test_bad_arguments_raise_usage_error(ip: Any, line: str) -> None:
    with pytest.raises(UsageError, match=r"usage: %%pipeline \[--no-cache\]"):
        cell(ip, line)


def test_unknown_recompute_step_and_empty_cell(ip: Any, cache_dir: pathlib.Path) -> None:
    with pytest.raises(UsageError, match=r"no step named 'nope'.*load, count, double"):
        cell(ip, f"x --cache-dir {cache_dir} --recompute nope")
    with pytest.raises(UsageError, match="the cell is empty"):
        cell(ip, "x", "  \n")


def test_error_in_the_body_is_a_normal_traceback(ip: Any, cache_dir: pathlib.Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    source = f"%%pipeline boom --cache-dir {cache_dir}\nx = 1\nfor i in range(2):\n    1 / 0\n"
    result = ip.run_cell(source)
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "----> 4     1 / 0" in text    # the body's frame, numbered as in the cell
    assert "ZeroDivisionError" in text


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_pipeline_cache_magic(ip: Any, where: str, request: pytest.FixtureRequest,
                              capsys: pytest.CaptureFixture[str]) -> None:
    root = str(request.getfixturevalue("cache_dir" if where == "folder" else "s3_uri"))
    cell(ip, f"cached --cache-dir {root}")
    capsys.readouterr()
    ip.run_line_magic("pipeline_cache", f"ls --cache-dir '{root}'")
    assert "cached" in capsys.readouterr().out
    ip.run_line_magic("pipeline_cache", f"show cached --cache-dir '{root}'")
    assert "count" in capsys.readouterr().out
    ip.run_line_magic("pipeline_cache", f"clear cached --cache-dir '{root}'")
    ip.run_line_magic("pipeline_cache", f"ls --json --cache-dir '{root}'")
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == []
    with pytest.raises(UsageError, match="usage: %pipeline_cache"):
        ip.run_line_magic("pipeline_cache", "frobnicate")


def test_in_a_kernel_the_graph_is_displayed_and_follows_the_run(
        ip: Any, cache_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distilabel_nb.notebook import magics

    shown: list[Any] = []
    monkeypatch.setattr(magics, "_has_frontend", lambda shell: True)
    monkeypatch.setattr("IPython.display.display",
                        lambda obj, **kwargs: shown.append(obj) or _Handle(shown))
    cell(ip, f"shown --cache-dir {cache_dir}")
    graph = shown[0]
    assert isinstance(graph, CacheGraph) and shown[-1] is graph   # shown, then refreshed
    assert {n["status"] for n in graph.nodes.values()} == {"miss"}
    assert graph.details["double"]["preview"]["total"] == 10
    # The Run button runs with the cell's options and rebinds the result variable.
    ip.user_ns.pop("distiset")
    graph._on_msg(graph, {"type": "run"}, [])
    assert {n["status"] for n in graph.nodes.values()} == {"hit"}
    assert "distiset" in ip.user_ns
    shown.clear()
    cell(ip, f"shown --cache-dir {cache_dir} --plan")
    assert shown[0].mode == "plan"


class _Handle:
    def __init__(self, shown: list[Any]) -> None:
        self.shown = shown

    def update(self, obj: Any) -> None:
        self.shown.append(obj)


LLM_BODY = '''
from distilabel_nb.llms import OpenAILLM
from distilabel_nb.steps import LoadDataFromDicts
from distilabel_nb.steps.tasks import TextGeneration
load = LoadDataFromDicts(name="load", data=[{"instruction": f"say {i}"} for i in range(12)])
gen = TextGeneration(name="gen", llm=OpenAILLM(model="m", base_url=BASE_URL, api_key="k",
                     max_concurrency=1, price_per_million_tokens=1e6 / 6))
load >> gen
'''


def test_plan_shows_the_estimate_and_max_budget_stops(ip: Any, cache_dir: pathlib.Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    pytest.importorskip("openai")
    from distilabel_nb import BudgetExceededError
    from tests.openai_server import OpenAIServer

    with OpenAIServer() as server:
        body = LLM_BODY.replace("BASE_URL", repr(server.base_url))
        cell(ip, f"money --cache-dir {cache_dir} --plan", body)
        assert "sends 12 rows, about" in capsys.readouterr().out
        assert server.count == 0
        with pytest.raises(BudgetExceededError, match="budget reached: spent"):
            cell(ip, f"money --cache-dir {cache_dir} --max-budget 4", body)
        assert 4 <= server.count <= 5  # $1 a row, one request in flight at a time
        assert ip.user_ns["pipeline"].last_run["gen"].halted == "stopped at the budget"


DISTILABEL_IMPORTING_CELL = '''
from distilabel.steps import LoadDataFromDicts, KeepColumns
load = LoadDataFromDicts(name="load", data=[{"a": 1, "b": 2}])
load >> KeepColumns(name="keep", columns=["a"])
'''


def test_a_cell_importing_distilabel_joins_its_steps(tmp_path: pathlib.Path) -> None:
    """distilabel first imported inside the ``%%pipeline`` cell (a fresh kernel): its
    steps still join the pipeline (their ``>>`` needs distilabel's manager to know it)."""
    pytest.importorskip("distilabel")
    import subprocess
    import sys

    script = f"""
import sys
from IPython.testing.globalipapp import start_ipython
ip = start_ipython()
ip.run_line_magic("load_ext", "distilabel_nb")
assert "distilabel" not in sys.modules
ip.run_cell_magic("pipeline", "fresh --cache-dir {tmp_path}", {DISTILABEL_IMPORTING_CELL!r})
print(dict(ip.user_ns["pipeline"].last_run.statuses()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "{'load': 'miss', 'keep': 'miss'}"
