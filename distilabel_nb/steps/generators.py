"""Generator steps made from data: ``make_generator_step`` and ``DataSampler``, as
distilabel's."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
from pydantic import SkipValidation

from distilabel_nb.cache.signature import hash_value
from distilabel_nb.steps.base import GeneratorStep
from distilabel_nb.steps.hub import LoadDataFromHub, arrow_of
from distilabel_nb.steps.loaders import LoadDataFromDicts

if TYPE_CHECKING:
    from distilabel_nb.steps.pipeline_like import PipelineLike

__all__ = ["DataSampler", "make_generator_step"]


def _as_table(data: Any) -> pa.Table | None:
    """A pandas DataFrame, a ``datasets.Dataset`` or an Arrow table as Arrow (else None)."""
    if isinstance(data, pa.Table):
        return data
    module = type(data).__module__
    if module.startswith("pandas") and hasattr(data, "to_dict"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if module.startswith("datasets") and hasattr(data, "with_format"):
        return arrow_of(data)
    return None


def make_generator_step(dataset: Any, pipeline: PipelineLike | None = None, batch_size: int = 50,
                        input_mappings: dict[str, str] | None = None,
                        output_mappings: dict[str, str] | None = None,
                        resources: dict[str, Any] | None = None,
                        repo_id: str | None = "default_name") -> GeneratorStep:
    """A generator step over ``dataset`` (a list of dicts, a pandas DataFrame, a
    ``datasets.Dataset`` or an Arrow table), as distilabel's: a ``LoadDataFromDicts`` for a
    list, else a ``LoadDataFromHub`` holding the rows. Either is keyed by the content of
    the data, so a changed dataset of the same length is a miss."""
    if isinstance(dataset, GeneratorStep):
        return dataset
    options: dict[str, Any] = {"batch_size": batch_size,
                               "input_mappings": dict(input_mappings or {}),
                               "output_mappings": dict(output_mappings or {}),
                               "resources": resources}
    step: GeneratorStep
    if isinstance(dataset, list):
        step = LoadDataFromDicts(data=dataset, **options)
    else:
        table = _as_table(dataset)
        if table is None:
            msg = (f"make_generator_step cannot make rows of a {type(dataset).__name__}: give "
                   "a list of dicts, a pandas DataFrame, a datasets.Dataset or a pyarrow.Table")
            raise TypeError(msg)
        step = LoadDataFromHub(repo_id=repo_id, **options)
        step.set_dataset(table)
    if pipeline is not None and step.pipeline is not pipeline:
        pipeline.add_step(step)
    return step


class DataSampler(GeneratorStep):
    """``samples`` rows, each made of ``size`` rows of ``data`` drawn at random, every
    column a list of their values (few-shot examples), as distilabel's ``DataSampler``.
    Draws are seeded from the step's parameters, so a recomputed step gives the same rows."""

    data: SkipValidation[list[dict[str, Any]]] = []  # rows by reference: no copy
    size: int = 2
    samples: int = 100
    signature_skip: ClassVar[frozenset[str]] = frozenset({"data"})

    @property
    def outputs(self) -> list[str]:
        return list(self.data[0]) if self.data else []

    def signature_fields(self) -> dict[str, Any]:
        description = super().signature_fields()
        description["data"] = f"{len(self.data):,} rows, content {hash_value(self.data)[:12]}"
        return description

    def total_rows(self) -> int:
        return int(self.samples)

    def process(self, offset: int = 0) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        if not self.data:
            msg = f"step {self.name!r} (DataSampler) has no data to sample from: pass data=[...]"
            raise ValueError(msg)
        draw = random.Random(int(hash_value([self.data, self.size, self.samples])[:16], 16))
        done, size = 0, max(1, int(self.batch_size))
        while done < self.samples:
            count = min(size, int(self.samples) - done)
            batch = []
            for _ in range(count):
                chosen = draw.choices(self.data, k=int(self.size))
                batch.append({key: [row.get(key) for row in chosen] for key in chosen[0]})
            done += count
            yield batch, done >= self.samples
