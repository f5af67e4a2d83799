"""run(max_budget=...): stop sending at the budget, keep what was paid for, finish later."""

from __future__ import annotations

import pytest

from distilabel_nb import BudgetExceededError, Pipeline
from distilabel_nb.llms import OpenAILLM
from distilabel_nb.llms.budget import Budget
from distilabel_nb.steps import LoadDataFromDicts
from distilabel_nb.steps.tasks import TextGeneration
from tests.openai_server import OpenAIServer

pytest.importorskip("openai")
N = 30
CONCURRENCY = 4
# The test server counts words as tokens: "say 7" is 2 prompt tokens, its answer
# "answer to: say 7" 4 completion tokens. At this price every row costs exactly $1.
PRICE = 1e6 / 6


def build(cache_dir, base_url, price=PRICE):
    with Pipeline(name="budget", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"instruction": f"say {i}"}
                                                    for i in range(N)])
        gen = TextGeneration(name="gen", input_batch_size=8, llm=OpenAILLM(
            model="m", base_url=base_url, api_key="k", max_concurrency=CONCURRENCY,
            price_per_million_tokens=price, generation_kwargs={"max_new_tokens": 4}))
        load >> gen
    return pipeline


def test_a_budget_for_a_third_of_the_rows_then_the_rest(cache_dir):
    with OpenAIServer(latency=0.01) as server:
        pipeline = build(cache_dir, server.base_url)
        with pytest.raises(BudgetExceededError) as caught:
            pipeline.run(progress=False, max_budget=N / 3)
        first = server.prompt_counts()
        error = caught.value
        report = pipeline.last_run["gen"]
        # Stopped at $10: what was in flight when it was reached may overshoot it.
        assert N / 3 <= len(first) <= N / 3 + CONCURRENCY
        assert error.spent == pytest.approx(len(first))  # $1 a row
        assert error.budget == N / 3 and error.step == "gen"
        assert error.rows_done == len(first) and error.rows_left == N - len(first)
        assert f"{len(first)} rows done" in str(error)
        assert report.status == "partial" and report.halted == "stopped at the budget"
        assert report.cost_used == pytest.approx(len(first))
        # The next run sends only the rest: no row twice.
        server.reset()
        table = build(cache_dir, server.base_url).run(progress=False)["default"]["train"]
        second = server.prompt_counts()
    assert set(first).isdisjoint(second) and len(first) + len(second) == N
    assert max(second.values()) == 1 and max(first.values()) == 1
    assert table.num_rows == N and None not in table["generation"]


def test_a_budget_needs_a_price(cache_dir):
    with OpenAIServer() as server:
        pipeline = build(cache_dir, server.base_url, price=None)
        with pytest.raises(ValueError, match=r"needs a price on every LLM.*'gen'"):
            pipeline.run(progress=False, max_budget=1.0)
        assert server.count == 0


def test_a_large_budget_changes_nothing(cache_dir):
    with OpenAIServer() as server:
        table = build(cache_dir, server.base_url).run(progress=False, max_budget=1000)
        assert server.count == N
    assert table["default"]["train"].num_rows == N


def test_budget_holds_wait_for_requests_in_flight():
    budget = Budget(3.0)
    assert budget.reserve(2.0) is True
    assert budget.reserve(2.0) is True      # 2 < 3: sent, may overshoot by what flies
    assert budget.reserve(2.0) is None      # 4 in flight >= 3: wait
    budget.settle(2.0, 1.0)                 # one came back at $1
    assert budget.reserve(2.0) is None      # 1 spent + 2 in flight >= 3: wait
    budget.settle(2.0, 1.0)
    assert budget.reserve(0.5) is True      # 2 spent
    budget.settle(0.5, 1.5)                 # 3.5 spent: the limit is reached
    assert budget.reserve(0.1) is False and budget.exhausted
    with pytest.raises(ValueError):
        Budget(-1)


def test_a_budget_needs_the_local_backend(cache_dir):
    class Remote:
        name = "remote"

    with OpenAIServer() as server:
        pipeline = build(cache_dir, server.base_url)
        with pytest.raises(ValueError, match="local backend only, not on 'remote'"):
            pipeline.run(progress=False, max_budget=1.0, backend=Remote())  # type: ignore[arg-type]
        assert server.count == 0
