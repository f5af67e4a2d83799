"""``dump()``, ``save()``, ``from_dict``/``from_yaml`` as distilabel's, for pipelines of
distilabel's steps and ours, in both directions between the two libraries."""

from __future__ import annotations

import json
import pathlib

from distilabel.models import OpenAILLM
from distilabel.pipeline import Pipeline as DistilabelPipeline
from distilabel.pipeline import sample_n_steps
from distilabel.steps import GroupColumns
from distilabel.steps import step as distilabel_step
from distilabel.steps.tasks import TextGeneration

from distilabel_nb import Pipeline
from distilabel_nb.steps import StepInput, step

from .distilabel_helpers import API_KEY, rows


@step(inputs=["instruction"], outputs=["n_words"])
def CountWords(inputs: StepInput, minimum: int = 0):
    for row in inputs:
        row["n_words"] = max(minimum, len(row["instruction"].split()))
    yield inputs


@distilabel_step(outputs=["instruction"], step_type="generator")
def Questions(offset: int = 0):
    yield [{"instruction": f"question number {i}"} for i in range(3)], True


def mixed(cache: pathlib.Path) -> Pipeline:
    with Pipeline(name="mixed-dump", description="theirs and ours",
                  cache_dir=cache) as pipeline:
        load = Questions(name="load")
        count = CountWords(name="count", minimum=1)
        gens = [TextGeneration(name=f"gen_{m}", llm=OpenAILLM(
            model=m, api_key=API_KEY, generation_kwargs={"temperature": 0.1}))
            for m in ("a", "b")]
        group = GroupColumns(name="group", columns=["generation"])
        load >> count >> sample_n_steps(1) >> gens >> group
    return pipeline


def test_dump_has_distilabels_shape_and_no_secret(tmp_path: pathlib.Path) -> None:
    dumped = mixed(tmp_path).dump()
    body = dumped["pipeline"]
    assert [s["name"] for s in body["steps"]] == ["load", "count", "gen_a", "gen_b", "group"]
    gen = body["steps"][2]["step"]
    assert gen["type_info"] == {"module": "distilabel.steps.tasks.text_generation",
                                "name": "TextGeneration"}
    assert gen["llm"]["generation_kwargs"] == {"temperature": 0.1}
    assert {"from": "count", "to": ["gen_a", "gen_b"]} in body["connections"]
    assert API_KEY not in json.dumps(dumped, default=str)


def test_from_dict_and_from_yaml_rebuild_the_same_pipeline(tmp_path: pathlib.Path) -> None:
    original = mixed(tmp_path)
    path = tmp_path / "pipeline.yaml"
    original.save(path, format="yaml")
    assert API_KEY not in path.read_text()
    for loaded in (Pipeline.from_dict(original.dump()), Pipeline.from_yaml(path)):
        assert list(loaded.steps) == list(original.steps)
        assert loaded.dag.edges == original.dag.edges
        assert loaded.routers["count"].targets == ["gen_a", "gen_b"]
        assert loaded.signature == original.signature
        assert loaded.aggregated_steps_signature == original.aggregated_steps_signature
        assert loaded.name == "mixed-dump" and loaded.description == "theirs and ours"


def test_a_dump_made_by_distilabels_pipeline_runs_on_ours(tmp_path: pathlib.Path) -> None:
    with DistilabelPipeline(name="theirs") as theirs:
        load = Questions(name="load")  # LoadDataFromDicts leaves its data out of dumps
        keep = GroupColumns(name="group", columns=["instruction"])
        load >> keep
    ours = Pipeline.from_dict(theirs.dump())
    ours.cache_dir = tmp_path
    out = rows(ours.run(progress=False))
    assert [r["grouped_instruction"] for r in out] == [[f"question number {i}"]
                                                      for i in range(3)]
    back = DistilabelPipeline.from_dict(ours.dump())  # and our dump loads in theirs
    assert list(back.dag) == ["load", "group"]
