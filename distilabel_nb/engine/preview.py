"""The first cached rows of a step, for ``Pipeline.preview`` and the widget (a read: it
leases nothing and computes nothing)."""

from __future__ import annotations

import pyarrow as pa

from distilabel_nb.cache.manifest import Manifest
from distilabel_nb.cache.store import CorruptSegmentError, SegmentStore
from distilabel_nb.engine.plan import step_keys
from distilabel_nb.graph.description import PipelineGraph
from distilabel_nb.tables import concat

__all__ = ["cached_rows"]


def cached_rows(graph: PipelineGraph, manifest: Manifest, store: SegmentStore, step: str,
                n: int, key: str | None = None) -> pa.Table | None:
    """The first ``n`` cached output rows of ``step`` (or of the output under ``key``, a
    recorded run's); None when nothing is cached (or what is cached is damaged: a run
    will recompute it)."""
    state = manifest.state(key or step_keys(graph)[step][0])
    parts: list[pa.Table] = []
    rows = 0
    for index in sorted(state.batches):
        if rows >= n:
            break
        ref = state.batches[index]
        try:
            table = store.read(ref.path, ref.checksum).slice(ref.offset, ref.rows)
        except CorruptSegmentError:
            return None
        parts.append(table)
        rows += table.num_rows
    if not parts:
        return None
    return concat(parts).slice(0, n)
