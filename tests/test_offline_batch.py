"""OpenAILLM(use_offline_batch_generation=True): rows through OpenAI's Batch API."""

from __future__ import annotations

import pytest

from distilabel_nb import OfflineBatchPendingError, Pipeline
from distilabel_nb.llms import OpenAILLM
from distilabel_nb.steps import LoadDataFromDicts
from distilabel_nb.steps.tasks import TextGeneration, offline_batch
from tests.openai_server import OpenAIServer, answer_for

pytest.importorskip("openai")
PRICE = 1e6 / 6  # the server's answers to "say i" are 6 tokens: $1 a row at list price


def build(cache_dir, base_url, n, block=None):
    with Pipeline(name="offline", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"instruction": f"say {i}"}
                                                    for i in range(n)], batch_size=4)
        gen = TextGeneration(name="gen", input_batch_size=4, llm=OpenAILLM(
            model="m", base_url=base_url, api_key="k", price_per_million_tokens=PRICE,
            use_offline_batch_generation=True,
            offline_batch_generation_block_until_done=block))
        load >> gen
    return pipeline


def test_a_batch_in_progress_across_two_runs_then_complete(cache_dir):
    with OpenAIServer() as server:
        api = server.batch_api
        for _run in range(2):  # the job is in progress on both runs
            pipeline = build(cache_dir, server.base_url, 10)
            with pytest.raises(OfflineBatchPendingError) as caught:
                pipeline.run(progress=False)
            assert (caught.value.job_id, caught.value.done, caught.value.total) == \
                ("batch_1", 0, 10)
            assert (len(api.batches), api.uploads) == (1, 1)  # one job, one upload
            report = pipeline.last_run["gen"]
            assert report.status == "pending" and report.halted == "waiting \u00b7 batch 0/10"
        # One upload of the 10 rows' requests (the whole input, though batches hold 4).
        assert sorted(r["body"]["messages"][-1]["content"] for r in api.requests_of("batch_1")) \
            == sorted(f"say {i}" for i in range(10))
        # The plan knows the rows are in the job: nothing more to send, half price.
        assert build(cache_dir, server.base_url, 10).plan()["gen"].rows_to_send == 0
        grown = build(cache_dir, server.base_url, 12).plan()["gen"]
        tokens = grown.est_input_tokens + grown.est_output_tokens
        assert grown.rows_to_send == 2
        assert grown.est_cost == pytest.approx(tokens * PRICE / 1e6 * 0.5)  # batch price
        api.complete()
        pipeline = build(cache_dir, server.base_url, 10)
        rows = pipeline.run(progress=False)["default"]["train"]
        assert (len(api.batches), api.uploads) == (1, 1)  # collected, no second job
        again = build(cache_dir, server.base_url, 10)
        again.run(progress=False)
        assert server.count == 0  # never a chat completions request
    assert rows["generation"] == [answer_for(f"say {i}", {}) for i in range(10)]
    assert pipeline.last_run["gen"].cost_used == pytest.approx(10 * 0.5)  # half price
    assert again.last_run["gen"].status == "hit"


def test_block_until_done_polls_within_the_run(cache_dir, monkeypatch):
    monkeypatch.setattr(offline_batch, "POLL_SECONDS", 0.01)
    with OpenAIServer() as server:
        server.batch_api.finish_after_polls = 3
        rows = build(cache_dir, server.base_url, 5, block=30).run(progress=False)
        assert server.batch_api.polls == 3 and len(server.batch_api.batches) == 1
        assert server.count == 0
    assert rows["default"]["train"]["generation"] == [answer_for(f"say {i}", {})
                                                      for i in range(5)]


def test_rows_added_while_the_job_ran_go_as_the_next_job(cache_dir):
    with OpenAIServer() as server:
        api = server.batch_api
        with pytest.raises(OfflineBatchPendingError):
            build(cache_dir, server.base_url, 4).run(progress=False)
        api.complete()
        with pytest.raises(OfflineBatchPendingError) as caught:
            build(cache_dir, server.base_url, 6).run(progress=False)
        assert (caught.value.job_id, caught.value.total) == ("batch_2", 2)
        assert {r["body"]["messages"][-1]["content"] for r in api.requests_of("batch_2")} \
            == {"say 4", "say 5"}
        api.complete()
        rows = build(cache_dir, server.base_url, 6).run(progress=False)
        assert len(api.batches) == 2 and server.count == 0
    assert rows["default"]["train"]["generation"] == [answer_for(f"say {i}", {})
                                                      for i in range(6)]
