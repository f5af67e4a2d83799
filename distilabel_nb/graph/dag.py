"""The graph of steps: insertion-ordered nodes, edges in connection order, no cycles."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["DAG", "CycleError"]


class CycleError(ValueError):
    """Connecting two steps would close a cycle."""


class DAG:
    def __init__(self) -> None:
        self.nodes: list[str] = []
        self.succ: dict[str, list[str]] = {}
        self.pred: dict[str, list[str]] = {}

    def add(self, name: str) -> None:
        self.nodes.append(name)
        self.succ[name] = []
        self.pred[name] = []

    def connect(self, source: str, target: str) -> None:
        if target in self.succ[source]:
            return
        if source == target or source in self.descendants(target):
            msg = (
                f"connecting {source!r} >> {target!r} would make a cycle: {source!r} "
                f"already depends on {target!r}"
            )
            raise CycleError(msg)
        self.succ[source].append(target)
        self.pred[target].append(source)

    def copy(self) -> DAG:
        other = DAG()
        other.nodes = list(self.nodes)
        other.succ = {name: list(targets) for name, targets in self.succ.items()}
        other.pred = {name: list(sources) for name, sources in self.pred.items()}
        return other

    @property
    def edges(self) -> list[tuple[str, str]]:
        return [(a, b) for a in self.nodes for b in self.succ[a]]

    def descendants(self, name: str) -> set[str]:
        return _reach(name, self.succ)

    def ancestors(self, name: str) -> set[str]:
        return _reach(name, self.pred)

    def topological(self) -> list[str]:
        """Nodes with every predecessor first; ties keep insertion order."""
        remaining = {name: len(self.pred[name]) for name in self.nodes}
        order: list[str] = []
        ready = [name for name in self.nodes if remaining[name] == 0]
        while ready:
            node = ready.pop(0)
            order.append(node)
            for child in self.succ[node]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    ready.append(child)
        return order

    def leaves(self) -> list[str]:
        return [name for name in self.nodes if not self.succ[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)


def _reach(start: str, neighbours: dict[str, list[str]]) -> set[str]:
    """Every node reachable from ``start`` through ``neighbours`` (``start`` excluded)."""
    seen: set[str] = set()
    stack = list(neighbours[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(neighbours[node])
    return seen
