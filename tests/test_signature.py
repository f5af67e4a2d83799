from __future__ import annotations

import enum
import math
import pathlib

import pyarrow as pa
import pytest

from distilabel_nb.cache.signature import (
    UnhashableValueError,
    canonical,
    encode,
    hash_bytes,
    hash_value,
)


def test_encoding_is_unambiguous_where_a_join_of_strings_is_not() -> None:
    assert hash_value(["a-b"]) != hash_value(["a", "b"])
    assert hash_value({"a": "b-c"}) != hash_value({"a-b": "c"})
    assert encode(("a-b",)) != encode(("a", "b"))


def test_types_are_part_of_the_value() -> None:
    values = [1, "1", 1.0, True, None, [1], {"1": 1}]
    assert len({hash_value(v) for v in values}) == len(values)


def test_dict_order_does_not_matter() -> None:
    assert hash_value({"a": 1, "b": [1, 2]}) == hash_value({"b": [1, 2], "a": 1})
    assert encode({1: "x", 2: "y"}) == encode({2: "y", 1: "x"})


def test_values_orjson_cannot_take_use_the_tagged_encoding() -> None:
    class Color(enum.Enum):
        RED = "red"

    assert hash_value({"path": pathlib.Path("/a")}) != hash_value({"path": "/a"})
    assert hash_value({1: Color.RED}) == hash_value({1: Color.RED})
    assert hash_value({frozenset({1, 2})}) == hash_value({frozenset({2, 1})})


def test_tables_hash_by_content_not_chunking() -> None:
    one = pa.table({"a": [1, 2, 3]})
    two = pa.concat_tables([one.slice(0, 1), one.slice(1)])
    assert hash_value({"t": one}) == hash_value({"t": two})
    assert hash_value({"t": one}) != hash_value({"t": pa.table({"a": [1, 2, 4]})})


def test_objects_without_a_deterministic_encoding_are_refused_clearly() -> None:
    class Opaque:
        pass

    with pytest.raises(UnhashableValueError, match=r"cannot hash a value of type .*Opaque"):
        hash_value({"x": Opaque()})


@pytest.mark.parametrize("n", [1024, 1025, 2048, 2049, 5000])
def test_long_lists_hash_as_their_whole_encoding(n: int) -> None:
    """Long lists (a loader's rows) are encoded piece by piece: same digest as one piece."""
    rows = [{"text": f"row {i}", "n": i, "x": i / 3, "none": None} for i in range(n)]
    assert hash_value(rows) == hash_bytes(canonical(rows))
    numbers = list(range(n))
    assert hash_value(numbers) == hash_bytes(canonical(numbers))


def test_long_lists_keep_nan_apart_from_none_in_any_piece() -> None:
    rows = [{"x": None} for _ in range(3000)]
    nan_rows = [dict(row) for row in rows]
    nan_rows[2500]["x"] = float("nan")
    inf_rows = [dict(row) for row in rows]
    inf_rows[10]["x"] = float("inf")
    assert len({hash_value(rows), hash_value(nan_rows), hash_value(inf_rows)}) == 3
    assert hash_value(nan_rows) == hash_bytes(canonical(nan_rows))
    mixed = [*range(2000), b"bytes"]  # the tagged encoding, found in the second piece
    assert hash_value(mixed) == hash_bytes(canonical(mixed))


def test_dates_are_not_their_text_and_hash_beside_none() -> None:
    """orjson writes datetimes as ISO strings: they take the tagged encoding instead, so a
    date and its text differ, and a date next to a None is no error."""
    import datetime

    moment = datetime.datetime(2020, 1, 1)
    values = [moment, moment.isoformat(), moment.date(), "2020-01-01",
              moment.replace(tzinfo=datetime.timezone.utc), moment.replace(microsecond=1)]
    assert len({hash_value({"d": v}) for v in values}) == len(values)
    assert hash_value([{"d": moment, "x": None}]) != hash_value([{"d": moment, "x": math.nan}])
    rows = [{"d": moment, "i": i} for i in range(2000)]  # a loader's rows, piece by piece
    assert hash_value(rows) != hash_value([{"d": moment.isoformat(), "i": i}
                                           for i in range(2000)])
