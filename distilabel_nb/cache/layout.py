"""Where the cache lives and how its layout is versioned."""

from __future__ import annotations

import os
import pathlib

__all__ = [
    "CACHE_VERSION",
    "CacheVersionError",
    "CacheWarning",
    "cache_root",
    "private_dir",
    "version_dir",
]

#: Bumped on any change a previous version would misread.
CACHE_VERSION = 1


class CacheWarning(UserWarning):
    """Something in the cache was wrong (corrupt, missing); it was recomputed."""


class CacheVersionError(RuntimeError):
    """The cache was written in a format this version does not read; it is left alone."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """``cache_dir``, else ``$DISTILABEL_NB_CACHE_DIR``, else ``~/.cache/distilabel_nb``."""
    if cache_dir is not None:
        return pathlib.Path(cache_dir).expanduser()
    env = os.environ.get("DISTILABEL_NB_CACHE_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".cache" / "distilabel_nb"


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
