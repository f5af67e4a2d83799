"""Where the cache lives and how its layout is versioned."""

from __future__ import annotations

import os
import pathlib

__all__ = ["CACHE_VERSION", "CacheWarning", "cache_root", "version_dir"]

#: Bumped on any change a previous version would misread.
CACHE_VERSION = 1


class CacheWarning(UserWarning):
    """Something in the cache was wrong (corrupt, missing); it was recomputed."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """``cache_dir``, else ``$DISTILABEL_NB_CACHE_DIR``, else ``~/.cache/distilabel_nb``."""
    if cache_dir is not None:
        return pathlib.Path(cache_dir).expanduser()
    env = os.environ.get("DISTILABEL_NB_CACHE_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".cache" / "distilabel_nb"


def version_dir(root: pathlib.Path) -> pathlib.Path:
    """The folder of this cache version under the root, created user-only."""
    path = root / f"v{CACHE_VERSION}"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
