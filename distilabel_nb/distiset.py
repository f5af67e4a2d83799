"""The result of a run, as distilabel's ``Distiset``.

A dict of config name -> ``datasets.DatasetDict`` with a ``train`` split: one config per
leaf step, ``"default"`` when there is a single leaf. Each split is a ``datasets.Dataset``
built zero-copy over the cached Arrow table (``InMemoryTable`` wraps the same buffers), and
``datasets`` is imported only when a config is first read: a run never imports it.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from distilabel_nb.dataset_card import DISTISET_CONFIG_FOLDER, PIPELINE_CONFIG_FILENAME

__all__ = ["DISTISET_CONFIG_FOLDER", "PIPELINE_CONFIG_FILENAME", "Distiset"]

#: The folder ``save_to_disk`` writes the card and ``pipeline.yaml`` into, as distilabel.
_ARTIFACTS_FOLDER = "artifacts"


class _Pending:
    """A config not read yet: its splits as Arrow tables."""

    __slots__ = ("fingerprint", "splits")

    def __init__(self, splits: Mapping[str, pa.Table], fingerprint: str | None) -> None:
        self.splits = dict(splits)
        self.fingerprint = fingerprint

    def build(self) -> Any:
        import datasets
        from datasets.fingerprint import generate_random_fingerprint
        from datasets.table import InMemoryTable

        # A fingerprint given up front: datasets would otherwise hash the whole table.
        base = self.fingerprint or generate_random_fingerprint()
        return datasets.DatasetDict({
            split: datasets.Dataset(InMemoryTable(table), split=datasets.NamedSplit(split),
                                    fingerprint=f"{base[:24]}-{split}")
            for split, table in self.splits.items()})


def _pending(value: Any) -> Any:
    """Arrow tables (a table, or a dict of split -> table) wait to be read."""
    if isinstance(value, pa.Table):
        return _Pending({"train": value}, None)
    if (type(value) is dict and value
            and all(isinstance(table, pa.Table) for table in value.values())):
        return _Pending(value, None)
    return value


def _columns_repr(table: pa.Table) -> str:
    return (f"Dataset({{\n    features: {table.column_names},\n"
            f"    num_rows: {table.num_rows}\n}})")


class Distiset(dict):
    """One ``datasets.DatasetDict`` per leaf step, as distilabel's ``Distiset``.

    ``distiset["default"]["train"]`` is a ``datasets.Dataset``: ``[i]`` is a row,
    iterating yields rows, ``to_list()`` and ``to_pandas()`` as in ``datasets``.
    """

    _pipeline_path: pathlib.Path | None = None
    _pipeline_config: dict[str, Any] | None = None
    #: Makes ``pipeline_config`` when first read (a run does not dump its pipeline).
    _pipeline_config_factory: Callable[[], dict[str, Any]] | None = None
    _artifacts_path: pathlib.Path | None = None
    _log_filename_path: pathlib.Path | None = None
    _citations: list[str] | None = None

    def __init__(self, configs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__()
        for name, value in {**dict(configs or {}), **kwargs}.items():
            self[name] = value

    @classmethod
    def from_tables(cls, tables: Mapping[str, pa.Table],
                    fingerprints: Mapping[str, str] | None = None) -> Distiset:
        """A Distiset over Arrow tables, one ``train`` split per config (nothing copied)."""
        distiset = cls()
        for name, table in tables.items():
            dict.__setitem__(distiset, name,
                             _Pending({"train": table}, (fingerprints or {}).get(name)))
        return distiset

    # -- a dict whose values are built when first read --------------------------------
    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _pending(value))

    def __getitem__(self, name: str) -> Any:
        value = super().__getitem__(name)
        if isinstance(value, _Pending):
            value = value.build()
            super().__setitem__(name, value)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def values(self) -> Any:
        self._build_all()
        return super().values()

    def items(self) -> Any:
        self._build_all()
        return super().items()

    def pop(self, name: str, *default: Any) -> Any:
        if name not in self:
            return super().pop(name, *default)
        value = self[name]
        super().pop(name)
        return value

    def copy(self) -> Distiset:
        copied = type(self)()
        for name in self:
            dict.__setitem__(copied, name, dict.__getitem__(self, name))
        copied.__dict__.update(self.__dict__)
        return copied

    def __reduce__(self) -> Any:
        return (type(self), (dict(self.items()),), dict(self.__dict__))

    def _build_all(self) -> None:
        for name in list(self):
            self.__getitem__(name)  # reading builds the DatasetDict

    def arrow_table(self, name: str, split: str = "train") -> pa.Table:
        """The Arrow table behind a split, without importing ``datasets`` if unread."""
        value = super().__getitem__(name)
        if isinstance(value, _Pending):
            return value.splits[split]
        dataset = value[split] if isinstance(value, dict) else value  # or a bare Dataset
        return dataset.data.table

    def __iter__(self) -> Iterator[str]:
        return super().__iter__()

    # -- what distilabel's Distiset carries -------------------------------------------
    @property
    def pipeline_path(self) -> pathlib.Path | None:
        """The ``pipeline.yaml`` this Distiset was loaded with (None for a fresh run)."""
        return self._pipeline_path

    @pipeline_path.setter
    def pipeline_path(self, path: str | os.PathLike[str]) -> None:
        self._pipeline_path = pathlib.Path(path)

    @property
    def pipeline_config(self) -> dict[str, Any] | None:
        """The pipeline that made it, as ``Pipeline.dump()`` (written as pipeline.yaml)."""
        if self._pipeline_config is None and self._pipeline_config_factory is not None:
            self._pipeline_config = self._pipeline_config_factory()
        if self._pipeline_config is None and self._pipeline_path is not None:
            import yaml

            self._pipeline_config = yaml.safe_load(self._pipeline_path.read_text("utf-8"))
        return self._pipeline_config

    @pipeline_config.setter
    def pipeline_config(self, config: dict[str, Any] | Callable[[], dict[str, Any]] | None
                        ) -> None:
        """A dump, or a function making it when first read (dumping a loader's data
        costs as much as a full hit: a run hands over ``Pipeline.dump`` itself)."""
        if callable(config):
            self._pipeline_config, self._pipeline_config_factory = None, config
        else:
            self._pipeline_config, self._pipeline_config_factory = config, None

    @property
    def artifacts_path(self) -> pathlib.Path | None:
        return self._artifacts_path

    @artifacts_path.setter
    def artifacts_path(self, path: str | os.PathLike[str]) -> None:
        self._artifacts_path = pathlib.Path(path)

    @property
    def log_filename_path(self) -> pathlib.Path | None:
        return self._log_filename_path

    @log_filename_path.setter
    def log_filename_path(self, path: str | os.PathLike[str]) -> None:
        self._log_filename_path = pathlib.Path(path)

    @property
    def citations(self) -> list[str] | None:
        return self._citations

    @citations.setter
    def citations(self, citations: list[str]) -> None:
        self._citations = sorted(set(citations))

    def pipeline_yaml(self) -> str | None:
        """The pipeline's ``pipeline.yaml`` text, as distilabel writes it."""
        config = self.pipeline_config
        if config is None:
            return None
        import yaml

        return str(yaml.dump(config, default_flow_style=False, sort_keys=False))

    # -- ours: pandas per config ------------------------------------------------------
    def to_pandas(self) -> dict[str, Any]:
        """Each config's ``train`` split as a pandas DataFrame (not in distilabel)."""
        return {name: self.arrow_table(name).to_pandas() for name in self}

    def train_test_split(self, train_size: float, shuffle: bool = True,
                         seed: int | None = None) -> Distiset:
        """Each config becomes a DatasetDict with random ``train`` and ``test`` splits."""
        if not 0 < train_size < 1:
            msg = f"train_size must be a float between 0 and 1, got {train_size!r}"
            raise ValueError(msg)
        for name in list(self):
            self[name] = self[name]["train"].train_test_split(
                train_size=train_size, shuffle=shuffle, seed=seed)
        return self

    # -- disk and hub -----------------------------------------------------------------
    def save_to_disk(self, distiset_path: str | os.PathLike[str],
                     max_shard_size: str | int | None = None, num_shards: int | None = None,
                     num_proc: int | None = None, storage_options: dict[str, Any] | None = None,
                     save_card: bool = True, save_pipeline_config: bool = True,
                     save_pipeline_log: bool = True) -> None:
        """Write every config with ``DatasetDict.save_to_disk`` to ``<path>/<config>``,
        and the dataset card and ``pipeline.yaml`` to ``<path>/distiset_configs``, as
        distilabel does; ``Distiset.load_from_disk`` reads it back."""
        from distilabel_nb.dataset_card import save_extras

        path = str(distiset_path)
        for name, dataset in self.items():
            dataset.save_to_disk(f"{path}/{name}", max_shard_size=max_shard_size,
                                 num_shards=num_shards, num_proc=num_proc,
                                 storage_options=storage_options)
        save_extras(self, path, storage_options, save_card=save_card,
                    save_pipeline_config=save_pipeline_config,
                    save_pipeline_log=save_pipeline_log)

    @classmethod
    def load_from_disk(cls, distiset_path: str | os.PathLike[str],
                       keep_in_memory: bool | None = None,
                       storage_options: dict[str, Any] | None = None,
                       download_dir: str | os.PathLike[str] | None = None) -> Distiset:
        """Read a Distiset written by ``save_to_disk`` (a folder or an fsspec URI)."""
        import datasets
        import fsspec
        from datasets.filesystems import is_remote_filesystem

        fs, _, [local] = fsspec.get_fs_token_paths(str(distiset_path),
                                                   storage_options=storage_options)
        if not fs.isdir(local):
            msg = (f"Distiset.load_from_disk: {str(distiset_path)!r} is not a folder; give the "
                   "folder Distiset.save_to_disk wrote")
            raise FileNotFoundError(msg)
        if is_remote_filesystem(fs):
            target = pathlib.Path(download_dir) if download_dir else pathlib.Path(
                datasets.Dataset._build_local_temp_path(local))
            fs.download(local, target.as_posix(), recursive=True)
            local = target.as_posix()
        distiset = cls()
        root = pathlib.Path(local)
        for folder in sorted(root.iterdir()):
            if folder.name == _ARTIFACTS_FOLDER:
                distiset.artifacts_path = folder
            elif folder.name == DISTISET_CONFIG_FOLDER:
                if (folder / PIPELINE_CONFIG_FILENAME).exists():
                    distiset.pipeline_path = folder / PIPELINE_CONFIG_FILENAME
                if (folder / "pipeline.log").exists():
                    distiset.log_filename_path = folder / "pipeline.log"
            elif folder.is_dir():
                distiset[folder.name] = datasets.load_from_disk(
                    str(folder), keep_in_memory=keep_in_memory)
        return distiset

    def push_to_hub(self, repo_id: str, private: bool = False, token: str | None = None,
                    generate_card: bool = True, include_script: bool = False,
                    **kwargs: Any) -> None:
        """Push each config to ``repo_id`` (``config_name=`` the config), then the dataset
        card and ``pipeline.yaml``, as distilabel does. ``token`` defaults to ``$HF_TOKEN``
        or the ``huggingface-cli login`` token; ``kwargs`` go to ``DatasetDict.push_to_hub``."""
        from distilabel_nb.dataset_card import push_extras, resolve_token

        token = resolve_token(token)
        for name, dataset in self.items():
            dataset.push_to_hub(repo_id, config_name=name, private=private, token=token,
                                **kwargs)
        push_extras(self, repo_id, token, generate_card=generate_card,
                    include_script=include_script)

    def __repr__(self) -> str:
        parts = []
        for name in self:
            value = dict.__getitem__(self, name)
            if isinstance(value, _Pending):  # as DatasetDict's repr, without importing it
                splits = "\n".join(f"{split}: {_columns_repr(table)}"
                                   for split, table in value.splits.items())
                text = "DatasetDict({\n" + re.sub(r"^", " " * 4, splits, flags=re.M) + "\n})"
            else:
                text = repr(value)
            parts.append(f"{name}: {text}")
        body = re.sub(r"^", " " * 4, "\n".join(parts), flags=re.M)
        return f"Distiset({{\n{body}\n}})"
