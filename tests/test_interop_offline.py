"""distilabel's offline batch generation on our cache: the job id survives new objects
(a re-run cell), a pending job halts the run without sending again, its answers enter
the row cache once done."""

from __future__ import annotations

import pathlib

import pytest
from distilabel.models import OpenAILLM
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration

from distilabel_nb import OfflineBatchPendingError, Pipeline

from .distilabel_helpers import API_KEY, rows
from .openai_server import OpenAIServer, answer_for


def build(cache: pathlib.Path, base_url: str, n: int) -> Pipeline:
    with Pipeline(name="offline-distilabel", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", batch_size=4,
                                 data=[{"instruction": f"say {i}"} for i in range(n)])
        gen = TextGeneration(name="gen", llm=OpenAILLM(
            model="m", base_url=base_url, api_key=API_KEY, max_retries=0,
            use_offline_batch_generation=True))
        load >> gen
    return pipeline


def test_a_pending_job_is_polled_by_the_next_run_then_collected(
        tmp_path: pathlib.Path) -> None:
    with OpenAIServer() as server:
        api = server.batch_api
        for _run in range(2):  # a new pipeline each time, as a re-run cell builds
            with pytest.raises(OfflineBatchPendingError) as caught:
                build(tmp_path, server.base_url, 6).run(progress=False)
            assert caught.value.job_id == "batch_1" and caught.value.total == 6
            assert (len(api.batches), api.uploads) == (1, 1)  # one job, one upload
        api.complete()
        out = rows(build(tmp_path, server.base_url, 6).run(progress=False))
        assert [r["generation"] for r in out] == [answer_for(f"say {i}", {"temperature": 1.0})
                                                  for i in range(6)]
        assert (len(api.batches), api.uploads) == (1, 1)
        # Two more rows: only they go in a new job; the six answers come from the cache.
        with pytest.raises(OfflineBatchPendingError) as caught:
            build(tmp_path, server.base_url, 8).run(progress=False)
        assert caught.value.total == 2 and len(api.batches) == 2
        assert server.count == 0  # never a chat completions request
