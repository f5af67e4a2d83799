"""Steps written as distilabel's docs write them run natively: pydantic ``Field``,
``PrivateAttr``, validators, ``load()`` calling ``super().load()``."""

from __future__ import annotations

import pathlib
from typing import Any

import pydantic
import pytest
from pydantic import Field, PrivateAttr, field_validator

from distilabel_nb import Pipeline, RuntimeParameter
from distilabel_nb.steps import LoadDataFromDicts, Step, StepInput, StepOutput

LOADED: list[str] = []


class AddPrefix(Step):
    """A step as in distilabel's "Define a custom Step" guide."""

    prefix: str = Field(default=">> ", description="What goes before each instruction.")
    repeat: RuntimeParameter[int] = Field(default=1, description="How many times.")
    _seen: int = PrivateAttr(default=0)

    @field_validator("prefix")
    @classmethod
    def prefix_is_not_empty(cls, value: str) -> str:
        if not value:
            msg = "prefix must not be empty: give at least one character"
            raise ValueError(msg)
        return value

    def load(self) -> None:
        super().load()
        self._seen = 0
        LOADED.append(self.prefix)

    @property
    def inputs(self) -> list[str]:
        return ["instruction"]

    @property
    def outputs(self) -> list[str]:
        return ["prefixed", "seen"]

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
        for row in inputs:
            self._seen += 1
            row["prefixed"] = self.prefix * int(self.repeat or 1) + row["instruction"]
            row["seen"] = self._seen
        yield inputs


def build(cache: pathlib.Path, **options: Any) -> Pipeline:
    with Pipeline(name="pydantic-steps", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": "a"}, {"instruction": "b"}])
        load >> AddPrefix(name="prefix", **options)
    return pipeline


def test_a_pydantic_step_runs_with_its_field_default_private_attr_and_load(
        tmp_path: pathlib.Path) -> None:
    LOADED.clear()
    pipeline = build(tmp_path)
    rows = pipeline.run(progress=False)["default"]["train"].to_list()
    assert rows == [{"instruction": "a", "prefixed": ">> a", "seen": 1},
                    {"instruction": "b", "prefixed": ">> b", "seen": 2}]
    assert LOADED == [">> "]
    step = pipeline.steps["prefix"]
    assert isinstance(step, pydantic.BaseModel)
    assert step.signature_fields()["prefix"] == ">> "
    assert "_seen" not in step.signature_fields()


def test_field_values_and_runtime_parameters_are_in_the_key(tmp_path: pathlib.Path) -> None:
    build(tmp_path).run(progress=False)
    again = build(tmp_path)
    again.run(progress=False)
    assert again.last_run is not None and again.last_run["prefix"].status == "hit"
    changed = build(tmp_path, prefix="## ")
    assert changed.run(progress=False)["default"]["train"][0]["prefixed"] == "## a"
    assert changed.last_run is not None and changed.last_run["prefix"].status == "miss"
    assert "prefix changed '>> ' -> '## '" in changed.last_run["prefix"].reason
    twice = build(tmp_path)
    rows = twice.run(parameters={"prefix": {"repeat": 2}}, progress=False)
    assert rows["default"]["train"][0]["prefixed"] == ">> >> a"
    assert AddPrefix._fields["repeat"].runtime


def test_a_validator_refuses_bad_values_with_its_message(tmp_path: pathlib.Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="prefix must not be empty"):
        AddPrefix(prefix="")


def test_values_pydantic_only_converts_are_kept_as_given() -> None:
    class Scaled(Step):
        factor: float = 1.0
        names: list[str] = []

    step = Scaled(factor=2, names=("a", "b"))
    assert type(step.factor) is int and step.names == ("a", "b")  # keys stay as before
    assert Scaled(factor=2).signature_fields() == Scaled(factor=2).signature_fields()
    assert Scaled(factor=2) != Scaled(factor=2)  # steps are told apart by identity
    assert len({Scaled(), Scaled()}) == 2
