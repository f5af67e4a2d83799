"""Row-level reuse for distilabel's Tasks on distilabel's LLMs, over real HTTP to the
loopback server: what reaches the server is what the row cache did not have."""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from distilabel.models import OpenAILLM
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration

from distilabel_nb import Pipeline

from .distilabel_helpers import API_KEY, instructions, rows
from .openai_server import OpenAIServer, answer_for


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


def build(cache: pathlib.Path, server: OpenAIServer, data: list[dict[str, Any]],
          temperature: float = 0.7, num_generations: int = 1, **task: Any) -> Pipeline:
    with Pipeline(name="rows", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=data, batch_size=4)
        gen = TextGeneration(
            name="gen", input_batch_size=4, num_generations=num_generations,
            llm=OpenAILLM(model="test-model", base_url=server.base_url, api_key=API_KEY,
                          max_retries=0, generation_kwargs={"temperature": temperature}),
            **task)
        load >> gen
    return pipeline


def test_ten_rows_then_twelve_sends_two_requests(tmp_path: pathlib.Path,
                                                  server: OpenAIServer) -> None:
    first = build(tmp_path, server, instructions(10))
    out = rows(first.run(progress=False))
    assert server.count == 10
    assert [r["generation"] for r in out] == [
        answer_for(r["instruction"], {"temperature": 0.7}) for r in instructions(10)]
    assert first.last_run["gen"].tokens_used > 0

    server.reset()
    second = build(tmp_path, server, instructions(12))
    out = rows(second.run(progress=False))
    assert sorted(server.prompts()) == ["question number 10", "question number 11"]
    assert len(out) == 12 and all(r["generation"] for r in out)
    assert second.last_run["load"].reason == "data changed (10 -> 12 rows)"
    report = second.last_run["gen"]
    assert report.status == "partial"
    assert report.rows_reused == 10 and report.rows_computed == 2
    assert report.tokens_saved > 0


def test_changed_generation_kwargs_send_every_row_again(tmp_path: pathlib.Path,
                                                        server: OpenAIServer) -> None:
    build(tmp_path, server, instructions(6)).run(progress=False)
    server.reset()
    changed = build(tmp_path, server, instructions(6), temperature=0.2)
    out = rows(changed.run(progress=False))
    assert server.count == 6
    assert out[0]["generation"] == answer_for("question number 0", {"temperature": 0.2})
    assert "temperature" in changed.last_run["gen"].reason


def test_runtime_parameters_in_distilabels_shape_reach_the_llm(
        tmp_path: pathlib.Path, server: OpenAIServer) -> None:
    pipeline = build(tmp_path, server, instructions(3))
    out = rows(pipeline.run(progress=False, parameters={
        "gen": {"llm": {"generation_kwargs": {"temperature": 0.3}}}}))
    assert {r["temperature"] for r in server.requests} == {0.3}
    assert out[0]["generation"] == answer_for("question number 0", {"temperature": 0.3})


def test_failed_rows_are_not_cached_and_the_next_run_sends_only_them(
        tmp_path: pathlib.Path, server: OpenAIServer) -> None:
    server.fail_prompts = {"number 2", "number 5"}
    pipeline = build(tmp_path, server, instructions(8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = rows(pipeline.run(progress=False))
    assert [r["generation"] is None for r in out] == [i in (2, 5) for i in range(8)]
    assert any("got no answer" in str(w.message) for w in caught)

    server.fail_prompts = set()
    server.reset()
    again = build(tmp_path, server, instructions(8))
    out = rows(again.run(progress=False))
    assert sorted(server.prompts()) == ["question number 2", "question number 5"]
    assert all(r["generation"] for r in out)
    server.reset()
    build(tmp_path, server, instructions(8)).run(progress=False)
    assert server.count == 0


def test_use_cache_false_sends_every_row_and_keeps_the_fresh_answers(
        tmp_path: pathlib.Path, server: OpenAIServer) -> None:
    build(tmp_path, server, instructions(4)).run(progress=False)
    server.reset()
    build(tmp_path, server, instructions(4), use_cache=False).run(progress=False)
    assert server.count == 4
    server.reset()
    build(tmp_path, server, instructions(4)).run(progress=False)
    assert server.count == 0


def test_num_generations_are_part_of_the_row_key(tmp_path: pathlib.Path,
                                                  server: OpenAIServer) -> None:
    build(tmp_path, server, instructions(3)).run(progress=False)
    server.reset()
    pipeline = build(tmp_path, server, instructions(3), num_generations=2)
    out = rows(pipeline.run(progress=False))
    assert server.count == 3 and {r.get("n") for r in server.requests} == {2}
    assert len(out) == 6  # a row per generation (group_generations=False)
    server.reset()
    build(tmp_path, server, instructions(3), num_generations=2).run(progress=False)
    assert server.count == 0


def test_the_api_key_is_in_no_key_file_or_report(tmp_path: pathlib.Path,
                                                 server: OpenAIServer) -> None:
    pipeline = build(tmp_path, server, instructions(3))
    pipeline.run(progress=False)
    assert server.auth_headers[0] == f"Bearer {API_KEY}"
    assert API_KEY not in repr(pipeline.steps["gen"].signature_fields())
    assert API_KEY not in repr(pipeline.last_run)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_plan_says_which_rows_a_run_would_send(tmp_path: pathlib.Path,
                                               server: OpenAIServer) -> None:
    cold = build(tmp_path, server, instructions(10)).plan()["gen"]
    assert cold.rows_to_send == 10 and cold.est_input_tokens > 0 and cold.est_cost is None
    build(tmp_path, server, instructions(10)).run(progress=False)
    server.reset()
    planned = build(tmp_path, server, instructions(12)).plan()["gen"]
    assert planned.rows_to_send == 2 and planned.est_output_tokens > 0
    assert server.count == 0  # a plan sends nothing
