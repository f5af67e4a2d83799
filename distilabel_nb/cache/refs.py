"""Column references: a column a step passed through unchanged is stored once.

A row step usually returns its input rows with a column or two added; storing every
column of every step's output again would store the pipeline's first columns once per
step. So a column of an output batch whose values equal (types included) the same-named
column of the batch's input rows is not written again: the segment names where that
column lives instead, as pieces ``(file, checksum, first row, row count)`` of the file
that physically holds it (a reference is always resolved to that original file, never
to another reference, so a read follows one level only).

The references travel in the segment file itself, in its Arrow schema metadata under
``META_KEY`` (the full column order and the pieces of each referenced column), so a
segment stays self-describing and a segment without references (every older one) reads
as before. The manifest keeps, per segment, the files it references, for the lifecycle
only: a data file is deleted when no live segment owns or references it
(``unreferenced``); the garbage collector's orphan pass removes held files whose last
referrer went away by other means (a dropped damaged segment).

Which columns of which file hold what is remembered per process (``remember``/``layout``)
for the files this process wrote or read: a writer resolves its inputs' columns through
it, and stores a column in full whenever it cannot (an input batch not yet written, or
never written because some of its rows failed).
"""

from __future__ import annotations

import collections
import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import pyarrow as pa

__all__ = [
    "META_KEY",
    "ColumnPiece",
    "Layout",
    "Layouts",
    "column_pieces",
    "decode",
    "dedup_enabled",
    "encode",
    "merge",
    "shareable",
    "shared_columns",
    "unreferenced",
    "valid_rel",
]

META_KEY = b"distilabel_nb.refs"

#: A data file of a cache, relative to the store's base: ``data/ab/<key>/<name>.arrow``.
_REL = re.compile(r"data/[0-9a-f]{2}/[0-9a-f]+/[A-Za-z0-9_.-]+\.arrow")


class ColumnPiece(NamedTuple):
    """Rows ``[offset, offset + rows)`` of a column in the file ``rel`` (relative to
    the store's base), whose whole content hashes to ``checksum``."""

    rel: str
    checksum: str
    offset: int
    rows: int


class Layout(NamedTuple):
    """What a segment file holds: its columns in order with their types, and for the
    columns it does not hold itself, where they live."""

    columns: tuple[str, ...]
    types: dict[str, pa.DataType]
    refs: dict[str, list[ColumnPiece]]


def valid_rel(rel: str) -> bool:
    """Whether ``rel`` names a data file of a cache (the only files a reference names)."""
    return bool(_REL.fullmatch(rel)) and ".." not in rel


def dedup_enabled() -> bool:
    """Columns are referenced unless ``DISTILABEL_NB_DEDUP=0`` (for comparisons)."""
    return os.environ.get("DISTILABEL_NB_DEDUP", "1") != "0"


# -- the segment file's metadata -------------------------------------------------------
def encode(columns: Sequence[str], rows: int, refs: dict[str, list[ColumnPiece]]) -> bytes:
    """The metadata: column order, row count, the files referenced (once each) and per
    referenced column its pieces as ``[file number, first row, row count]``."""
    files: dict[tuple[str, str], int] = {}
    pieces = {name: [[files.setdefault((p.rel, p.checksum), len(files)), p.offset, p.rows]
                     for p in found] for name, found in refs.items()}
    return json.dumps({"columns": list(columns), "rows": rows,
                       "files": [list(f) for f in files], "refs": pieces},
                      separators=(",", ":")).encode()


def decode(metadata: dict[bytes, bytes] | None
           ) -> tuple[list[str], int, dict[str, list[ColumnPiece]]] | None:
    """The column order, row count and references of a segment's schema metadata; None
    when it has none (an ordinary segment). Raises ``ValueError`` when malformed."""
    if not metadata or META_KEY not in metadata:
        return None
    record = json.loads(metadata[META_KEY])
    columns, rows, files, refs = (record["columns"], record["rows"], record["files"],
                                  record["refs"])
    if not isinstance(rows, int) or rows < 0:
        raise ValueError("bad row count")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ValueError("bad column list")
    if (len(set(columns)) != len(columns) or not isinstance(refs, dict)
            or not set(refs) <= set(columns) or not isinstance(files, list)):
        raise ValueError("bad references")
    for rel, checksum in files:
        if not (isinstance(rel, str) and valid_rel(rel) and isinstance(checksum, str)):
            raise ValueError(f"bad reference {rel!r}")
    decoded: dict[str, list[ColumnPiece]] = {}
    for name, pieces in refs.items():
        decoded[name] = []
        for number, offset, count in pieces:
            if not (isinstance(number, int) and 0 <= number < len(files)
                    and isinstance(offset, int) and isinstance(count, int)
                    and offset >= 0 and count >= 0):
                raise ValueError(f"bad piece of {name!r}")
            rel, checksum = files[number]
            decoded[name].append(ColumnPiece(rel, checksum, offset, count))
    return columns, rows, decoded


