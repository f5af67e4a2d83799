"""Loaders: generator steps over in-memory rows and over files.

Their data enters the cache key by content: rows by value, files by a hash of their
bytes, so an edited file is never a stale hit.
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Iterator
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import SkipValidation

from distilabel_nb.cache.signature import hash_bytes, hash_value
from distilabel_nb.steps.base import GeneratorStep
from distilabel_nb.tables import rows_to_table

__all__ = ["LoadDataFromDicts", "LoadDataFromFileSystem", "LoadDataFromFiles"]

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "json", ".json": "json",
            ".ndjson": "json", ".csv": "csv"}


class LoadDataFromDicts(GeneratorStep):
    """Rows given as a list of dicts, yielded in batches of ``batch_size``."""

    data: SkipValidation[list[dict[str, Any]]] = []  # rows by reference: no copy
    signature_skip: ClassVar[frozenset[str]] = frozenset({"data"})

    @property
    def outputs(self) -> list[str]:
        if not self.data:
            return []
        first = list(self.data[0])
        later = set().union(*self.data) - set(first)  # C speed, even for millions of rows
        return first + sorted(later)

    def plan_rows(self) -> pa.Table:
        """Every row, cheaply and without side effects: a plan estimates from them."""
        return self._table()

    def _table(self) -> pa.Table:
        """The rows as a table, converted once per content of ``data``.

        The conversion is kept with the content hash ``signature_fields`` computed (every
        plan does, before any batch is generated), never with the list's identity: a list
        edited in place must give its new rows, not the table of the old ones.
        """
        fingerprint, table = self.__dict__.get("_table_cache") or (None, None)
        if table is not None:
            return table
        if "pandas" not in sys.modules and len(self.data) <= 20_000:
            table = _rows_via_json(self.data)  # saves a ~0.5 s pandas import on small data
        else:
            table = rows_to_table(self.data)
        if fingerprint is not None:
            self.__dict__["_table_cache"] = (fingerprint, table)
        return table

    def signature_fields(self) -> dict[str, Any]:
        description = super().signature_fields()
        fingerprint = hash_value(self.data)
        cached = self.__dict__.get("_table_cache")
        if cached is None or cached[0] != fingerprint:
            self.__dict__["_table_cache"] = (fingerprint, None)  # the table is of other rows
        description["data"] = f"{len(self.data):,} rows, content {fingerprint[:12]}"
        return description

    def total_rows(self) -> int:
        return len(self.data)

    def process_arrow(self) -> Iterator[pa.Table]:
        table = self._table()
        size = max(1, int(self.batch_size))
        for start in range(0, table.num_rows, size):
            yield table.slice(start, size)


def _rows_via_json(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows -> Table through Arrow's JSON reader, which (unlike pyarrow's conversion of
    Python objects) does not import pandas; rows that JSON cannot carry exactly (bytes,
    dates, non-string keys, changing types) take the ordinary conversion."""
    import orjson
    import pyarrow.json as pajson

    if not rows:
        return rows_to_table(rows)
    # Dates, dataclasses and subclasses of str, int, dict... are not JSON: orjson would
    # write them as strings or objects, and the reader would not give them back.
    exotic = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
              | orjson.OPT_PASSTHROUGH_SUBCLASS)
    try:
        lines = b"\n".join(orjson.dumps(row, option=exotic) for row in rows)
        table = pajson.read_json(pa.BufferReader(lines))
    except (TypeError, orjson.JSONEncodeError, pa.ArrowInvalid):
        return rows_to_table(rows)
    first = list(rows[0])
    if table.num_rows != len(rows) or table.column_names[: len(first)] != first \
            or _has_timestamp(table.schema.types):  # strings the reader took for times
        return rows_to_table(rows)
    return table


def _has_timestamp(types: list[pa.DataType]) -> bool:
    for kind in types:
        if pa.types.is_timestamp(kind):
            return True
        if pa.types.is_struct(kind) and _has_timestamp([field.type for field in kind]):
            return True
        if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) \
                and _has_timestamp([kind.value_type]):
            return True
    return False


def _file_hash(path: pathlib.Path) -> str:
    import xxhash

    digest = xxhash.xxh3_128()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LoadDataFromFiles(GeneratorStep):
    """Rows from Parquet, JSON Lines or CSV files (a file, a folder or a list of files)."""

    data_files: Any = None
    format: str | None = None
    num_examples: int | None = None
    signature_skip: ClassVar[frozenset[str]] = frozenset({"data_files"})

    def _paths(self) -> list[pathlib.Path]:
        given = self.data_files if isinstance(self.data_files, list) else [self.data_files]
        paths: list[pathlib.Path] = []
        for item in given:
            path = pathlib.Path(os.fspath(item)).expanduser()
            if path.is_dir():
                paths += sorted(p for p in path.rglob("*") if p.suffix.lower() in _FORMATS)
            elif path.exists():
                paths.append(path)
            else:
                msg = f"LoadDataFromFiles: {path} does not exist"
                raise FileNotFoundError(msg)
        if not paths:
            msg = f"LoadDataFromFiles: no .parquet/.jsonl/.csv files in {self.data_files!r}"
            raise FileNotFoundError(msg)
        return paths

    def _given_format(self) -> str | None:
        return self.format

    def _format(self, path: pathlib.Path) -> str:
        fmt = self._given_format() or _FORMATS.get(path.suffix.lower())
        if fmt not in ("parquet", "json", "jsonl", "csv"):
            msg = (f"LoadDataFromFiles: cannot tell the format of {path.name}; pass "
                   "format='parquet' | 'jsonl' | 'csv'")
            raise ValueError(msg)
        return "json" if fmt == "jsonl" else fmt

    def _batches(self, path: pathlib.Path) -> Iterator[pa.RecordBatch]:
        """The file's rows in batches, streamed where the format allows."""
        fmt = self._format(path)
        size = max(1, int(self.batch_size))
        if fmt == "parquet":
            import pyarrow.parquet as pq

            yield from pq.ParquetFile(path).iter_batches(batch_size=size)
        elif fmt == "csv":
            import pyarrow.csv as pacsv

            for batch in pacsv.open_csv(path):
                for start in range(0, batch.num_rows, size):
                    yield batch.slice(start, size)
        else:
            import pyarrow.json as pajson

            yield from pajson.read_json(path).to_batches(max_chunksize=size)

    def signature_fields(self) -> dict[str, Any]:
        description = super().signature_fields()
        description["data_files"] = [str(p) for p in self._paths()]
        description["data"] = hash_bytes(
            b"".join(_file_hash(p).encode() for p in self._paths()))[:16]
        return description

    @property
    def outputs(self) -> list[str]:
        try:
            first = next(self._batches(self._paths()[0]), None)
        except (OSError, ValueError):
            return []
        return first.schema.names if first is not None else []

    def process_arrow(self) -> Iterator[pa.Table]:
        remaining = self.num_examples
        for path in self._paths():
            for batch in self._batches(path):
                if remaining is not None:
                    batch = batch.slice(0, remaining)
                    remaining -= batch.num_rows
                if batch.num_rows:
                    yield pa.Table.from_batches([batch])
                if remaining is not None and remaining <= 0:
                    return


class LoadDataFromFileSystem(LoadDataFromFiles):
    """distilabel's name and parameters for ``LoadDataFromFiles``: ``data_files`` (a file,
    a folder or a list), ``filetype`` ("json", "jsonl", "parquet", "csv"; else from the
    extension), ``num_examples``. Local files; keyed by their content."""

    filetype: str | None = None
    split: str = "train"

    def _given_format(self) -> str | None:
        return self.format or self.filetype
