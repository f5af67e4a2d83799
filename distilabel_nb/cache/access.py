"""One door to the cache: ``open_cache(root)`` -> its manifest and segment store.

A cache root is a folder (the SQLite manifest) or a URI (``s3://bucket/prefix``,
``gs://``, ``file://``: the object-store manifest); ``layout.resolve_root`` says which.
Runs open it with ``create=True``; cache administration, previews and the widget open
what exists only.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import urllib.parse
from collections.abc import Iterator
from typing import NamedTuple

import pyarrow as pa
import pyarrow.fs as pafs

from distilabel_nb.cache.filesystems import open_filesystem
from distilabel_nb.cache.layout import CACHE_VERSION, resolve_root, version_dir
from distilabel_nb.cache.manifest import Manifest
from distilabel_nb.cache.objectstore import ObjectStoreManifest
from distilabel_nb.cache.sqlite import SQLiteManifest
from distilabel_nb.cache.store import SegmentStore

__all__ = ["Cache", "CacheLocationError", "cache_location", "filesystem_of", "open_cache",
           "opened"]

_SECRET = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)


class CacheLocationError(RuntimeError):
    """A cache URI cannot be opened or reached, or names a bucket that does not exist."""


class Cache(NamedTuple):
    manifest: Manifest
    store: SegmentStore


def cache_location(root: str | os.PathLike[str] | None = None) -> str:
    """The cache root for messages; a URI's credentials (``key:secret@``,
    ``?secret_key=``) are masked."""
    where = resolve_root(root)
    if isinstance(where, pathlib.Path):
        return str(where)
    parts = urllib.parse.urlsplit(where)
    netloc = f"***@{parts.netloc.rpartition('@')[2]}" if "@" in parts.netloc else parts.netloc
    query = [(k, "***" if _SECRET.search(k) and k != "endpoint_override" else v)
             for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path,
                                    urllib.parse.urlencode(query, safe=":/*"), parts.fragment))


def filesystem_of(root: str | os.PathLike[str] | None) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path of a cache root (a local folder, or the URI's store)."""
    where = resolve_root(root)
    if isinstance(where, pathlib.Path):
        return pafs.LocalFileSystem(), str(where)
    return _filesystem(where)


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    try:
        filesystem, path = open_filesystem(uri)
    except (pa.ArrowInvalid, ValueError, OSError) as error:
        msg = (f"cannot open the cache at {cache_location(uri)}: {error}. Write it as "
               "s3://bucket/prefix (options in the query string, e.g. "
               "?endpoint_override=host:9000&scheme=http), gs://bucket/prefix or "
               "file:///absolute/folder")
        raise CacheLocationError(msg) from None
    return filesystem, path.rstrip("/")


def _exists(filesystem: pafs.FileSystem, path: str, base: str, uri: str) -> bool:
    """Whether the cache's version folder exists; a missing bucket is an error."""
    try:
        found = filesystem.get_file_info(base).type != pafs.FileType.NotFound
        bucket = path.split("/", 1)[0]
        if (not found and not isinstance(filesystem, pafs.LocalFileSystem)
                and filesystem.get_file_info(bucket).type == pafs.FileType.NotFound):
            msg = (f"the bucket {bucket!r} of the cache at {cache_location(uri)} does not "
                   "exist, or these credentials cannot see it: create it, or correct the "
                   "cache URI")
            raise CacheLocationError(msg)
    except OSError as error:
        msg = (f"cannot reach the cache at {cache_location(uri)} ({error}): check the "
               "endpoint (endpoint_override=host:port, plus scheme=http for a server "
               "without TLS), the network, and the credentials in the environment "
               "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
               "GOOGLE_APPLICATION_CREDENTIALS)")
        raise CacheLocationError(msg) from None
    return found


def open_cache(root: str | os.PathLike[str] | None = None,
               create: bool = False) -> Cache | None:
    """The manifest and segment store of the cache at ``root`` (a folder or a URI;
    ``layout.resolve_root`` picks the default). Without ``create``, None when there is
    no cache there. Raises ``CacheLocationError`` when a URI cannot be opened or
    reached, ``CacheVersionError`` for a cache of another format."""
    where = resolve_root(root)
    if isinstance(where, str):
        filesystem, path = _filesystem(where)
        base = f"{path}/v{CACHE_VERSION}"
        if not create and not _exists(filesystem, path, base, where):
            return None
        return Cache(ObjectStoreManifest(filesystem, base), SegmentStore(base, filesystem))
    if create:
        folder = version_dir(where)
    else:
        folder = where / f"v{CACHE_VERSION}"
        if not (folder / "manifest.sqlite").exists():
            return None
    manifest = SQLiteManifest(folder / "manifest.sqlite")
    return Cache(manifest, SegmentStore(manifest.base))


@contextlib.contextmanager
def opened(root: str | os.PathLike[str] | None) -> Iterator[Cache | None]:
    """``open_cache`` (never creating) as a context: the manifest is closed on the way
    out."""
    cache = open_cache(root)
    try:
        yield cache
    finally:
        if cache is not None:
            cache.manifest.close()
