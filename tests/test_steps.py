"""Step kinds as distilabel users write them: subclasses, @step generators, tuple-yielding
generators, the columnar fast path."""

from __future__ import annotations

import pathlib

import pyarrow as pa
import pyarrow.compute as pc

from distilabel_nb import Pipeline, RuntimeParameter
from distilabel_nb.steps import (
    GeneratorStep,
    GeneratorStepOutput,
    LoadDataFromDicts,
    Step,
    StepInput,
    StepOutput,
    step,
)


class Numbers(GeneratorStep):
    """distilabel style: yields (rows, is_last) and honours offset."""

    count: int = 10

    @property
    def outputs(self) -> list[str]:
        return ["n"]

    def process(self, offset: int = 0) -> GeneratorStepOutput:  # type: ignore[override]
        for start in range(offset, self.count, self.batch_size):
            stop = min(start + self.batch_size, self.count)
            yield [{"n": i} for i in range(start, stop)], stop == self.count


class Scale(Step):
    factor: RuntimeParameter[int] = 2

    @property
    def inputs(self) -> list[str]:
        return ["n"]

    @property
    def outputs(self) -> list[str]:
        return ["scaled"]

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
        for row in inputs:
            row["scaled"] = row["n"] * self.factor
        yield inputs


class ArrowSquare(Step):
    """The columnar fast path: Tables in, Table out, no row dicts."""

    @property
    def inputs(self) -> list[str]:
        return ["n"]

    @property
    def outputs(self) -> list[str]:
        return ["square"]

    def process_arrow(self, table: pa.Table) -> pa.Table:
        return table.append_column("square", pc.multiply(table.column("n"), table.column("n")))


def test_subclassed_generator_and_steps_with_runtime_parameters(cache_dir: pathlib.Path) -> None:
    with Pipeline(name="kinds", cache_dir=cache_dir) as pipeline:
        Numbers(name="numbers", count=23, batch_size=5) >> Scale(name="scale") >> ArrowSquare(
            name="square")
    rows = pipeline.run(parameters={"scale": {"factor": 3}},
                        progress=False)["default"]["train"].to_list()
    assert rows == [{"n": i, "scaled": 3 * i, "square": i * i} for i in range(23)]
    assert Scale._fields["factor"].runtime


def test_step_decorated_generator_with_parameters(cache_dir: pathlib.Path) -> None:
    @step(outputs=["word"], step_type="generator")
    def Words(repeat: int = 2) -> GeneratorStepOutput:
        for word in ["a", "b", "c"]:
            yield [{"word": word * repeat}], word == "c"

    with Pipeline(name="kinds", cache_dir=cache_dir) as pipeline:
        Words(name="words", repeat=3)
    assert pipeline.run(progress=False)["default"]["train"]["word"][:] == [
        "aaa", "bbb", "ccc"]
    with Pipeline(name="kinds", cache_dir=cache_dir) as pipeline:
        Words(name="words", repeat=1)
    assert pipeline.plan()["words"].reason == "repeat changed 3 -> 1"


def test_a_step_may_filter_rows_and_yield_several_lists(cache_dir: pathlib.Path) -> None:
    @step(inputs=["n"], outputs=[])
    def EvenTwice(inputs: StepInput) -> StepOutput:
        evens = [row for row in inputs if row["n"] % 2 == 0]
        yield evens
        yield [dict(row) for row in evens]

    with Pipeline(name="kinds", cache_dir=cache_dir) as pipeline:
        LoadDataFromDicts(name="load", data=[{"n": i} for i in range(10)], batch_size=4) >> \
            EvenTwice(name="even", input_batch_size=5)
    values = pipeline.run(progress=False)["default"]["train"]["n"][:]
    assert values == [0, 2, 4, 0, 2, 4, 6, 8, 6, 8]


def test_io_bound_steps_run_in_a_thread_of_their_own(cache_dir: pathlib.Path) -> None:
    import threading

    threads: dict[str, set[str]] = {"fetch": set(), "count": set()}

    @step(inputs=["n"], outputs=["fetched"], io_bound=True)
    def Fetch(inputs: StepInput) -> StepOutput:
        threads["fetch"].add(threading.current_thread().name)
        yield [{**row, "fetched": row["n"] + 1} for row in inputs]

    @step(inputs=["n"], outputs=["counted"])
    def Count(inputs: StepInput) -> StepOutput:
        threads["count"].add(threading.current_thread().name)
        yield [{**row, "counted": 1} for row in inputs]

    with Pipeline(name="threads", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"n": i} for i in range(30)], batch_size=10)
        load >> [Fetch(name="fetch"), Count(name="count")]
    distiset = pipeline.run(progress=False)
    assert distiset["fetch"]["train"]["fetched"][:] == list(range(1, 31))
    assert threads["count"] == {threading.main_thread().name}
    assert threads["fetch"] == {"distilabel_nb:fetch"}
