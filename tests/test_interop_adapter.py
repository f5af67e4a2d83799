"""A distilabel step through our engine does what it does under distilabel's pipeline:
mappings, runtime parameters, generators, global steps, metadata, resources.

No ``from __future__ import annotations`` here: distilabel's ``@step`` reads its
parameters' annotations (``StepInput``, ``RuntimeParameter``) as objects."""

import pathlib

from distilabel.mixins.runtime_parameters import RuntimeParameter
from distilabel.steps import (
    GeneratorStep,
    GlobalStep,
    LoadDataFromDicts,
    StepInput,
    StepResources,
    step,
)
from distilabel.typing import GeneratorStepOutput, StepOutput

from distilabel_nb import Pipeline
from distilabel_nb.interop.distilabel import DistilabelStep

from .distilabel_helpers import instructions, rows


@step(inputs=["instruction"], outputs=["response"])
def Echo(inputs: StepInput, prefix: RuntimeParameter[str] = ">") -> StepOutput:
    for row in inputs:
        row["response"] = f"{prefix} {row['instruction']}"
    yield inputs


@step(inputs=["response"], outputs=["n_chars"])
def CountChars(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["n_chars"] = len(row["response"])
    yield inputs


@step(outputs=["num"], step_type="generator")
def Numbers(offset: int = 0, count: int = 7) -> GeneratorStepOutput:
    for start in range(0, count, 3):
        yield [{"num": i} for i in range(start, min(start + 3, count))], start + 3 >= count


class Total(GlobalStep):
    @property
    def inputs(self) -> list[str]:
        return ["num"]

    @property
    def outputs(self) -> list[str]:
        return ["total"]

    def process(self, inputs: StepInput) -> StepOutput:
        total = sum(row["num"] for row in inputs)
        yield [{**row, "total": total} for row in inputs]


class Batches(GeneratorStep):
    """A generator yielding ``batch_size`` rows at a time, as distilabel's do."""

    rows: int = 5

    @property
    def outputs(self) -> list[str]:
        return ["i"]

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        size = self.batch_size
        for start in range(offset, self.rows, size):
            yield [{"i": i} for i in range(start, min(start + size, self.rows))], \
                start + size >= self.rows


def test_input_and_output_mappings_as_distilabel_applies_them(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="mappings", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"prompt": "hi", "instruction": "keep"}])
        echo = Echo(name="echo", input_mappings={"instruction": "prompt"},
                    output_mappings={"response": "answer"})
        count = CountChars(name="count", input_mappings={"response": "answer"})
        load >> echo >> count
    out = rows(pipeline.run(progress=False))
    # the mapped column keeps its name, the one it overrode comes back (distilabel's rule)
    assert out == [{"prompt": "hi", "instruction": "keep", "answer": "> hi", "n_chars": 4}]


def test_step_function_parameters_are_runtime_parameters(tmp_path: pathlib.Path) -> None:
    def build() -> Pipeline:
        with Pipeline(name="params", cache_dir=tmp_path) as pipeline:
            load = LoadDataFromDicts(name="load", data=instructions(2))
            load >> Echo(name="echo") >> CountChars(name="count")
        return pipeline

    pipeline = build()
    out = rows(pipeline.run(progress=False, parameters={"echo": {"prefix": "#"}}))
    assert out[0]["response"] == "# question number 0"
    again = build()
    again.run(progress=False, parameters={"echo": {"prefix": "#"}})
    assert set(again.last_run.statuses().values()) == {"hit"}
    third = build()
    third.run(progress=False, parameters={"echo": {"prefix": "!"}})
    assert third.last_run.statuses() == {"load": "hit", "echo": "miss", "count": "miss"}
    assert "prefix changed" in third.last_run["echo"].reason


def test_generators_global_steps_and_batch_sizes(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="kinds", cache_dir=tmp_path) as pipeline:
        numbers = Numbers(name="numbers")
        total = Total(name="total")
        numbers >> total
        Batches(name="batches", batch_size=2)
    distiset = pipeline.run(progress=False)
    assert [r["total"] for r in rows(distiset, "total")] == [21] * 7
    assert [r["i"] for r in rows(distiset, "batches")] == [0, 1, 2, 3, 4]
    kinds = {name: step.kind for name, step in pipeline.steps.items()}
    assert kinds == {"numbers": "generator", "total": "global", "batches": "generator"}
    assert pipeline.last_run["batches"].rows == 5
    # a generator that uses its own state up (as LoadDataFromDicts does) runs again
    other = Pipeline(name="kinds-2", cache_dir=tmp_path)
    with other:
        load = LoadDataFromDicts(name="load", data=instructions(3), batch_size=2)
    for _ in range(2):
        assert len(rows(other.run(progress=False, use_cache=False))) == 3
    assert len(load.data) == 3


def test_resources_replicas_reach_the_step_protocol(tmp_path: pathlib.Path) -> None:
    with Pipeline(name="resources", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=instructions(2))
        load >> Echo(name="echo", resources=StepResources(replicas=3, cpus=1))
    adapter = pipeline.steps["echo"]
    assert isinstance(adapter, DistilabelStep)
    assert adapter.resources == {"replicas": 3, "num_cpus": 1}
    assert "resources" not in adapter.signature_fields()
    assert len(rows(pipeline.run(progress=False))) == 2


def test_use_cache_toggled_on_the_adapter_reaches_distilabels_step(
        tmp_path: pathlib.Path) -> None:
    with Pipeline(name="toggle", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=instructions(2))
        echo = Echo(name="echo")
        load >> echo
    pipeline.steps["echo"].use_cache = False  # as the widget toggles it
    assert echo.use_cache is False
    pipeline.run(progress=False)
    pipeline.run(progress=False)
    assert pipeline.last_run.statuses() == {"load": "hit", "echo": "miss"}

