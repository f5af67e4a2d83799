"""Arrow IPC segment files: several batches of one step's output per file.

A segment holds consecutive batches as record batches of one IPC file, compressed with
zstd (lz4 where zstd is missing). Files are written under a temporary name and renamed,
through ``pyarrow.fs`` so another filesystem can take the local one's place. Reads verify
the xxh3 checksum of the whole file before decoding anything.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import os
import pathlib
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import xxhash

from distilabel_nb.cache.layout import private_dir
from distilabel_nb.tables import concat_conformed

__all__ = ["CacheFullError", "CorruptSegmentError", "SegmentFile", "SegmentStore"]

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


class CacheFullError(OSError):
    """The disk holding the cache is full; nothing half-written was kept."""

    def __init__(self, path: str, error: OSError) -> None:
        super().__init__(
            error.errno,
            f"no space left to write the cache file {path} ({error.strerror or error}); "
            "finished batches are kept: free some space (distilabel-nb cache gc --max-size "
            "...) or choose another cache_dir, then run again to resume",
        )
        self.path = path


class CorruptSegmentError(Exception):
    """A segment file is missing, truncated or does not match its checksum."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"cache file {path} is unusable: {why}")
        self.path = path
        self.why = why


@dataclasses.dataclass(frozen=True)
class SegmentFile:
    path: str
    nbytes: int
    checksum: str


def _compression() -> str | None:
    for codec in ("zstd", "lz4"):
        if pa.Codec.is_available(codec):
            return codec
    return None


_COMPRESSION = _compression()


class _DecodedCache:
    """Decoded segments shared by every store of the process, up to a byte budget.

    An entry is served only while the file's size and modification time are unchanged,
    so a file damaged or removed behind our back is read (and caught) again. A notebook
    that re-runs a cell gets its hit from memory.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self.entries: collections.OrderedDict[tuple[str, str], tuple[Any, pa.Table]] = (
            collections.OrderedDict())
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str], stamp: Any) -> pa.Table | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or entry[0] != stamp:
                return None
            self.entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple[str, str], stamp: Any, table: pa.Table) -> None:
        size = table.get_total_buffer_size()
        if size > self.budget // 4:
            return
        with self.lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.used -= old[1].get_total_buffer_size()
            self.entries[key] = (stamp, table)
            self.used += size
            while self.used > self.budget and self.entries:
                _, (_, dropped) = self.entries.popitem(last=False)
                self.used -= dropped.get_total_buffer_size()

    def forget(self, path: str) -> None:
        with self.lock:
            for key in [k for k in self.entries if k[0] == path]:
                self.used -= self.entries.pop(key)[1].get_total_buffer_size()


_DECODED = _DecodedCache(int(os.environ.get("DISTILABEL_NB_MEMORY_CACHE_MB", "256")) << 20)


class SegmentStore:
    """Reads and writes segment files below ``base`` on ``filesystem``."""

    def __init__(self, base: str, filesystem: pafs.FileSystem | None = None) -> None:
        self.fs = filesystem or pafs.LocalFileSystem()
        self.base = base.rstrip("/")
        self._dirs: set[str] = set()
        #: On the local filesystem, files and folders are created user-only.
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def _dir_for(self, key: str) -> str:
        path = f"{self.base}/data/{key[:2]}/{key}"
        if path not in self._dirs:
            if self.local:
                private_dir(pathlib.Path(path))
            else:
                self.fs.create_dir(path, recursive=True)
            self._dirs.add(path)
        return path

    def _write_file(self, final: str, data: pa.Buffer) -> None:
        """Write ``data`` under a temporary name, then rename it to ``final``; on object
        stores, where an upload appears whole or not at all and a rename is a copy, write
        ``final`` directly (the manifest's commit marker is written after it)."""
        temp = f"{final}.tmp-{os.getpid()}"
        try:
            if self.local:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(memoryview(data))
                os.replace(temp, final)
            else:
                with self.fs.open_output_stream(final) as out:
                    out.write(data)
        except OSError as error:
            with contextlib.suppress(OSError):
                self.fs.delete_file(temp)
            if error.errno in _FULL or "No space left" in str(error):
                raise CacheFullError(final, error) from error
            raise

    def write(self, key: str, first: int, tables: Sequence[pa.Table]) -> SegmentFile:
        """Write consecutive batches ``first..`` of ``key`` as one file.

        The batches are stored back to back as one table (compression works on large
        buffers); the manifest keeps each batch's row count to slice them apart again.
        """
        table = concat_conformed(tables).combine_chunks()
        sink = pa.BufferOutputStream()
        options = pa.ipc.IpcWriteOptions(compression=_COMPRESSION)
        with pa.ipc.new_file(sink, table.schema, options=options) as writer:
            writer.write_table(table, max_chunksize=1 << 20)
        data = sink.getvalue()
        checksum = xxhash.xxh3_64_hexdigest(memoryview(data))
        name = f"{first:08d}-{len(tables)}-{uuid.uuid4().hex[:12]}.arrow"
        final = f"{self._dir_for(key)}/{name}"
        try:
            self._write_file(final, data)
        except FileNotFoundError:  # the folder was removed meanwhile (cache clear, gc)
            self._dirs.discard(final.rsplit("/", 1)[0])
            final = f"{self._dir_for(key)}/{name}"
            self._write_file(final, data)
        # Not kept in the memory cache here: the run holds what it needs, reads fill it.
        return SegmentFile(path=final, nbytes=data.size, checksum=checksum)

    def _stamp(self, path: str) -> Any:
        """What identifies a file's current content cheaply: size and mtime."""
        try:
            if self.local:
                info = os.stat(path)
                return (info.st_size, info.st_mtime_ns)
            file_info = self.fs.get_file_info(path)
            return (file_info.size, file_info.mtime_ns)
        except OSError:
            return None

    def read(self, path: str, checksum: str) -> pa.Table:
        """A whole segment; raises ``CorruptSegmentError`` on any damage."""
        stamp = self._stamp(path)
        if stamp is not None:
            cached = _DECODED.get((path, checksum), stamp)
            if cached is not None:
                return cached
        return self._read_file(path, checksum, stamp)

    def _read_file(self, path: str, checksum: str, stamp: Any) -> pa.Table:
        try:
            with self.fs.open_input_file(path) as source:
                data = source.read_buffer()
        except (FileNotFoundError, OSError) as error:
            raise CorruptSegmentError(path, f"cannot be read ({error})") from error
        if xxhash.xxh3_64_hexdigest(memoryview(data)) != checksum:
            raise CorruptSegmentError(path, "checksum mismatch (truncated or altered)")
        try:
            table = pa.ipc.open_file(data).read_all()
        except (pa.ArrowInvalid, OSError) as error:
            raise CorruptSegmentError(path, f"not a valid Arrow file ({error})") from error
        if stamp is not None:
            _DECODED.put((path, checksum), stamp, table)
        return table

    def verify(self, path: str, checksum: str) -> bool:
        """Whether a segment is intact (readable and matching its checksum)."""
        try:
            self._read_file(path, checksum, None)
        except CorruptSegmentError:
            return False
        return True

    def delete(self, paths: Sequence[str]) -> None:
        for path in paths:
            _DECODED.forget(path)
            with contextlib.suppress(FileNotFoundError, OSError):
                self.fs.delete_file(path)
