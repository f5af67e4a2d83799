"""The cache graph of a pipeline of distilabel's classes: statuses, the cache switch on
a node, and a widget state without the secrets the steps hold."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
from distilabel.models import OpenAILLM
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration

from distilabel_nb import Pipeline

from .distilabel_helpers import API_KEY, instructions
from .openai_server import OpenAIServer

pytest.importorskip("anywidget")
pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")

from distilabel_nb.notebook import overrides  # noqa: E402  (after the importorskip)
from distilabel_nb.notebook.widget import CacheGraph  # noqa: E402


def test_graph_of_distilabel_steps_with_a_switch_and_no_secret(tmp_path: pathlib.Path) -> None:
    overrides.clear_overrides()
    with OpenAIServer() as server:
        with Pipeline(name="widget-distilabel", cache_dir=tmp_path) as pipeline:
            load = LoadDataFromDicts(name="load", data=instructions(3))
            gen = TextGeneration(name="gen", llm=OpenAILLM(
                model="m", base_url=server.base_url, api_key=API_KEY, max_retries=0))
            load >> gen
        graph = CacheGraph(pipeline)
        try:
            pipeline.run(progress=False, on_event=graph.handle_event)
            assert {n: node["status"] for n, node in graph.nodes.items()} == {
                "load": "miss", "gen": "miss"}
            graph._on_msg(graph, {"type": "toggle", "step": "gen"}, [])
            assert gen.use_cache is False  # distilabel's own step, switched from the graph
            state = json.dumps(graph.get_state(), default=str)
            assert API_KEY not in state and API_KEY not in graph.svg
        finally:
            graph.close()
            overrides.clear_overrides()
