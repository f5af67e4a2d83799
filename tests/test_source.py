from __future__ import annotations

from typing import Any

from distilabel_nb.cache.source import class_code_fingerprints, code_fingerprint


def _define(source: str, name: str = "f") -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<no-source>", "exec"), namespace)
    return namespace[name]


def double(x: int) -> int:
    return x * 2


def double_commented(x: int) -> int:
    """Doubles."""
    # a comment
    return (
        x * 2
    )


def triple(x: int) -> int:
    return x * 3


def test_comments_docstrings_and_formatting_do_not_count() -> None:
    assert code_fingerprint(double) != code_fingerprint(triple)
    a = _define("def f(x):\n    return x * 2\n")
    b = _define('def f(x):\n    "doc"\n    # note\n    return (x *\n 2)\n')
    c = _define("def f(x):\n    return x * 3\n")
    assert code_fingerprint(a) == code_fingerprint(b)
    assert code_fingerprint(a) != code_fingerprint(c)


def test_source_fingerprint_ignores_comments_docstrings_and_layout() -> None:
    assert code_fingerprint(double) == code_fingerprint(double_commented)


def test_class_fingerprints_cover_user_methods_only() -> None:
    class Base:
        def process(self) -> int:
            return 1

    class Child(Base):
        def helper(self) -> int:
            return 2

    prints = class_code_fingerprints(Child, stop=())
    assert set(prints) == {"process", "helper"}



def _identity(func: Any) -> Any:
    return func


@_identity
@_identity
def decorated(x: int) -> int:  # a definition starts at its first decorator's line
    def inner(y: int) -> int:
        return y + 1

    return inner(x)


def test_definitions_are_found_as_inspect_finds_them() -> None:
    """A function's source comes from its module's syntax tree, not from a tokenizer:
    the same code as ``inspect.getsource`` finds."""
    import ast
    import inspect
    import textwrap
    import types

    from distilabel_nb.cache.source import _function_source

    def dump(source: str) -> str:
        return ast.dump(ast.parse(textwrap.dedent(source)), include_attributes=False)

    inner = next(c for c in decorated.__code__.co_consts if isinstance(c, types.CodeType))
    nested = types.FunctionType(inner, {})
    for func in (double, double_commented, decorated, nested,
                 test_comments_docstrings_and_formatting_do_not_count):
        assert dump(_function_source(func)) == dump(inspect.getsource(func))
