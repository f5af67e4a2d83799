"""Loaders over Hugging Face ``datasets``: from the Hub, from disk, and from memory.

Named and shaped as distilabel's (``LoadDataFromHub``, ``LoadDataFromDisk``), they read
through the ``datasets`` library itself (imported when the step is planned or run, never
by ``import distilabel_nb``). Their data enters the cache key: a Hub dataset by repo,
config, split and ``revision`` when one is given, else by the loaded dataset's
fingerprint (``datasets`` derives it from the data files, so an edited file is a miss); a
dataset on disk or in memory by a hash of its content.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pyarrow as pa

from distilabel_nb.cache.signature import hash_bytes
from distilabel_nb.fields import RuntimeParameter
from distilabel_nb.steps.base import GeneratorStep

__all__ = ["LoadDataFromDisk", "LoadDataFromHub", "arrow_of", "content_fingerprint"]


def arrow_of(dataset: Any) -> pa.Table:
    """The rows of a ``datasets.Dataset`` as one Arrow table (selections applied)."""
    if getattr(dataset, "_indices", None) is None:
        return dataset.data.table
    return dataset.with_format("arrow")[:]


def content_fingerprint(table: pa.Table) -> str:
    """A hash of a table's content (not of how it is chunked)."""
    sink = pa.BufferOutputStream()
    combined = table.combine_chunks()
    with pa.ipc.new_stream(sink, combined.schema) as writer:
        writer.write_table(combined)
    return hash_bytes(sink.getvalue().to_pybytes())


def _data_line(rows: int, fingerprint: str) -> str:
    """How a loader's data shows in its description (and in a miss reason)."""
    return f"{rows:,} rows, content {fingerprint[:12]}"


class _TableLoader(GeneratorStep):
    """A generator step over one Arrow table, sliced into batches of ``batch_size``."""

    num_examples: RuntimeParameter[int] = None

    def _rows(self) -> pa.Table:
        raise NotImplementedError

    def _table(self) -> pa.Table:
        table = self._rows()
        if self.num_examples is not None:
            table = table.slice(0, int(self.num_examples))
        return table

    @property
    def outputs(self) -> list[str]:
        return list(self._rows().column_names)

    def total_rows(self) -> int:
        return self._table().num_rows

    def process_arrow(self) -> Iterator[pa.Table]:
        table = self._table()
        size = max(1, int(self.batch_size))
        for start in range(0, table.num_rows, size):
            yield table.slice(start, size)


class LoadDataFromHub(_TableLoader):
    """A Hugging Face dataset through ``datasets.load_dataset(repo_id, config, split=...,
    revision=...)``, as distilabel's ``LoadDataFromHub`` (also local dataset folders and
    scripts, anything ``load_dataset`` takes)."""

    repo_id: RuntimeParameter[str] = None
    split: RuntimeParameter[str] = "train"
    config: RuntimeParameter[str] = None
    revision: RuntimeParameter[str] = None
    streaming: RuntimeParameter[bool] = False
    storage_options: dict[str, Any] | None = None
    signature_skip: ClassVar[frozenset[str]] = frozenset({"storage_options"})

    def _loaded(self) -> Any:
        """The dataset, loaded once per repo, config, split and revision."""
        memory = self.__dict__.get("_memory")
        if memory is not None:
            return memory
        where = (self.repo_id, self.config, self.split, self.revision, self.streaming)
        cached = self.__dict__.get("_dataset")
        if cached is not None and cached[0] == where:
            return cached[1]
        if not self.repo_id:
            msg = (f"step {self.name!r} (LoadDataFromHub) has no repo_id: pass "
                   "LoadDataFromHub(repo_id=...) or run(parameters={"
                   f"{self.name!r}: {{'repo_id': ...}}}})")
            raise ValueError(msg)
        import datasets

        dataset = datasets.load_dataset(self.repo_id, self.config, split=self.split,
                                        revision=self.revision, streaming=bool(self.streaming),
                                        storage_options=self.storage_options)
        if isinstance(dataset, datasets.DatasetDict | datasets.IterableDatasetDict):
            msg = (f"step {self.name!r}: {self.repo_id!r} has splits {list(dataset)}; choose "
                   "one with split=...")
            raise ValueError(msg)
        self.__dict__["_dataset"] = (where, dataset)
        return dataset

    def _rows(self) -> pa.Table:
        memory = self.__dict__.get("_memory_table")
        if memory is not None:
            return memory
        dataset = self._loaded()
        if self.streaming:
            limit = self.num_examples
            rows = list(dataset.take(int(limit))) if limit is not None else list(dataset)
            return pa.Table.from_pylist(rows)
        return arrow_of(dataset)

    def set_dataset(self, table: pa.Table) -> None:
        """Rows given in memory (``make_generator_step``): keyed by their content."""
        self.__dict__["_memory_table"] = table
        self.__dict__["_memory_fingerprint"] = content_fingerprint(table)

    def signature_fields(self) -> dict[str, Any]:
        description = super().signature_fields()
        memory = self.__dict__.get("_memory_table")
        if memory is not None:
            description["data"] = _data_line(memory.num_rows,
                                             self.__dict__["_memory_fingerprint"])
        elif self.revision is None and not self.streaming:
            dataset = self._loaded()
            description["data"] = _data_line(dataset.num_rows, dataset._fingerprint)
        return description


class LoadDataFromDisk(_TableLoader):
    """A dataset written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``, or a
    Distiset written by ``Distiset.save_to_disk`` (``is_distiset=True``), as distilabel's
    ``LoadDataFromDisk``."""

    dataset_path: RuntimeParameter[str] = None
    config: RuntimeParameter[str] = None
    split: RuntimeParameter[str] = None
    is_distiset: bool = False
    keep_in_memory: bool | None = None
    storage_options: dict[str, Any] | None = None
    signature_skip: ClassVar[frozenset[str]] = frozenset({"storage_options", "keep_in_memory"})

    def _loaded(self) -> Any:
        where = (str(self.dataset_path), self.config, self.split, self.is_distiset)
        cached = self.__dict__.get("_dataset")
        if cached is not None and cached[0] == where:
            return cached[1]
        if not self.dataset_path:
            msg = f"step {self.name!r} (LoadDataFromDisk) needs dataset_path=..."
            raise ValueError(msg)
        import datasets

        if self.is_distiset:
            from distilabel_nb.distiset import Distiset

            loaded: Any = Distiset.load_from_disk(str(self.dataset_path),
                                                  keep_in_memory=self.keep_in_memory,
                                                  storage_options=self.storage_options)
            loaded = loaded[self.config or "default"]
        else:
            loaded = datasets.load_from_disk(str(self.dataset_path),
                                             keep_in_memory=self.keep_in_memory,
                                             storage_options=self.storage_options)
        if isinstance(loaded, datasets.DatasetDict):
            split = self.split or "train"
            if split not in loaded:
                msg = (f"step {self.name!r}: {self.dataset_path} has splits {list(loaded)}, "
                       f"not {split!r}; choose one with split=...")
                raise ValueError(msg)
            loaded = loaded[split]
        self.__dict__["_dataset"] = (where, loaded)
        return loaded

    def _rows(self) -> pa.Table:
        return arrow_of(self._loaded())

    def signature_fields(self) -> dict[str, Any]:
        description = super().signature_fields()
        table = self._rows()
        description["data"] = _data_line(table.num_rows, content_fingerprint(table))
        return description
