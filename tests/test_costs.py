"""Money per LLM step after a run: spent, saved by the row cache and by a full hit."""

from __future__ import annotations

import json

import pytest

from distilabel_nb import Pipeline
from distilabel_nb.drawing.views import node_money
from distilabel_nb.llms import OpenAILLM, token_costs
from distilabel_nb.steps import LoadDataFromDicts
from distilabel_nb.steps.tasks import TextGeneration
from tests.openai_server import OpenAIServer, answer_for

pytest.importorskip("openai")
PRICE_IN, PRICE_OUT = 3.0, 12.0  # per million tokens


def build(cache_dir, base_url, n):
    with Pipeline(name="money", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"instruction": f"say {i}"}
                                                    for i in range(n)])
        gen = TextGeneration(name="gen", llm=OpenAILLM(
            model="m", base_url=base_url, api_key="k",
            price_per_million_input_tokens=PRICE_IN, price_per_million_output_tokens=PRICE_OUT))
        load >> gen
    return pipeline


def cost_of(rows):
    """What the test server's answers to these rows cost (it counts words as tokens)."""
    tokens_in = sum(len(f"say {i}".split()) for i in rows)
    tokens_out = sum(len(answer_for(f"say {i}", {}).split()) for i in rows)
    return (tokens_in * PRICE_IN + tokens_out * PRICE_OUT) / 1e6


def test_money_spent_and_saved_per_step(cache_dir):
    with OpenAIServer() as server:
        first = build(cache_dir, server.base_url, 6)
        first.run(progress=False)
        grown = build(cache_dir, server.base_url, 9)
        grown.run(progress=False)
        again = build(cache_dir, server.base_url, 9)
        again.run(progress=False)
    assert first.last_run["gen"].cost_used == pytest.approx(cost_of(range(6)))
    # 3 new rows sent, 6 from the row cache.
    assert grown.last_run["gen"].cost_used == pytest.approx(cost_of(range(6, 9)))
    assert grown.last_run["gen"].cost_saved == pytest.approx(cost_of(range(6)))
    assert token_costs(grown)["gen"]["cost_saved"] == pytest.approx(cost_of(range(6)))
    # A full hit: nothing spent, everything saved.
    hit = again.last_run["gen"]
    assert hit.status == "hit" and not hit.cost_used
    assert hit.cost_saved == pytest.approx(cost_of(range(9)))
    assert "saved $" in repr(again.last_run)
    assert node_money(hit, planned=False) == f"${hit.cost_saved:.2g} saved"
    assert first.last_run["load"].cost_used is None


def test_cache_show_has_the_last_runs_money(cache_dir, capsys):
    from distilabel_nb.cli import main

    with OpenAIServer() as server:
        build(cache_dir, server.base_url, 4).run(progress=False)
        build(cache_dir, server.base_url, 6).run(progress=False)
    assert main(["--cache-dir", str(cache_dir), "--json", "cache", "show", "money"]) == 0
    steps = {s["step"]: s for s in json.loads(capsys.readouterr().out)["steps"]}
    assert steps["gen"]["cost_used"] == pytest.approx(cost_of(range(4, 6)))
    assert steps["gen"]["cost_saved"] == pytest.approx(cost_of(range(4)))
    assert "cost_used" not in steps["load"]
    assert main(["--cache-dir", str(cache_dir), "cache", "show", "money"]) == 0
    text = capsys.readouterr().out
    assert "last run: spent / saved" in text
    assert f"${cost_of(range(4, 6)):.4g} / ${cost_of(range(4)):.4g}" in text


def test_no_price_no_money(cache_dir):
    with OpenAIServer() as server:
        with Pipeline(name="free", cache_dir=cache_dir) as pipeline:
            load = LoadDataFromDicts(data=[{"instruction": "a"}])
            gen = TextGeneration(name="gen", llm=OpenAILLM(model="m", base_url=server.base_url))
            load >> gen
        pipeline.run(progress=False)
    assert pipeline.last_run["gen"].cost_used is None
    assert node_money(pipeline.last_run["gen"], planned=False) == ""


def test_the_graph_shows_the_plan_estimate_and_the_money(cache_dir):
    pytest.importorskip("anywidget")
    from distilabel_nb.notebook.widget import CacheGraph

    with OpenAIServer() as server:
        pipeline = build(cache_dir, server.base_url, 3)
        graph = CacheGraph(pipeline)
        graph.plan()
        planned = graph.nodes["gen"]["detail"], graph.details["gen"]["estimate"]
        assert server.count == 0
        graph.run()
        ran = graph.nodes["gen"]["detail"], graph.details["gen"]["cost_used"]
    assert planned[0] == f"sends 3 \u00b7 ~${planned_cost(3):.2g}"
    assert planned[1].startswith("sends 3 rows, about ")
    assert ran[0].endswith(f"\u00b7 ${cost_of(range(3)):.2g} spent")
    assert ran[1] == pytest.approx(cost_of(range(3)))


def planned_cost(n):
    """The plan's estimate for n rows "say i": 3 + 4 + 2 prompt tokens, 128 answer tokens."""
    return n * ((3 + 4 + 2) * PRICE_IN + 128 * PRICE_OUT) / 1e6


def test_history_keeps_each_runs_money(cache_dir, capsys):
    """The run history (graph strip, `distilabel-nb runs`) says what each run spent and
    what the caches saved."""
    from distilabel_nb.cli import main
    from distilabel_nb.notebook.history import strip_entries

    with OpenAIServer() as server:
        build(cache_dir, server.base_url, 3).run(progress=False)
        build(cache_dir, server.base_url, 3).run(progress=False)
        pipeline = build(cache_dir, server.base_url, 3)
    first, second = pipeline.history()
    assert first.summary["cost_used"] == pytest.approx(cost_of(range(3)))
    assert second.summary["cost_saved"] == pytest.approx(cost_of(range(3)))
    assert strip_entries([first, second], None)[1]["money_saved"] == pytest.approx(
        cost_of(range(3)))
    assert main(["--cache-dir", str(cache_dir), "runs", pipeline.name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-3:] == ["spent", "money", "saved"]
    assert lines[2].split()[-1] == f"${cost_of(range(3)):.4f}"
