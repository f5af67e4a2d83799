"""plan(): what each LLM step would send and cost, from what the row cache holds."""

from __future__ import annotations

import pytest

from distilabel_nb import Pipeline
from distilabel_nb.engine.estimate import describe_estimate
from distilabel_nb.llms import OpenAILLM
from distilabel_nb.llms.base import count_tokens
from distilabel_nb.steps import LoadDataFromDicts
from distilabel_nb.steps.tasks import TextGeneration
from tests.openai_server import OpenAIServer, answer_for

pytest.importorskip("openai")

PROMPT = "x" * 37  # 10 tokens by the 4-characters rule (rounded up)


def build(cache_dir, base_url, n, **llm):
    with Pipeline(name="estimate", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"instruction": f"{PROMPT}{i:03d}"}
                                                    for i in range(n)])
        gen = TextGeneration(name="gen", llm=OpenAILLM(
            model="m", base_url=base_url, api_key="k",
            generation_kwargs={"max_new_tokens": 50}, **llm))
        judge = TextGeneration(name="judge", columns="generation", llm=OpenAILLM(
            model="m", base_url=base_url, api_key="k"))
        load >> gen >> judge
    return pipeline


def test_the_characters_per_token_rule():
    # 4 characters per token (rounded up), 4 per message, 3 for the reply.
    assert count_tokens([{"role": "user", "content": "x" * 40}]) == 3 + 4 + 10
    assert count_tokens([{"role": "system", "content": "abc"},
                         {"role": "user", "content": "x" * 41}]) == 3 + 4 + 1 + 4 + 11


def test_plan_estimates_a_cold_run_from_the_loader_rows(cache_dir):
    with OpenAIServer() as server:
        pipeline = build(cache_dir, server.base_url, 30,
                         price_per_million_input_tokens=2.0,
                         price_per_million_output_tokens=8.0)
        plan = pipeline.plan()
        assert server.count == 0  # a plan sends nothing
    gen = plan["gen"]
    per_row = 3 + 4 + 10  # 40 characters of prompt
    assert gen.rows_to_send == 30
    assert gen.est_input_tokens == 30 * per_row
    assert gen.est_output_tokens == 30 * 50  # max_new_tokens, nothing cached yet
    assert gen.est_cost == pytest.approx((30 * per_row * 2.0 + 30 * 50 * 8.0) / 1e6)
    assert "sends 30 rows, about 2.0k tokens, about $0.013" in repr(plan)
    # The judge reads what gen will generate: unknown before gen has run; no price.
    assert plan["judge"].rows_to_send is None and plan["judge"].est_cost is None
    assert plan["load"].rows_to_send is None  # not an LLM step


def test_plan_after_a_run_counts_only_missing_rows_and_the_answers_mean(cache_dir):
    with OpenAIServer() as server:
        build(cache_dir, server.base_url, 30, price_per_million_tokens=1.0).run(progress=False)
        pipeline = build(cache_dir, server.base_url, 40, price_per_million_tokens=1.0)
        plan = pipeline.plan()
        sent_before = server.count
        pipeline.run(progress=False)
        sent = server.count - sent_before
    gen = plan["gen"]
    assert gen.rows_to_send == 10
    assert sent == 10 + 10  # gen sent the 10 rows the plan said (and the judge their 10)
    # Output: the mean of the 30 cached answers' completion tokens (the server counts words).
    answers = [len(answer_for(f"{PROMPT}{i:03d}", {}).split()) for i in range(30)]
    assert gen.est_output_tokens == round(sum(answers) / 30 * 10)
    assert gen.est_input_tokens == 10 * (3 + 4 + 10)
    assert gen.est_cost == pytest.approx((gen.est_input_tokens + gen.est_output_tokens) / 1e6)
    # The judge reads gen's output, now cached for 30 rows but gen is not a hit: unknown.
    assert plan["judge"].rows_to_send is None


def test_plan_of_a_full_hit_sends_nothing(cache_dir):
    with OpenAIServer() as server:
        build(cache_dir, server.base_url, 5, price_per_million_tokens=1.0).run(progress=False)
        plan = build(cache_dir, server.base_url, 5, price_per_million_tokens=1.0).plan()
    assert plan["gen"].rows_to_send == 0 and plan["gen"].est_cost == 0.0
    assert plan["judge"].rows_to_send == 0


def test_use_cache_false_sends_every_row(cache_dir):
    with OpenAIServer() as server:
        build(cache_dir, server.base_url, 5).run(progress=False)
        plan = build(cache_dir, server.base_url, 5).plan(use_cache=False)
    assert plan["gen"].rows_to_send == 5
    assert plan["gen"].est_cost is None  # no price given


def test_describe_estimate_words():
    assert describe_estimate(1200, 700_000, 100_000, 0.42) == \
        "sends 1,200 rows, about 0.8M tokens, about $0.42"
    assert describe_estimate(1, 9, 3, None) == "sends 1 row, about 12 tokens"
    assert describe_estimate(0, 0, 0, 0.0) == "sends nothing"
    assert describe_estimate(None, None, None, None, "upstream 'a' runs first") == \
        "rows to send unknown (upstream 'a' runs first)"
