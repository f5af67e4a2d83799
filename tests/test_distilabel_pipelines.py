"""Scenarios: pipelines as distilabel users write them, with one import changed.

The seed's example (``LoadDataFromDicts >> TextGeneration(llm=InferenceEndpointsLLM(
base_url=...))``) and pipelines from distilabel's how-to guides that need no real
service, their LLMs pointed at the loopback server (it answers both OpenAI's and
huggingface_hub's chat-completion requests: the same ``/v1/chat/completions``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from distilabel.models import InferenceEndpointsLLM, OpenAILLM
from distilabel.pipeline import sample_n_steps
from distilabel.steps import GroupColumns, LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration, UltraFeedback

from distilabel_nb import Pipeline

from .distilabel_helpers import API_KEY, rows
from .openai_server import OpenAIServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_never_stored")
    with OpenAIServer() as srv:
        yield srv


def seed_example(base_url: str, cache: pathlib.Path, use_cache: bool) -> Pipeline:
    """The seed's example, unchanged but for the import (and a test cache folder)."""
    with Pipeline(name="writting-assistant", cache_dir=cache) as pipeline:
        load_dataset = LoadDataFromDicts(
            data=[{"instruction": "Write a short story about a dragon."},
                  {"instruction": "Write a poem about the sea."}])
        text_generation = TextGeneration(
            llm=InferenceEndpointsLLM(base_url=base_url), use_cache=use_cache)
        load_dataset >> text_generation
    return pipeline


def test_seed_example_with_use_cache_false_regenerates_and_reuses_the_loader(
        tmp_path: pathlib.Path, server: OpenAIServer) -> None:
    root = server.base_url.removesuffix("/v1")  # huggingface_hub adds /v1/chat/completions
    first = seed_example(root, tmp_path, use_cache=False)
    out = rows(first.run(progress=False))
    assert server.count == 2
    assert first.last_run.statuses() == {"load_data_from_dicts_0": "miss",
                                         "text_generation_0": "miss"}
    assert out[0]["generation"].startswith("answer to: Write a short story about a dragon.")
    meta = out[0]["distilabel_metadata"]
    assert meta["raw_input_text_generation_0"] == [
        {"role": "user", "content": "Write a short story about a dragon."}]
    assert meta["statistics_text_generation_0"]["output_tokens"] > 0
    assert out[0]["model_name"] == root

    second = seed_example(root, tmp_path, use_cache=False)
    rows(second.run(progress=False))
    assert server.count == 4
    assert second.last_run.statuses() == {"load_data_from_dicts_0": "hit",
                                          "text_generation_0": "miss"}
    assert "hf_test_token_never_stored" not in " ".join(
        p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file())


def test_seed_example_with_the_cache_on_sends_nothing_the_second_time(
        tmp_path: pathlib.Path, server: OpenAIServer) -> None:
    root = server.base_url.removesuffix("/v1")
    out = rows(seed_example(root, tmp_path, use_cache=True).run(progress=False))
    assert server.count == 2
    again = seed_example(root, tmp_path, use_cache=True)
    assert rows(again.run(progress=False)) == out
    assert server.count == 2
    assert set(again.last_run.statuses().values()) == {"hit"}
    assert again.last_run["text_generation_0"].tokens_saved > 0  # from distilabel's stats


def test_guide_several_llms_grouped_then_judged_by_ultrafeedback(
        tmp_path: pathlib.Path, server: OpenAIServer) -> None:
    """How-to guide "Pipeline": two LLMs, GroupColumns, then UltraFeedback."""
    root = server.base_url.removesuffix("/v1")

    def build() -> Pipeline:
        with Pipeline(name="pipe-name", description="My first pipe",
                      cache_dir=tmp_path) as pipeline:
            load_dataset = LoadDataFromDicts(
                name="load_dataset",
                data=[{"instruction": f"Tell me about {topic}"}
                      for topic in ("rivers", "stars", "bread")])
            combine_generations = GroupColumns(
                name="combine_generations", columns=["generation", "model_name"],
                output_columns=["generations", "model_names"])
            for llm in (OpenAILLM(model="gpt-4o-mini", base_url=server.base_url,
                                  api_key=API_KEY, max_retries=0),
                        InferenceEndpointsLLM(base_url=root)):
                task = TextGeneration(name=f"text_generation_with_{llm.model_name[:6]}"
                                      .replace(":", "_").replace("/", "_")
                                      .replace(".", "_"), llm=llm)
                load_dataset.connect(task)
                task.connect(combine_generations)
            ultrafeedback = UltraFeedback(
                name="ultrafeedback", aspect="overall-rating",
                llm=OpenAILLM(model="gpt-4o", base_url=server.base_url, api_key=API_KEY,
                              max_retries=0))
            combine_generations >> ultrafeedback
        return pipeline

    out = rows(build().run(progress=False, parameters={
        "ultrafeedback": {"llm": {"generation_kwargs": {"temperature": 0.0}}}}))
    assert len(out) == 3 and server.count == 9  # 3 rows x (2 generators + 1 judge)
    assert out[0]["model_names"] == ["gpt-4o-mini", root]
    assert out[0]["generations"][0].startswith("answer to: Tell me about rivers")
    assert "ratings" in out[0] and out[0]["model_name"] == "gpt-4o"
    again = build()
    again.run(progress=False, parameters={
        "ultrafeedback": {"llm": {"generation_kwargs": {"temperature": 0.0}}}})
    assert server.count == 9
    assert set(again.last_run.statuses().values()) == {"hit"}


def test_guide_routing_batches_to_sampled_generators(tmp_path: pathlib.Path,
                                                     server: OpenAIServer) -> None:
    """How-to guide "Routing batches to specific downstream steps"."""
    def build() -> Pipeline:
        with Pipeline(name="routing", cache_dir=tmp_path) as pipeline:
            load_dataset = LoadDataFromDicts(
                name="load", data=[{"instruction": f"topic {i}"} for i in range(8)],
                batch_size=2)
            tasks = [TextGeneration(name=f"gen_{model}",
                                    llm=OpenAILLM(model=model, base_url=server.base_url,
                                                  api_key=API_KEY, max_retries=0))
                     for model in ("a", "b", "c")]
            group = GroupColumns(name="group", columns=["generation", "model_name"],
                                 output_columns=["generations", "model_names"])
            load_dataset >> sample_n_steps(2) >> tasks >> group
        return pipeline

    out = rows(build().run(progress=False))
    assert len(out) == 8 and server.count == 16  # each row to two of the three
    assert all(len(r["model_names"]) == 2 for r in out)
    again = build()
    assert rows(again.run(progress=False)) == out
    assert server.count == 16
