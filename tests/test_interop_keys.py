"""The keys of distilabel's steps: class and code, every pydantic field, nested LLM
config, runtime parameters; never a secret; ``use_cache`` honoured.

No ``from __future__ import annotations``: distilabel reads annotations as objects."""

import linecache
import pathlib
import textwrap
from typing import Any

import pytest
from distilabel.models import OpenAILLM
from distilabel.steps import LoadDataFromDicts, Step, StepInput
from distilabel.steps.tasks import TextGeneration
from pydantic import Field, PrivateAttr, SecretStr

from distilabel_nb import Pipeline, StepFailedError
from distilabel_nb.interop.distilabel.keys import describe_step

from .distilabel_helpers import API_KEY, instructions, rows


class Scale(Step):
    """A user's step as distilabel's docs write them: fields, a private attribute."""

    factor: int = Field(default=2, description="what the length is multiplied by")
    _calls: int = PrivateAttr(default=0)

    @property
    def inputs(self) -> list[str]:
        return ["instruction"]

    @property
    def outputs(self) -> list[str]:
        return ["scaled"]

    def load(self) -> None:
        super().load()
        self._calls = 0

    def process(self, inputs: StepInput):
        self._calls += 1
        for row in inputs:
            row["scaled"] = len(row["instruction"]) * self.factor
        yield inputs


class Suffix(Step):
    suffix: str = "!"

    @property
    def inputs(self) -> list[str]:
        return ["instruction"]

    @property
    def outputs(self) -> list[str]:
        return ["loud"]

    def process(self, inputs: StepInput):
        for row in inputs:
            row["loud"] = row["instruction"] + self.suffix
        yield inputs


class Keyed(Suffix):
    api_key: SecretStr = SecretStr("unset")
    hf_token: str = ""
    settings: dict = {}


def build(cache: pathlib.Path, factor: int = 2, **scale: Any) -> Pipeline:
    with Pipeline(name="custom", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=instructions(4), batch_size=2)
        scaled = Scale(name="scale", factor=factor, input_batch_size=2, **scale)
        after = Suffix(name="after")
        side = Suffix(name="side", suffix="?")
        load >> scaled >> after
        load >> side
    return pipeline


def test_a_changed_field_reruns_the_step_and_its_descendants_only(
        tmp_path: pathlib.Path) -> None:
    first = build(tmp_path)
    out = rows(first.run(progress=False), "after")
    assert [r["scaled"] for r in out] == [34] * 4
    assert first.steps["scale"].wrapped._calls == 2  # two batches

    same = build(tmp_path)
    same.run(progress=False)
    assert set(same.last_run.statuses().values()) == {"hit"}
    assert same.steps["scale"].wrapped._calls == 0  # nothing executed

    changed = build(tmp_path, factor=3)
    out = rows(changed.run(progress=False), "after")
    assert [r["scaled"] for r in out] == [51] * 4
    assert changed.last_run.statuses() == {"load": "hit", "scale": "miss", "after": "miss",
                                           "side": "hit"}
    assert changed.last_run["scale"].reason == "factor changed 2 -> 3"


def test_use_cache_false_reruns_the_step_and_its_descendants(tmp_path: pathlib.Path) -> None:
    build(tmp_path).run(progress=False)
    again = build(tmp_path, use_cache=False)
    again.run(progress=False)
    assert again.last_run.statuses() == {"load": "hit", "scale": "miss", "after": "miss",
                                         "side": "hit"}


def _cell(number: int, source: str) -> dict[str, Any]:
    """Run ``source`` as IPython runs a cell: its text kept in ``linecache``."""
    filename = f"<ipython-input-{number}-test>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"Step": Step, "StepInput": StepInput,
                                 "__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


CELL = textwrap.dedent("""
    class Shout(Step):
        @property
        def inputs(self):
            return ["instruction"]

        @property
        def outputs(self):
            return ["shout"]

        def process(self, inputs: StepInput):
            for row in inputs:
                row["shout"] = row["instruction"].upper(){extra}
            yield inputs
""")


def test_code_of_a_step_defined_in_a_notebook_cell_is_in_the_key(tmp_path: pathlib.Path) -> None:
    def run(number: int, extra: str, comment: str = "") -> Pipeline:
        shout = _cell(number, CELL.format(extra=extra) + comment)["Shout"]
        with Pipeline(name="cell", cache_dir=tmp_path) as pipeline:
            LoadDataFromDicts(name="load", data=instructions(2)) >> shout(name="shout")
        pipeline.run(progress=False)
        return pipeline

    assert run(1, "").last_run.statuses()["shout"] == "miss"
    assert run(2, "", comment="\n# a comment only\n").last_run.statuses()["shout"] == "hit"
    edited = run(3, ' + "!"')
    assert edited.last_run.statuses() == {"load": "hit", "shout": "miss"}
    assert edited.last_run["shout"].reason == "code of process() changed"


def test_secrets_are_in_no_key_file_or_report(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="secrets", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=instructions(2))
        keyed = Keyed(name="keyed", api_key=SecretStr(API_KEY), hf_token=API_KEY,
                      settings={"token": API_KEY, "level": 1})
        gen = TextGeneration(name="gen", llm=OpenAILLM(model="m", api_key=API_KEY,
                                                       base_url="http://127.0.0.1:9/v1"))
        load >> keyed
    description = repr(describe_step(keyed)) + repr(describe_step(gen))
    assert API_KEY not in description
    assert "'level': 1" in description and "'model': 'm'" in description
    pipeline.steps.pop("gen")
    pipeline.dag.nodes.remove("gen")
    pipeline.run(progress=False)
    assert API_KEY not in repr(pipeline.last_run) + repr(pipeline.plan())
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_every_field_and_the_nested_llm_config_are_described() -> None:
    with Pipeline(name="describe"):
        gen = TextGeneration(name="gen", system_prompt="be brief",
                             llm=OpenAILLM(model="m", api_key=API_KEY,
                                           generation_kwargs={"temperature": 0.5}))
    described = describe_step(gen)
    assert described["class"] == "distilabel.steps.tasks.text_generation.TextGeneration"
    assert described["system_prompt"] == "be brief"
    assert described["llm"]["class"] == "distilabel.models.llms.openai.OpenAILLM"
    assert described["llm"]["generation_kwargs"] == {"temperature": 0.5}
    assert "api_key" not in described["llm"] and "jobs_ids" not in described["llm"]
    assert "input_batch_size" not in described and "use_cache" not in described


class Leaky(Keyed):
    def process(self, inputs: StepInput):
        msg = f"the server refused {self.api_key.get_secret_value()}"
        raise ValueError(msg)
        yield inputs


def test_a_secret_in_a_steps_error_is_scrubbed(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="leaky", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=instructions(2))
        load >> Leaky(name="leaky", api_key=SecretStr(API_KEY))
    with pytest.raises(StepFailedError) as caught:
        pipeline.run(progress=False, fail_fast=True)
    assert "the server refused <redacted>" in str(caught.value)
    assert API_KEY not in str(caught.value) + str(caught.value.__cause__)
