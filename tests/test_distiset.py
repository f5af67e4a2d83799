from __future__ import annotations

import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

from distilabel_nb import Distiset


def test_save_to_disk_writes_one_parquet_per_config(tmp_path: pathlib.Path) -> None:
    distiset = Distiset({"a": {"train": pa.table({"x": [1, 2]})},
                         "b": {"train": pa.table({"y": ["z"]})}})
    root = distiset.save_to_disk(tmp_path / "out")
    assert pq.read_table(root / "a" / "train.parquet").to_pylist() == [{"x": 1}, {"x": 2}]
    assert pq.read_table(root / "b" / "train.parquet").num_rows == 1
    assert distiset.to_pandas()["a"]["x"].tolist() == [1, 2]
    assert "a: 2 rows" in repr(distiset)
