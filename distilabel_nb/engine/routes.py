"""Routed batches at run time: which slices of a routed source each step receives.

The routing DSL (``routing.py``) declares which successors a batch may go to and picks
them reproducibly; here the executor turns those choices into the slices each routed
step, and each step after all of them, reads from the channels.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from distilabel_nb.graph.dag import DAG
from distilabel_nb.routing import RoutingBatchFunction

if TYPE_CHECKING:
    from distilabel_nb.engine.channel import Channel, ChunkSpec

__all__ = ["SKIP", "converged_chunks", "converging_router", "routed_chunks"]

#: In a converging step's chunk list: this predecessor got no part of the batch.
SKIP: list[tuple[int, int, int]] = []


def routed_chunks(source: Channel, router: RoutingBatchFunction, target: str,
                  block: bool) -> Iterator[ChunkSpec | None]:
    """The source's batches routed to ``target``, one chunk each (None while waiting)."""
    for index in source.batches(block):
        if index is None:
            yield None
        elif source.rows[index] and target in router.route(index):
            yield [(index, 0, source.rows[index])]


def converged_chunks(source: Channel, router: RoutingBatchFunction, preds: list[Channel],
                     block: bool) -> Iterator[list[ChunkSpec] | None]:
    """For each batch of the source: the batch each routed predecessor made of it
    (``SKIP`` for the predecessors it did not go to); None while waiting."""
    positions = [0] * len(preds)
    for index in source.batches(block):
        if index is None:
            yield None
            continue
        chosen = router.route(index) if source.rows[index] else frozenset()
        specs: list[ChunkSpec] = []
        for i, pred in enumerate(preds):
            if pred.name not in chosen:
                specs.append(SKIP)
                continue
            while (ready := pred.wait_for(positions[i], block)) is None:
                yield None
            if not ready:
                msg = (f"step {pred.name!r} ended before the batch routed to it from batch "
                       f"{index} of {source.name!r}")
                raise RuntimeError(msg)
            specs.append([(positions[i], 0, pred.rows[positions[i]])])
            positions[i] += 1
        if any(spec is not SKIP for spec in specs):
            yield specs


def converging_router(dag: DAG, routers: Mapping[str, RoutingBatchFunction],
                      name: str) -> tuple[str, RoutingBatchFunction] | None:
    """(source, router) when every predecessor of step ``name`` is a routed step of one
    routing function: the step then gets, per source batch, the outputs it went to."""
    preds = dag.pred[name]
    found = {(s, r) for p in preds for s, r in _routed_by(dag, routers, p)}
    if len(preds) < 2 or len(found) != 1:
        return None
    source, router = found.pop()
    if all(_routed_by(dag, routers, p) == [(source, router)] for p in preds):
        return source, router
    return None


def _routed_by(dag: DAG, routers: Mapping[str, RoutingBatchFunction],
               name: str) -> list[tuple[str, RoutingBatchFunction]]:
    """The (source, router) pairs routing batches to step ``name``."""
    return [(p, routers[p]) for p in dag.pred[name] if p in routers and name in routers[p].targets]
