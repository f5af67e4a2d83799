from __future__ import annotations

import pytest

from distilabel_nb.graph.dag import DAG, CycleError


def make(*edges: tuple[str, str]) -> DAG:
    dag = DAG()
    for name in sorted({n for edge in edges for n in edge}):
        dag.add(name)
    for a, b in edges:
        dag.connect(a, b)
    return dag


def test_a_cycle_is_refused_naming_both_steps() -> None:
    dag = make(("a", "b"), ("b", "c"))
    with pytest.raises(CycleError, match="'c' >> 'a' would make a cycle: 'c' already depends"):
        dag.connect("c", "a")
    with pytest.raises(CycleError):
        dag.connect("a", "a")


def test_topological_order_and_neighbours() -> None:
    dag = make(("a", "c"), ("b", "c"), ("c", "d"), ("a", "e"))
    order = dag.topological()
    assert order.index("a") < order.index("c") < order.index("d")
    assert order.index("b") < order.index("c")
    assert dag.descendants("a") == {"c", "d", "e"}
    assert dag.ancestors("d") == {"a", "b", "c"}
    assert dag.leaves() == ["d", "e"]
    assert dag.edges == [("a", "c"), ("a", "e"), ("b", "c"), ("c", "d")]


def test_connecting_twice_is_harmless() -> None:
    dag = make(("a", "b"))
    dag.connect("a", "b")
    assert dag.pred["b"] == ["a"]
