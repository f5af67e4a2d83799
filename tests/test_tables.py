"""rows_to_table: columns of one plain type are built from buffers, exactly as pyarrow's
conversion of Python objects builds them (without its pandas import)."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distilabel_nb.tables import rows_to_table

plain = (st.lists(st.text(), min_size=1, max_size=20)
         | st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=20)
         | st.lists(st.floats(), min_size=1, max_size=20))


def _as_pyarrow_does(rows: list[dict[str, Any]]) -> pa.Table:
    names = list(dict.fromkeys(name for row in rows for name in row))
    return pa.table({name: [row.get(name) for row in rows] for name in names})


def _same(a: pa.Table, b: pa.Table) -> bool:
    def canonical(value: Any) -> Any:  # NaN equals NaN here, and -0.0 stays apart from 0.0
        return ("nan",) if isinstance(value, float) and math.isnan(value) else (
            value, math.copysign(1, value) if isinstance(value, float) else None)

    rows = [[canonical(v) for v in row.values()] for row in a.to_pylist()]
    other = [[canonical(v) for v in row.values()] for row in b.to_pylist()]
    return a.schema == b.schema and rows == other


@settings(max_examples=80)
@given(plain)
def test_plain_columns_are_what_pyarrow_makes_of_them(values: list[Any]) -> None:
    rows = [{"v": value, "i": i} for i, value in enumerate(values)]
    table = rows_to_table(rows)
    table.validate(full=True)
    assert _same(table, _as_pyarrow_does(rows))


@pytest.mark.parametrize("values", [
    [True, False], [1, 2.5], ["x", None], [[1], [2, 3]], [{"k": 1}], [b"x", b""],
    [float("nan"), -0.0, math.inf], ["héllo ✓ 𝄞", ""], [2**63 - 1, -(2**63)],
])
def test_other_columns_convert_as_before(values: list[Any]) -> None:
    rows = [{"v": value} for value in values]
    assert _same(rows_to_table(rows), _as_pyarrow_does(rows))


def test_loading_rows_does_not_import_pandas() -> None:
    code = ("import sys; from distilabel_nb.tables import rows_to_table; "
            "rows_to_table([{'t': str(i), 'n': i, 'x': i / 2} for i in range(50_000)]); "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
