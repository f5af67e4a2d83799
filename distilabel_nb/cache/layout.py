"""Where the cache lives and how its layout is versioned."""

from __future__ import annotations

import os
import pathlib

__all__ = [
    "CACHE_VERSION",
    "CacheVersionError",
    "CacheWarning",
    "is_uri",
    "local_dir",
    "private_dir",
    "resolve_root",
    "version_dir",
]

#: Bumped on any change a previous version would misread.
CACHE_VERSION = 1


class CacheWarning(UserWarning):
    """Something in the cache was wrong (corrupt, missing); it was recomputed."""


class CacheVersionError(RuntimeError):
    """The cache was written in a format this version does not read; it is left alone."""


def is_uri(root: object) -> bool:
    """Whether a cache root is a URI (``s3://bucket/prefix``, ``gs://``, ``file://``)."""
    return isinstance(root, str) and "://" in root


def _default_root() -> pathlib.Path:
    return pathlib.Path.home() / ".cache" / "distilabel_nb"


def resolve_root(cache_dir: str | os.PathLike[str] | None = None) -> str | pathlib.Path:
    """The cache root: ``cache_dir``, else ``$DISTILABEL_NB_CACHE_DIR``, else
    ``~/.cache/distilabel_nb``. A URI stays a string; a folder is a ``Path``.

    The one place the root is worked out: runs, previews, the widget, cache
    administration and the command line all call it (through ``open_cache``)."""
    root = cache_dir if cache_dir is not None else \
        (os.environ.get("DISTILABEL_NB_CACHE_DIR") or None)
    if root is None:
        return _default_root()
    if is_uri(root):
        return str(root)
    return pathlib.Path(root).expanduser()


def local_dir(cache_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """A folder on this machine for what must stay local (the row caches, SQLite): the
    cache's version folder, or for a cache on an object store the default root's."""
    root = resolve_root(cache_dir)
    return version_dir(root if isinstance(root, pathlib.Path) else _default_root())


def private_dir(path: pathlib.Path) -> pathlib.Path:
    """Create ``path`` and its missing parents user-only (0o700); existing ones are kept."""
    missing = []
    here = path
    while not here.exists() and here != here.parent:
        missing.append(here)
        here = here.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
    return path


def version_dir(root: pathlib.Path) -> pathlib.Path:
    """The folder of this cache version under the root, created user-only."""
    return private_dir(root / f"v{CACHE_VERSION}")
