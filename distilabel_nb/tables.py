"""Small pyarrow helpers shared by steps, the store and the executor."""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

__all__ = ["concat", "conform", "empty_table", "rename_columns", "rows_to_table"]


def empty_table() -> pa.Table:
    return pa.table({})


def rows_to_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows as dicts -> Table; columns in first-seen order across all rows."""
    if not rows:
        return empty_table()
    names: dict[str, None] = {}
    for row in rows:
        for key in row:
            names.setdefault(key, None)
    columns = {name: _column([row.get(name) for row in rows]) for name in names}
    try:
        return pa.table(columns)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        bad = _first_mixed_column(columns)
        msg = (
            f"cannot store the rows as Arrow: column {bad!r} mixes value types ({error}); "
            "give each column one type (use None for missing values)"
        )
        raise TypeError(msg) from error


def _column(values: list[Any]) -> pa.Array | list[Any]:
    """A column of only ``str``, only ``int`` or only ``float`` values as the Arrow array
    pyarrow's conversion makes of it (string, int64, double; NaN a value, not a null),
    built from its buffers; any other column is returned as it is, for ``pa.table``.

    pyarrow's conversion of Python objects imports pandas on its first call (~0.3 s of
    every new process that loads rows, a third of a resumed run's fixed cost); and this
    is not slower on the columns steps produce.
    """
    kinds = set(map(type, values))
    if len(kinds) != 1:
        return values
    kind = kinds.pop()
    try:
        if kind is str:
            encoded = [value.encode() for value in values]  # lone surrogates raise, as in pyarrow
            offsets = array("i", itertools.accumulate(map(len, encoded), initial=0))
            if offsets.itemsize != 4:
                return values
            return pa.Array.from_buffers(pa.string(), len(values),
                                         [None, pa.py_buffer(offsets),
                                          pa.py_buffer(b"".join(encoded))])
        if kind is int:
            return pa.Array.from_buffers(pa.int64(), len(values),
                                         [None, pa.py_buffer(array("q", values))])
        if kind is float:
            return pa.Array.from_buffers(pa.float64(), len(values),
                                         [None, pa.py_buffer(array("d", values))])
    except (UnicodeEncodeError, OverflowError):  # not UTF-8, past 2 GB or past 64 bits
        return values
    return values


def _first_mixed_column(columns: dict[str, list[Any]]) -> str:
    for name, values in columns.items():
        try:
            pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return name
    return "?"


def rename_columns(table: pa.Table, mapping: Mapping[str, str]) -> pa.Table:
    """Rename the columns named in ``mapping`` (old -> new); others are kept."""
    if not mapping or not any(name in mapping for name in table.column_names):
        return table
    return table.rename_columns([mapping.get(name, name) for name in table.column_names])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly the fields of ``schema`` (missing ones as nulls)."""
    if table.schema.equals(schema):
        return table
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def unified_schema(tables: Sequence[pa.Table]) -> pa.Schema:
    schemas = [t.schema for t in tables if t.num_columns]
    if not schemas:
        return pa.schema([])
    return pa.unify_schemas(schemas, promote_options="permissive")


def concat_conformed(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate tables, all rows kept (empty ones too), under their unified schema."""
    schema = unified_schema(tables)
    return pa.concat_tables([conform(t, schema) for t in tables])


def concat(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate tables whose schemas may differ (null-typed or missing columns)."""
    tables = [t for t in tables if t.num_columns or t.num_rows]
    if not tables:
        return empty_table()
    if len(tables) == 1:
        return tables[0]
    schema = unified_schema(tables)
    return pa.concat_tables([conform(t, schema) for t in tables])
