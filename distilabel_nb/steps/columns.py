"""Column steps: keep, expand lists into rows, merge aligned branches, group and merge
columns (``GroupColumns``, ``MergeColumns`` as distilabel's)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from distilabel_nb.steps.base import Step

__all__ = ["CombineOutputs", "ExpandColumns", "GroupColumns", "KeepColumns", "MergeColumns"]


class KeepColumns(Step):
    """Keep only ``columns``, in that order."""

    columns: list[str] = []

    @property
    def inputs(self) -> list[str]:
        return list(self.columns)

    def output_columns(self, available: list[str]) -> list[str]:
        return list(self.columns)

    def process_arrow(self, *tables: pa.Table) -> pa.Table:
        return tables[0].select(self.columns)


class ExpandColumns(Step):
    """One row per element of list columns (``columns``: a list, or a dict old -> new)."""

    columns: Any = []

    def _mapping(self) -> dict[str, str]:
        if isinstance(self.columns, dict):
            return dict(self.columns)
        return {c: c for c in self.columns}

    @property
    def inputs(self) -> list[str]:
        return list(self._mapping())

    def output_columns(self, available: list[str]) -> list[str]:
        mapping = self._mapping()
        return [c for c in available if c not in mapping or mapping[c] == c] + [
            new for old, new in mapping.items() if new != old]

    def process_arrow(self, *tables: pa.Table) -> pa.Table:
        import pyarrow.compute as pc

        table = tables[0]
        mapping = self._mapping()
        if table.num_rows == 0:
            return table
        first = table.column(next(iter(mapping)))
        lengths = pc.fill_null(pc.list_value_length(first), 0)
        for name in mapping:
            other = pc.fill_null(pc.list_value_length(table.column(name)), 0)
            if not pc.all(pc.equal(lengths, other)).as_py():
                msg = (f"ExpandColumns: the lists in {name!r} and {next(iter(mapping))!r} "
                       "differ in length")
                raise ValueError(msg)
        parents = pc.list_parent_indices(first)
        columns: dict[str, pa.Array] = {}
        for name in table.column_names:
            if name in mapping:
                columns[mapping[name]] = pc.list_flatten(table.column(name))
            else:
                columns[name] = table.column(name).take(parents)
        return pa.table(columns)


class CombineOutputs(Step):
    """Merge the outputs of several branches row by row (same row counts, aligned)."""

    def output_columns(self, available: list[str]) -> list[str]:
        return available

    def process_arrow(self, *tables: pa.Table) -> pa.Table:
        counts = {t.num_rows for t in tables if t.num_columns}
        if len(counts) > 1:
            msg = f"CombineOutputs: the branches have different row counts {sorted(counts)}"
            raise ValueError(msg)
        columns: dict[str, Any] = {}
        for table in tables:
            for name in table.column_names:
                columns[name] = table.column(name)
        return pa.table(columns) if columns else pa.table({})


class GroupColumns(Step):
    """Rows of several branches side by side: each of ``columns`` becomes a list of the
    branches' values (``grouped_<column>``, or ``output_columns``); the other columns
    come from the branches, the last one winning, as distilabel's ``GroupColumns``."""

    columns: list[str] = []
    output_columns: list[str] | None = None

    @property
    def inputs(self) -> list[str]:
        return list(self.columns)

    @property
    def outputs(self) -> list[str]:
        return list(self.output_columns or [f"grouped_{c}" for c in self.columns])

    def process(self, *inputs: list[dict[str, Any]]) -> Any:
        if self.output_columns is not None and len(self.output_columns) != len(self.columns):
            msg = (f"step {self.name!r} (GroupColumns): output_columns has "
                   f"{len(self.output_columns)} names for {len(self.columns)} columns; give "
                   "one name per column")
            raise ValueError(msg)
        grouped = dict(zip(self.columns, self.outputs, strict=True))
        rows = []
        for parts in zip(*inputs, strict=False):
            row: dict[str, Any] = {}
            for part in parts:
                for key, value in part.items():
                    if key in grouped:
                        row.setdefault(grouped[key], []).append(value)
                    elif key == "distilabel_metadata" and isinstance(value, dict):
                        row.setdefault(key, {}).update(value)
                    else:
                        row[key] = value
            rows.append(row)
        yield rows


class MergeColumns(Step):
    """``columns`` of each row merged into one list column (``output_column``, else
    ``merged_column``); lists are concatenated, as distilabel's ``MergeColumns``."""

    columns: list[str] = []
    output_column: str | None = None

    @property
    def inputs(self) -> list[str]:
        return list(self.columns)

    @property
    def outputs(self) -> list[str]:
        return [self.output_column or "merged_column"]

    def process(self, *inputs: list[dict[str, Any]]) -> Any:
        target = self.outputs[0]
        rows = []
        for row in inputs[0]:
            merged = dict(row)
            combined: list[Any] = []
            for key in self.columns:
                value = merged.pop(key)
                combined += value if isinstance(value, list) else [value]
            merged[target] = combined
            rows.append(merged)
        yield rows
