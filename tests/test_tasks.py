"""LLM tasks end to end: real HTTP to a local OpenAI-compatible server, the real SDK.

Which requests reach the server is the measure of what the cache saved.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from distilabel_nb import Pipeline
from distilabel_nb.llms import OfflineLLM, OpenAILLM, token_costs
from distilabel_nb.steps import KeepColumns, LoadDataFromDicts, step
from distilabel_nb.steps.tasks import ChatGeneration, Task, TextGeneration

from .openai_server import OpenAIServer, answer_for

pytest.importorskip("openai")

API_KEY = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


def prompts(n: int) -> list[dict[str, Any]]:
    return [{"instruction": f"question number {i}"} for i in range(n)]


def build(cache: pathlib.Path, server: OpenAIServer, rows: list[dict[str, Any]],
          temperature: float = 0.7, batch_size: int = 8, **llm: Any) -> Pipeline:
    with Pipeline(name="gen-test", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=rows, batch_size=batch_size)
        gen = TextGeneration(
            name="gen", input_batch_size=batch_size,
            llm=OpenAILLM(model="test-model", base_url=server.base_url, api_key=API_KEY,
                          generation_kwargs={"temperature": temperature,
                                             "max_new_tokens": 64},
                          max_retries=llm.pop("max_retries", 0), **llm))
        load >> gen
    return pipeline


def test_rows_are_sent_once_and_only_new_or_changed_rows_later(tmp_path, server):
    pipeline = build(tmp_path, server, prompts(20))
    table = pipeline.run(progress=False)["default"]["train"]
    assert server.count == 20
    assert sorted(server.prompts()) == sorted(r["instruction"] for r in prompts(20))
    assert table["generation"][:] == [
        answer_for(r["instruction"], {"temperature": 0.7}) for r in prompts(20)]
    assert set(table["model_name"][:]) == {"test-model"}
    report = pipeline.last_run
    assert report.statuses() == {"load": "miss", "gen": "miss"}
    assert report["gen"].tokens_used > 0 and report["gen"].tokens_saved == 0
    first_tokens = report["gen"].tokens_used
    body = server.requests[0]
    assert body["max_tokens"] == 64 and body["temperature"] == 0.7
    assert "max_new_tokens" not in body

    # identical re-run: nothing is sent, the same rows come back
    server.reset()
    again = build(tmp_path, server, prompts(20))
    table2 = again.run(progress=False)["default"]["train"]
    assert server.count == 0
    assert again.last_run.statuses() == {"load": "hit", "gen": "hit"}
    assert table2["generation"][:] == table["generation"][:]

    # 5 rows added: exactly the 5 new prompts are sent
    server.reset()
    more = build(tmp_path, server, prompts(25))
    table3 = more.run(progress=False)["default"]["train"]
    assert sorted(server.prompts()) == [f"question number {i}" for i in range(20, 25)]
    gen = more.last_run["gen"]
    assert gen.status == "partial"
    assert (gen.rows_reused, gen.rows_computed) == (20, 5)
    assert gen.tokens_saved == first_tokens
    assert 0 < gen.tokens_used < first_tokens
    assert table3.num_rows == 25
    assert table3["generation"][:][:20] == table["generation"][:]

    # changed temperature: every row is sent again
    server.reset()
    hotter = build(tmp_path, server, prompts(20), temperature=0.2)
    table4 = hotter.run(progress=False)["default"]["train"]
    assert sorted(server.prompts()) == sorted(r["instruction"] for r in prompts(20))
    gen = hotter.last_run["gen"]
    assert gen.status == "miss" and "temperature" in gen.reason
    assert table4["generation"][:][0].endswith("(t=0.2)")


def test_failed_rows_are_none_then_only_they_are_retried(tmp_path, server):
    server.fail_prompts = {"question number 3", "question number 11"}
    pipeline = build(tmp_path, server, prompts(20))
    table = pipeline.run(progress=False)["default"]["train"]
    assert server.count == 20
    generations = table["generation"][:]
    failed = [i for i, g in enumerate(generations) if g is None]
    assert failed == [3, 11]
    metadata = table["distilabel_metadata"][:]
    assert "500" in metadata[3]["error_gen"] and metadata[4]["error_gen"] is None
    assert API_KEY not in metadata[3]["error_gen"]
    assert pipeline.last_run["gen"].status == "failed"
    assert "retried" in pipeline.last_run["gen"].reason

    # the server recovers: only the two failed prompts are sent again
    server.fail_prompts = set()
    server.reset()
    again = build(tmp_path, server, prompts(20))
    table2 = again.run(progress=False)["default"]["train"]
    assert sorted(server.prompts()) == ["question number 11", "question number 3"]
    assert None not in table2["generation"][:]
    assert again.last_run["gen"].status == "partial"
    assert again.last_run["gen"].rows_computed == 2

    # and then everything is cached
    server.reset()
    third = build(tmp_path, server, prompts(20))
    third.run(progress=False)
    assert server.count == 0
    assert third.last_run.statuses() == {"load": "hit", "gen": "hit"}


def test_transient_errors_are_retried_by_the_client(tmp_path, server):
    server.flaky = {"question number 1": 2}
    server.fail_status = 429
    pipeline = build(tmp_path, server, prompts(4), max_retries=3)
    table = pipeline.run(progress=False)["default"]["train"]
    assert None not in table["generation"][:]
    assert server.prompt_counts()["question number 1"] == 3
    assert pipeline.last_run["gen"].status == "miss"


def test_api_key_is_sent_and_never_written(tmp_path, server):
    server.fail_prompts = {"question number 2"}
    pipeline = build(tmp_path, server, prompts(6))
    pipeline.run(progress=False)
    assert set(server.auth_headers) == {f"Bearer {API_KEY}"}
    secret = API_KEY.encode()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "rows.sqlite" for p in files)
    for path in files:
        assert secret not in path.read_bytes(), path
    assert API_KEY not in repr(pipeline.steps["gen"])
    assert API_KEY not in str(pipeline.last_run) and API_KEY not in repr(pipeline.plan())
    assert "api_key" not in str(pipeline.steps["gen"].signature_fields())


def test_api_key_from_environment(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-42")
    with Pipeline(name="env", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(data=prompts(2))
        gen = TextGeneration(llm=OpenAILLM(model="m", base_url=server.base_url))
        load >> gen
    pipeline.run(progress=False)
    assert set(server.auth_headers) == {"Bearer sk-from-env-42"}
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"sk-from-env-42" not in path.read_bytes()


def test_concurrency_retries_and_timeout_are_not_in_the_signature(tmp_path, server):
    pipeline = build(tmp_path, server, prompts(6))
    pipeline.run(progress=False)
    server.reset()
    tuned = build(tmp_path, server, prompts(6), max_concurrency=3, timeout=30.0,
                  max_retries=1)
    tuned.run(progress=False)
    assert server.count == 0
    assert tuned.last_run["gen"].status == "hit"


def test_editing_a_later_step_reuses_every_llm_call(tmp_path, server):
    def make(suffix: str) -> Pipeline:
        @step(inputs=["generation"], outputs=["shout"])
        def Shout(inputs, suffix: str = "!"):
            for row in inputs:
                row["shout"] = (row["generation"] or "").upper() + suffix
            yield inputs

        with Pipeline(name="later", cache_dir=tmp_path) as pipeline:
            load = LoadDataFromDicts(name="load", data=prompts(10), batch_size=5)
            gen = TextGeneration(name="gen", input_batch_size=5,
                                 llm=OpenAILLM(model="m", base_url=server.base_url,
                                               api_key=API_KEY))
            shout = Shout(name="shout", suffix=suffix)
            keep = KeepColumns(name="keep", columns=["instruction", "shout"])
            load >> gen >> shout >> keep
        return pipeline

    make("!").run(progress=False)
    assert server.count == 10
    server.reset()
    pipeline = make("?!")
    table = pipeline.run(progress=False)["default"]["train"]
    assert server.count == 0
    assert pipeline.last_run.statuses() == {
        "load": "hit", "gen": "hit", "shout": "miss", "keep": "miss"}
    assert table["shout"][:][0].endswith("?!")


def test_runtime_generation_kwargs_change_the_signature(tmp_path, server):
    pipeline = build(tmp_path, server, prompts(3))
    pipeline.run(progress=False)
    server.reset()
    pipeline.run(progress=False,
                 parameters={"gen": {"llm": {"generation_kwargs": {"temperature": 1.0}}}})
    assert server.count == 3
    assert server.requests[0]["temperature"] == 1.0


def test_duplicate_inputs_are_sent_once(tmp_path, server):
    rows = [{"instruction": "same"}] * 5 + [{"instruction": "other"}]
    pipeline = build(tmp_path, server, rows, batch_size=10)
    table = pipeline.run(progress=False)["default"]["train"]
    assert server.prompt_counts() == {"same": 1, "other": 1}
    assert table.num_rows == 6


def test_system_prompt_and_template(tmp_path, server):
    with Pipeline(name="tpl", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(data=[{"text": "bonjour", "lang": "English"}])
        gen = TextGeneration(
            system_prompt="You translate.", template="Translate to {{ lang }}: {{ text }}",
            llm=OpenAILLM(model="m", base_url=server.base_url, api_key=API_KEY))
        load >> gen
    assert gen.inputs == ["lang", "text"]
    table = pipeline.run(progress=False)["default"]["train"]
    messages = server.requests[0]["messages"]
    assert messages == [{"role": "system", "content": "You translate."},
                        {"role": "user", "content": "Translate to English: bonjour"}]
    assert table["generation"][:] == [
        "answer to: Translate to English: bonjour"]


def test_chat_generation(tmp_path, server):
    chats = [[{"role": "user", "content": f"hi {i}"}] for i in range(3)]
    with Pipeline(name="chat", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(data=[{"messages": m} for m in chats])
        gen = ChatGeneration(name="chat",
                             llm=OpenAILLM(model="m", base_url=server.base_url, api_key="k"))
        load >> gen
    table = pipeline.run(progress=False)["default"]["train"]
    assert table["generation"][:] == [f"answer to: hi {i}" for i in range(3)]
    server.reset()
    pipeline.run(progress=False)
    assert server.count == 0


def test_custom_task_and_offline_llm_costs(tmp_path):
    class Rate(Task):
        @property
        def inputs(self):
            return ["text"]

        @property
        def outputs(self):
            return ["rating"]

        def format_input(self, row):
            return [{"role": "user", "content": f"Rate: {row['text']}"}]

        def format_output(self, output, row):
            return {"rating": None if output is None else len(output) % 5}

    def make(n: int) -> Pipeline:
        with Pipeline(name="custom", cache_dir=tmp_path) as pipeline:
            load = LoadDataFromDicts(data=[{"text": f"t{i}"} for i in range(n)])
            rate = Rate(name="rate", llm=OfflineLLM(price_per_million_input_tokens=1.0,
                                                    price_per_million_output_tokens=4.0))
            load >> rate
        return pipeline

    first = make(4)
    table = first.run(progress=False)["default"]["train"]
    assert all(isinstance(r, int) for r in table["rating"][:])
    costs = token_costs(first)["rate"]
    assert costs["tokens_used"] > 0 and costs["cost_used"] > 0
    second = make(6)
    second.run(progress=False)
    report = second.last_run["rate"]
    assert (report.rows_reused, report.rows_computed) == (4, 2)
    costs = token_costs(second)["rate"]
    assert costs["tokens_saved"] == first.last_run["rate"].tokens_used
    assert costs["cost_saved"] == pytest.approx(token_costs(first)["rate"]["cost_used"])


def test_use_cache_false_on_the_task_recomputes_every_row(tmp_path, server):
    pipeline = build(tmp_path, server, prompts(4))
    pipeline.run(progress=False)
    server.reset()
    pipeline.steps["gen"].use_cache = False
    pipeline.run(progress=False)
    assert server.count == 4


def test_tokens_in_a_cached_output(tmp_path):
    with Pipeline(name="tok", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(data=prompts(3))
        gen = TextGeneration(name="gen", llm=OfflineLLM())
        load >> gen
    table = pipeline.run(progress=False).arrow_table("default")
    assert gen.tokens_in(table) == pipeline.last_run["gen"].tokens_used > 0



def test_run_without_cache_resends_every_row(tmp_path, server):
    pipeline = build(tmp_path, server, prompts(4))
    pipeline.run(progress=False)
    server.reset()
    pipeline.run(use_cache=False, progress=False)
    assert server.count == 4


def test_a_full_hit_reports_the_tokens_it_saved(tmp_path):
    from distilabel_nb import Pipeline
    from distilabel_nb.llms import OfflineLLM
    from distilabel_nb.steps import LoadDataFromDicts
    from distilabel_nb.steps.tasks import TextGeneration

    def run():
        with Pipeline(name="saved", cache_dir=tmp_path / "c") as pipeline:
            rows = [{"instruction": f"q {i}"} for i in range(8)]
            load = LoadDataFromDicts(name="load", data=rows)
            load >> TextGeneration(name="gen", llm=OfflineLLM())
        pipeline.run(progress=False)
        return pipeline.last_run["gen"]

    first = run()
    assert first.status == "miss" and first.tokens_used > 0
    second = run()
    assert second.status == "hit"
    assert second.tokens_saved == first.tokens_used


def test_task_print_shows_the_prompt_with_placeholders(capsys):
    task = TextGeneration(llm=OfflineLLM(), system_prompt="Be brief.")
    task.print()
    out = capsys.readouterr().out
    assert "Prompt: TextGeneration" in out
    assert "<PLACEHOLDER_INSTRUCTION>" in out and "Be brief." in out
    task.print([{"role": "user", "content": "How much is 2+2?"}])
    assert "How much is 2+2?" in capsys.readouterr().out
