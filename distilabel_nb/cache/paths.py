"""Where a manifest's recorded paths point: relative to the cache's version folder.

Both manifests record segment paths relative to their base (so a cache can be moved or
mounted elsewhere) and read them back as full paths; a recorded path is trusted only
when it names a file of the cache's ``data`` folder (a damaged or planted record could
name any file: such a path is never read nor deleted).
"""

from __future__ import annotations

import os
import posixpath

__all__ = ["CachePaths"]


class CachePaths:
    """Recorded <-> full paths below ``base`` (a local folder, or a bucket prefix)."""

    def __init__(self, base: str, local: bool) -> None:
        self.local = local
        self.base = os.path.abspath(base) if local else base.rstrip("/")
        self._data = f"{self.base}/data/"

    def rel(self, path: str) -> str:
        """A full path as recorded: relative to the base when below it."""
        if self.local and "://" not in path:
            path = os.path.abspath(path)
        return path[len(self.base) + 1:] if path.startswith(self.base + "/") else path

    def full(self, path: str) -> str:
        """A recorded path as a full path."""
        if path.startswith(("/", self.base + "/")) or "://" in path:
            return path
        return f"{self.base}/{path}"

    def inside(self, path: str) -> bool:
        """Whether a recorded path names a file of this cache's data folder."""
        if "://" in path:
            return True
        return posixpath.normpath(self.full(path)).startswith(self._data)
