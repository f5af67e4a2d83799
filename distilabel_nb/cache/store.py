"""Arrow IPC segment files: several batches of one step's output per file.

A segment holds consecutive batches as record batches of one IPC file, compressed with
zstd (lz4 where zstd is missing). Files are written under a temporary name and renamed,
through ``pyarrow.fs`` so another filesystem can take the local one's place. Reads verify
the xxh3 checksum of the whole file before decoding anything.

A segment may leave out columns it passed through unchanged from its input and name
where they live instead (``distilabel_nb.cache.refs``); a read returns the full table,
every referenced file verified against its checksum the same way. Such a segment ends
with ``REFS_TRAILER`` after the Arrow file: a version of distilabel_nb from before
references finds no Arrow file there and recomputes it as damaged, instead of returning
its table without the referenced columns.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import errno
import os
import pathlib
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import xxhash

from distilabel_nb.cache import refs as column_refs
from distilabel_nb.cache.filesystems import CacheUnreachableError
from distilabel_nb.cache.layout import private_dir
from distilabel_nb.tables import concat_conformed

__all__ = ["CacheFullError", "CorruptSegmentError", "SegmentFile", "SegmentStore"]

#: Ends a segment that references columns of other files (not an Arrow file for older
#: readers, which then recompute it).
REFS_TRAILER = b"\ndistilabel_nb-refs-1\n"

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
    """A segment file is missing, truncated or does not match its checksum, or a file it
    references columns of is: ``source`` is the file actually damaged (``path`` itself,
    or the referenced one, which other segments may still read intact parts of)."""

    def __init__(self, path: str, why: str, source: str | None = None) -> None:
        super().__init__(f"cache file {path} is unusable: {why}")
        self.path = path
        self.why = why
        self.source = source or path


@dataclasses.dataclass(frozen=True)
class SegmentFile:
    path: str
    nbytes: int
    checksum: str
    refs: tuple[str, ...] = ()  # the files it references columns of (full paths)


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
        #: key -> (stamp, table, stamps of the files it references columns of)
        self.entries: collections.OrderedDict[
            tuple[str, str], tuple[Any, pa.Table, tuple[tuple[str, Any], ...]]] = (
            collections.OrderedDict())
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str], stamp: Any
            ) -> tuple[pa.Table, tuple[tuple[str, Any], ...]] | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or entry[0] != stamp:
                return None
            self.entries.move_to_end(key)
            return entry[1], entry[2]

    def put(self, key: tuple[str, str], stamp: Any, table: pa.Table,
            deps: tuple[tuple[str, Any], ...] = ()) -> None:
        size = table.get_total_buffer_size()
        if size > self.budget // 4:
            return
        with self.lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.used -= old[1].get_total_buffer_size()
            self.entries[key] = (stamp, table, deps)
            self.used += size
            while self.used > self.budget and self.entries:
                _, (_, dropped, _) = self.entries.popitem(last=False)
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
        #: How errors name this store (no credentials: the filesystem holds those).
        self.where = self.base if self.local else f"{self.fs.type_name}://{self.base}"
        #: Layouts of the files this store wrote or verified: what writers may reference.
        self.layouts = column_refs.Layouts()

    def _dir_for(self, key: str) -> str:
        path = f"{self.base}/data/{key[:2]}/{key}"
        if path not in self._dirs:
            if self.local:
                private_dir(pathlib.Path(path))
            else:
                try:
                    self.fs.create_dir(path, recursive=True)
                except OSError as error:
                    raise CacheUnreachableError(self.where, error, "write to") from error
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
            if not self.local and not isinstance(error, FileNotFoundError):
                raise CacheUnreachableError(self.where, error, "write to") from error
            raise

    def rel(self, path: str) -> str:
        """A data file's path relative to the store's base (as references name it)."""
        return path[len(self.base) + 1:] if path.startswith(self.base + "/") else path

    def full(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def write(self, key: str, first: int, tables: Sequence[pa.Table],
              shared: dict[str, tuple[list[column_refs.ColumnPiece], pa.DataType]]
              | None = None) -> SegmentFile:
        """Write consecutive batches ``first..`` of ``key`` as one file.

        The batches are stored back to back as one table (compression works on large
        buffers); the manifest keeps each batch's row count to slice them apart again.
        The columns of ``shared`` (where each lives, and its type) are not written but
        referenced, when the table's column has exactly that type and row count.
        """
        table = concat_conformed(tables).combine_chunks()
        refs: dict[str, list[column_refs.ColumnPiece]] = {}
        if shared and table.num_rows and column_refs.shareable(table.schema):
            for name, (pieces, kind) in shared.items():
                if (name in table.column_names and table.column(name).type == kind
                        and sum(p.rows for p in pieces) == table.num_rows
                        and all(column_refs.valid_rel(p.rel) for p in pieces)):
                    refs[name] = pieces
        written = table
        if refs:
            meta = column_refs.encode(table.column_names, table.num_rows, refs)
            written = table.drop_columns(list(refs)).replace_schema_metadata(
                {column_refs.META_KEY: meta})
        sink = pa.BufferOutputStream()
        options = pa.ipc.IpcWriteOptions(compression=_COMPRESSION)
        with pa.ipc.new_file(sink, written.schema, options=options) as writer:
            writer.write_table(written, max_chunksize=1 << 20)
        if refs:
            sink.write(REFS_TRAILER)
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
        self.layouts.remember(final, checksum, table.schema, refs)
        targets = dict.fromkeys(self.full(p.rel) for pieces in refs.values() for p in pieces)
        return SegmentFile(path=final, nbytes=data.size, checksum=checksum,
                           refs=tuple(targets))

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
        """A whole segment, referenced columns included; raises ``CorruptSegmentError``
        on any damage to it or to a file it references."""
        stamp = self._stamp(path)
        if stamp is not None:
            cached = _DECODED.get((path, checksum), stamp)
            if cached is not None and all(self._stamp(p) == s for p, s in cached[1]):
                return cached[0]
        return self._read_file(path, checksum, stamp)

    def _read_raw(self, path: str, checksum: str) -> pa.Table:
        """The columns a file holds itself (its schema metadata kept), verified."""
        try:
            with self.fs.open_input_file(path) as source:
                data = source.read_buffer()
        except FileNotFoundError as error:
            raise CorruptSegmentError(path, f"cannot be read ({error})") from error
        except OSError as error:
            if not self.local:  # the store did not answer: the file may well be intact
                raise CacheUnreachableError(self.where, error, "read") from error
            raise CorruptSegmentError(path, f"cannot be read ({error})") from error
        if xxhash.xxh3_64_hexdigest(memoryview(data)) != checksum:
            raise CorruptSegmentError(path, "checksum mismatch (truncated or altered)")
        end = data.size - len(REFS_TRAILER)
        marked = end > 0 and data.slice(end).to_pybytes() == REFS_TRAILER
        try:
            table = pa.ipc.open_file(data.slice(0, end) if marked else data).read_all()
        except (pa.ArrowInvalid, OSError) as error:
            raise CorruptSegmentError(path, f"not a valid Arrow file ({error})") from error
        metadata = table.schema.metadata or {}
        if marked != (column_refs.META_KEY in metadata):
            raise CorruptSegmentError(path, "column references without their marker")
        return table

    def _source(self, path: str, checksum: str, stamp: Any) -> pa.Table:
        """A referenced file's own columns, through the memory cache."""
        key = (path, f"raw:{checksum}")
        if stamp is not None:
            cached = _DECODED.get(key, stamp)
            if cached is not None:
                return cached[0]
        table = self._read_raw(path, checksum)
        if stamp is not None:
            _DECODED.put(key, stamp, table)
        return table

    def _read_file(self, path: str, checksum: str, stamp: Any, fresh: bool = False
                   ) -> pa.Table:
        """Read, verify and assemble a segment; ``fresh`` reads every referenced file
        from the store, none from memory."""
        raw = self._read_raw(path, checksum)
        try:
            found = column_refs.decode(raw.schema.metadata)
        except (ValueError, TypeError, KeyError) as error:
            raise CorruptSegmentError(path, f"bad column references ({error})") from error
        deps: dict[str, Any] = {}
        if found is None:
            table = raw
            refs: dict[str, list[column_refs.ColumnPiece]] = {}
        else:
            columns, rows, refs = found
            if raw.num_columns and raw.num_rows != rows:
                raise CorruptSegmentError(path, "its row count does not match its columns")
            referenced = {}
            for name, pieces in refs.items():
                chunks: list[pa.Array] = []
                for piece in pieces:
                    source_path = self.full(piece.rel)
                    if source_path not in deps:
                        deps[source_path] = self._stamp(source_path)
                    try:
                        source = self._source(source_path, piece.checksum,
                                              None if fresh else deps[source_path])
                        column = source.column(name).slice(piece.offset, piece.rows)
                    except (CorruptSegmentError, KeyError) as error:
                        why = error.why if isinstance(error, CorruptSegmentError) else \
                            f"has no column {name!r}"
                        msg = f"its column {name!r} refers to {source_path}, which {why}"
                        raise CorruptSegmentError(path, msg, source_path) from error
                    if len(column) != piece.rows:
                        msg = f"its column {name!r} refers to rows {source_path} lacks"
                        raise CorruptSegmentError(path, msg, source_path)
                    chunks += column.chunks
                kind = chunks[0].type if chunks else pa.null()
                if len(chunks) and any(c.type != kind for c in chunks):
                    raise CorruptSegmentError(path, f"its column {name!r} mixes types")
                referenced[name] = pa.chunked_array(chunks, type=kind)
                if len(referenced[name]) != rows:
                    raise CorruptSegmentError(path, f"its column {name!r} has the wrong length")
            raw = raw.replace_schema_metadata(None)
            try:
                table = column_refs.assemble(raw, columns, referenced)
            except (KeyError, pa.ArrowInvalid) as error:
                raise CorruptSegmentError(path, f"bad column references ({error})") from error
        self.layouts.remember(path, checksum, table.schema, refs)
        if stamp is not None and None not in deps.values():
            _DECODED.put((path, checksum), stamp, table, tuple(deps.items()))
        return table

    def verify(self, path: str, checksum: str) -> bool:
        """Whether a segment is intact (readable and matching its checksum), and every
        file it references too."""
        return self.damage(path, checksum) is None

    def damage(self, path: str, checksum: str) -> CorruptSegmentError | None:
        """What makes a segment unusable (read afresh, references included), or None."""
        try:
            self._read_file(path, checksum, None, fresh=True)
        except CorruptSegmentError as error:
            return error
        return None

    def delete(self, paths: Sequence[str]) -> None:
        for path in paths:
            _DECODED.forget(path)
            with contextlib.suppress(FileNotFoundError, OSError):
                self.fs.delete_file(path)

    def remove(self, paths: Iterable[str]) -> None:
        """Delete segment files (full paths); on a local disk, their key folders too once
        empty. Object stores are slow per call: sixteen deletions at a time there."""
        paths = list(paths)
        if self.local:
            self.delete(paths)
            for folder in {os.path.dirname(p) for p in paths}:
                with contextlib.suppress(OSError):  # not empty: a writer is adding to it
                    os.rmdir(folder)
        elif paths:
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda path: self.delete([path]), paths))