class Layouts:
    """The layouts of the files one ``SegmentStore`` wrote or read (and verified): which
    columns a file holds and which it references. A writer references a column of its
    input only where its store knows the input file's layout (most recent 50,000)."""

    def __init__(self, limit: int = 50_000) -> None:
        self._known: collections.OrderedDict[tuple[str, str], Layout] = \
            collections.OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def remember(self, path: str, checksum: str, table_schema: pa.Schema,
                 refs: dict[str, list[ColumnPiece]]) -> None:
        entry = Layout(tuple(table_schema.names), {f.name: f.type for f in table_schema},
                       refs)
        with self._lock:
            self._known[(path, checksum)] = entry
            self._known.move_to_end((path, checksum))
            while len(self._known) > self._limit:
                self._known.popitem(last=False)

    def get(self, path: str, checksum: str) -> Layout | None:
        with self._lock:
            return self._known.get((path, checksum))

    def clear(self) -> None:
        with self._lock:
            self._known.clear()

    def __reduce__(self) -> tuple[Any, ...]:
        """A store sent to another process (a Ray worker) knows nothing there yet."""
        return (Layouts, (self._limit,))


def _slice(pieces: list[ColumnPiece], start: int, count: int) -> list[ColumnPiece]:
    """Rows ``[start, start + count)`` of the column the pieces make up."""
    out: list[ColumnPiece] = []
    position = 0
    for piece in pieces:
        end = position + piece.rows
        lo, hi = max(start, position), min(start + count, end)
        if lo < hi:
            out.append(ColumnPiece(piece.rel, piece.checksum, piece.offset + lo - position,
                                   hi - lo))
        position = end
        if position >= start + count:
            break
    return out


def column_pieces(layouts: Layouts, path: str, rel: str, checksum: str, name: str,
                  start: int, count: int) -> tuple[list[ColumnPiece], pa.DataType] | None:
    """Where rows ``[start, start + count)`` of column ``name`` of the file ``path``
    (``rel`` relative to the store's base) physically live, and the column's type; None
    when ``layouts`` does not know that file or it has no such column."""
    known = layouts.get(path, checksum)
    if known is None or name not in known.types:
        return None
    if name in known.refs:
        pieces = _slice(known.refs[name], start, count)
        if sum(p.rows for p in pieces) != count:
            return None
        return pieces, known.types[name]
    return [ColumnPiece(rel, checksum, start, count)], known.types[name]


def merge(pieces: Iterable[ColumnPiece]) -> list[ColumnPiece]:
    """Adjacent pieces of one file joined (a segment's batches are usually contiguous)."""
    out: list[ColumnPiece] = []
    for piece in pieces:
        if piece.rows == 0:
            continue
        last = out[-1] if out else None
        if (last is not None and last.rel == piece.rel and last.checksum == piece.checksum
                and last.offset + last.rows == piece.offset):
            out[-1] = last._replace(rows=last.rows + piece.rows)
        else:
            out.append(piece)
    return out


# -- deciding what to share ------------------------------------------------------------
def shareable(schema: pa.Schema) -> bool:
    """Whether a table rebuilt from its columns has exactly this schema (no schema or
    field metadata, every field nullable): only then may columns be referenced."""
    return schema.metadata is None and all(f.nullable and not f.metadata for f in schema)


def shared_columns(inputs: pa.Table, output: pa.Table) -> list[str]:
    """Output columns equal, values and type, to the same-named input column."""
    if inputs.num_rows != output.num_rows or output.num_rows == 0:
        return []
    names = set(inputs.column_names)
    return [name for name in output.column_names
            if name in names and output.column(name).equals(inputs.column(name))]


# -- lifecycle -------------------------------------------------------------------------
def unreferenced(candidates: Iterable[str], live: Iterable[tuple[str, Iterable[str]]]
                 ) -> list[str]:
    """The candidate files no live segment owns or references; ``live`` gives each live
    segment as (its file, the files it references)."""
    wanted = list(dict.fromkeys(candidates))
    if not wanted:
        return []
    used: set[str] = set()
    for path, refs in live:
        used.add(path)
        used.update(refs)
    return [p for p in wanted if p not in used]


def assemble(owned: pa.Table, columns: Sequence[str],
             referenced: dict[str, pa.ChunkedArray]) -> pa.Table:
    """The full table: owned and referenced columns, in the original order."""
    if set(owned.column_names) | set(referenced) != set(columns) or len(
            owned.column_names) + len(referenced) != len(columns):
        raise KeyError("the stored and referenced columns do not make up the table")
    arrays: list[Any] = [referenced[n] if n in referenced else owned.column(n) for n in columns]
    return pa.Table.from_arrays(arrays, names=list(columns))
