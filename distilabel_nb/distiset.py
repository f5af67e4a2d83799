"""The result of a run: config name -> {"train": pyarrow.Table}, as distilabel's Distiset."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pyarrow as pa

__all__ = ["Distiset"]


class Distiset(dict[str, dict[str, pa.Table]]):
    """One config per leaf step (``"default"`` when there is a single leaf)."""

    def to_pandas(self) -> dict[str, Any]:
        """Each config's train split as a pandas DataFrame (pandas must be installed)."""
        return {name: splits["train"].to_pandas() for name, splits in self.items()}

    def save_to_disk(self, path: str | os.PathLike[str]) -> pathlib.Path:
        """Write ``<path>/<config>/train.parquet`` for every config."""
        import pyarrow.parquet as pq

        root = pathlib.Path(path)
        for name, splits in self.items():
            for split, table in splits.items():
                folder = root / name
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, folder / f"{split}.parquet")
        return root

    def to_datasets(self) -> dict[str, Any]:
        """Each config as a ``datasets.DatasetDict`` (needs the ``datasets`` package)."""
        try:
            import datasets
        except ImportError as error:
            msg = "to_datasets() needs the `datasets` package: pip install datasets"
            raise ImportError(msg) from error
        return {
            name: datasets.DatasetDict(
                {split: datasets.Dataset(table) for split, table in splits.items()})
            for name, splits in self.items()
        }

    def __repr__(self) -> str:
        parts = [f"{name}: {splits['train'].num_rows:,} rows x {splits['train'].num_columns} "
                 f"columns {splits['train'].column_names}" for name, splits in self.items()]
        return "Distiset(" + "; ".join(parts) + ")"
