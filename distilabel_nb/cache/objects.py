"""JSON objects on a ``pyarrow.fs`` filesystem: written whole, read, listed, deleted.

What the object-store manifest is made of. On a shared folder a write goes to a
temporary name then is renamed (atomic); on an object store a PUT is atomic already.
Object stores are slow per call: many reads or deletions go sixteen at a time.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import posixpath
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pyarrow.fs as pafs

from distilabel_nb.cache.filesystems import CacheUnreachableError

__all__ = ["BAD", "ObjectFiles"]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: What ``ObjectFiles.read`` returns for an object that is not JSON.
BAD = object()


class ObjectFiles:
    """Small JSON objects below ``base`` on ``filesystem``."""

    def __init__(self, filesystem: pafs.FileSystem, base: str) -> None:
        self.fs = filesystem
        self._lock = threading.RLock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._local = isinstance(filesystem, pafs.LocalFileSystem)
        #: The store for messages: a store that does not answer raises
        #: ``CacheUnreachableError`` naming it (never taken for a damaged cache).
        self.where = base if self._local else f"{filesystem.type_name}://{base}"

    def map(self, func: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        """``func`` over ``items``, sixteen at a time (object stores are slow per call)."""
        items = list(items)
        if len(items) <= 1:
            return [func(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    16, thread_name_prefix="distilabel_nb:objectstore")
        return list(self._pool.map(func, items))

    def write(self, path: str, record: dict[str, Any]) -> None:
        try:
            self._put(path, json.dumps(record, default=str).encode())
        except OSError as error:
            if self._local:
                raise
            raise CacheUnreachableError(self.where, error, "write to") from error

    def _put(self, path: str, data: bytes) -> None:
        if self._local:  # a shared folder: write aside, then rename (atomic)
            self.fs.create_dir(posixpath.dirname(path), recursive=True)
            temp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            with self.fs.open_output_stream(temp) as out:
                out.write(data)
            self.fs.move(temp, path)
        else:  # an object store: a PUT is atomic, the object appears whole or not at all
            with self.fs.open_output_stream(path) as out:
                out.write(data)

    def read(self, path: str) -> Any:
        """The JSON in ``path``; None when missing; ``BAD`` when not JSON."""
        try:
            with self.fs.open_input_stream(path) as source:
                data = source.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            if self._local:
                return None
            raise CacheUnreachableError(self.where, error, "read") from error
        try:
            return json.loads(data)
        except ValueError:
            return BAD

    def delete(self, paths: Iterable[str]) -> None:
        def delete_one(path: str) -> None:
            with contextlib.suppress(FileNotFoundError, OSError):
                self.fs.delete_file(path)

        self.map(delete_one, paths)

    def children(self, folder: str) -> dict[str, pafs.FileInfo]:
        """The objects directly below ``folder``, by name (temporary files left out)."""
        selector = pafs.FileSelector(folder, allow_not_found=True, recursive=False)
        try:
            infos = self.fs.get_file_info(selector)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except OSError as error:
            if self._local:
                raise
            raise CacheUnreachableError(self.where, error, "list") from error
        return {posixpath.basename(i.path): i for i in infos
                if i.type == pafs.FileType.File and ".tmp-" not in i.path}

    def walk(self, folder: str) -> list[pafs.FileInfo]:
        """Every object below ``folder``, at any depth (one paginated LIST)."""
        selector = pafs.FileSelector(folder, allow_not_found=True, recursive=True)
        return [i for i in self.fs.get_file_info(selector)
                if i.type == pafs.FileType.File and ".tmp-" not in i.path]

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
