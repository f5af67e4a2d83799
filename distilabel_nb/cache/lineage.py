"""Which cached steps were computed from which, from the run records.

A run record keeps the keys of its step's predecessors in that run (``upstream``), so
``cache clear --step`` finds a step's descendants by walking those edges (routed edges
and any number of predecessors included). Records written before that was kept are
searched instead: a step's cache key is ``hash({version, signature, upstream: [keys of
its predecessors]})`` (``engine/plan.py``), so the search tries which recorded keys, as
upstream lists, give each step its own key; only lists holding an already-found key are
tried (thousands of hashes, a microsecond each, for tens of steps), up to
``MAX_PREDECESSORS`` predecessors, and routed edges are not found that way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from distilabel_nb.cache.layout import CACHE_VERSION
from distilabel_nb.cache.manifest import RunRecord
from distilabel_nb.cache.signature import UnhashableValueError, hash_value

__all__ = ["downstream_keys"]

#: Steps with more predecessors than this are not found (the search grows as n ** k).
MAX_PREDECESSORS = 3


def _key(signature: str, upstream: Iterable[str]) -> str:
    return hash_value({"version": CACHE_VERSION, "signature": signature,
                       "upstream": list(upstream)})


def _derived(record: RunRecord, signature: str, found: set[str], known: list[str]) -> bool:
    """Whether ``record``'s key is built on some upstream list holding a key of ``found``."""
    seeds = [k for k in known if k in found]
    others = [k for k in known if k != record.key]
    for size in range(1, MAX_PREDECESSORS + 1):
        for seed in seeds:
            for rest in itertools.permutations([k for k in others if k != seed], size - 1):
                for position in range(size):
                    upstream = [*rest[:position], seed, *rest[position:]]
                    if _key(signature, upstream) == record.key:
                        return True
    return False


def downstream_keys(runs: list[RunRecord], keys: set[str]) -> set[str]:
    """The keys of the recorded steps computed, directly or not, from any of ``keys``."""
    signatures: dict[str, str] = {}
    for record in runs:
        try:
            signatures[record.key] = hash_value(record.description)
        except UnhashableValueError:
            continue
    known = list(dict.fromkeys(r.key for r in runs))
    found = set(keys)
    grew = True
    while grew:  # run records of several runs may not be in one topological order
        grew = False
        for record in runs:
            if record.key in found:
                continue
            if record.upstream is not None:  # recorded: a plain walk of the graph
                derived = not found.isdisjoint(record.upstream)
            else:  # a record from before upstream keys were kept: search
                signature = signatures.get(record.key)
                derived = signature is not None and _derived(record, signature, found, known)
            if derived:
                found.add(record.key)
                grew = True
    return found - set(keys)
