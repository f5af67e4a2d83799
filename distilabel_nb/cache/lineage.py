"""Which cached steps were computed from which, re-derived from the run records.

A step's cache key is ``hash({version, signature, upstream: [keys of its predecessors]})``
(``engine/plan.py``), and a run record holds each step's key and description (whose hash
is the signature). The records do not name the edges, so ``cache clear --step`` finds a
step's descendants by trying which recorded keys, as upstream lists, give each step its
own key. Only lists holding an already-found key are tried, so the search stays small
(thousands of hashes, a microsecond each, for tens of steps). A step whose recorded
description no longer hashes to its signature is not found: it keeps its cache.
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
            signature = signatures.get(record.key)
            if record.key in found or signature is None:
                continue
            if _derived(record, signature, found, known):
                found.add(record.key)
                grew = True
    return found - set(keys)
