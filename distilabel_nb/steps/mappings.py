"""``input_mappings`` / ``output_mappings`` applied as distilabel 1.5 applies them.

distilabel's ``Step.process_applying_mappings``: the step reads the mapped column under
its own input name (``input_mappings={"instruction": "response"}`` shows the ``response``
column to the step as ``instruction``; a column already named ``instruction`` is set
aside while the step runs and put back afterwards); in the rows passed on, every column
is renamed by ``output_mappings``, else back by ``input_mappings``, else kept, so the
mapped column keeps its own name (``response``). Done on Arrow tables, columns whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa

__all__ = ["map_input_columns", "map_inputs", "map_output_columns", "map_outputs"]


def map_input_columns(columns: Sequence[str], input_mappings: Mapping[str, str]
                      ) -> tuple[list[str], list[str]]:
    """The columns the step sees, and those set aside because a mapped column takes
    their name."""
    inverse = {data: own for own, data in input_mappings.items()}
    present = set(columns)
    aside = [c for c in columns if c in input_mappings and input_mappings[c] in present
             and input_mappings[c] != c]
    seen = [inverse.get(c, c) for c in columns if c not in aside]
    return list(dict.fromkeys(seen)), aside


def map_output_columns(columns: Sequence[str], input_mappings: Mapping[str, str],
                       output_mappings: Mapping[str, str], aside: Sequence[str] = ()
                       ) -> list[str]:
    """The names the step's output columns are passed on under (set-aside ones last)."""
    named = [output_mappings.get(c) or input_mappings.get(c) or c for c in columns]
    return list(dict.fromkeys([*named, *aside]))


def map_inputs(tables: Sequence[pa.Table], input_mappings: Mapping[str, str]
               ) -> tuple[list[pa.Table], pa.Table | None]:
    """The tables as the step reads them, and the set-aside columns (one input only, as
    distilabel)."""
    if not input_mappings:
        return list(tables), None
    inverse = {data: own for own, data in input_mappings.items()}
    mapped, aside_table = [], None
    for table in tables:
        _, aside = map_input_columns(table.column_names, input_mappings)
        if aside and len(tables) == 1:
            aside_table = table.select(aside)
        kept = table.drop_columns(aside) if aside else table
        mapped.append(kept.rename_columns([inverse.get(c, c) for c in kept.column_names]))
    return mapped, aside_table


def map_outputs(table: pa.Table, input_mappings: Mapping[str, str],
                output_mappings: Mapping[str, str], aside: pa.Table | None = None
                ) -> pa.Table:
    """The step's output as passed on: renamed, set-aside columns put back."""
    if not input_mappings and not output_mappings:
        return table
    columns: dict[str, pa.ChunkedArray] = {}
    for name in table.column_names:
        renamed = output_mappings.get(name) or input_mappings.get(name) or name
        columns[renamed] = table.column(name)
    if aside is not None and aside.num_rows and table.num_rows:
        # One output row per input row, or several (num_generations): row i restores
        # input row i % n, as distilabel does.
        n = aside.num_rows
        restore = aside if table.num_rows == n else aside.take(
            pa.array([i % n for i in range(table.num_rows)]))
        for name in aside.column_names:
            columns.setdefault(name, restore.column(name))
    if not columns:
        return table
    return pa.table(columns)
