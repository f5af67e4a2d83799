"""Corruption recovery: a run that read a damaged cache file forgets it, and every other
damaged file of the pipeline's steps, before it tries again."""

from __future__ import annotations

import warnings

from distilabel_nb.cache.layout import CacheWarning
from distilabel_nb.cache.manifest import Manifest
from distilabel_nb.cache.store import CorruptSegmentError, SegmentStore
from distilabel_nb.engine.plan import step_keys
from distilabel_nb.graph.description import PipelineGraph

__all__ = ["forget_corrupt"]


def forget_corrupt(graph: PipelineGraph, manifest: Manifest, store: SegmentStore,
                   error: CorruptSegmentError) -> None:
    """One damaged file was found: check every file of the graph's steps, warn once per
    damaged step and forget those files, so the next attempt recomputes them."""
    damaged: dict[str, list[str]] = {}
    sources = {error.source}  # files damaged themselves (not a referrer of one)
    for name, (key, _, _) in step_keys(graph).items():
        files = {(ref.path, ref.checksum) for ref in manifest.state(key).batches.values()}
        for path, checksum in sorted(files):
            found = store.damage(path, checksum) if path != error.path else error
            if found is not None:
                damaged.setdefault(name, []).append(path)
                sources.add(found.source)
    for name, paths in damaged.items():
        warnings.warn(f"cache of step {name!r}: {len(paths)} file(s) damaged or missing "
                      f"({error.why} in {paths[0]}); recomputing them", CacheWarning,
                      stacklevel=4)
        for path in paths:
            manifest.drop_segment(path)
    # An intact file whose segment only referenced a damaged one may still be read by
    # other segments: only damaged files go (gc removes the rest once unreferenced).
    store.delete(sorted(sources))
