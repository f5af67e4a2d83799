"""Code fingerprints that ignore comments, docstrings and formatting.

Source is parsed and dumped as an AST without positions or docstrings. When source is
not available (a plain REPL, a ``exec``'d string), the code object itself is hashed
(bytecode, constants and names, recursively, without line numbers).
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import types
from typing import Any

from distilabel_nb.cache.signature import hash_bytes

__all__ = ["class_code_fingerprints", "code_fingerprint"]


def _strip_docstrings(tree: Any) -> Any:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module)
            and isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _without_decorators(tree: Any) -> Any:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.decorator_list = []
    return tree


@functools.lru_cache(maxsize=16)
def _definition_spans(source: str) -> dict[tuple[int, str], int] | None:
    """(first line, name) -> last line of every function definition in a module's source
    (the first line is the first decorator's); None when the source does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    spans: dict[tuple[int, str], int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            spans[(first, node.name)] = node.end_lineno
    return spans


def _function_source(func: Any) -> str:
    """What ``inspect.getsource(func)`` returns, for a function, without its tokenizer
    (whose first use compiles large regular expressions: ~15 ms in every new process):
    the definition's lines are found in the module's syntax tree."""
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None:
        return inspect.getsource(func)
    lines, first = inspect.findsource(func)
    spans = _definition_spans("".join(lines))
    last = spans.get((first + 1, code.co_name)) if spans is not None else None
    if last is None:  # a lambda, or lines that are not the module's whole source
        return inspect.getsource(func)
    return "".join(lines[first:last])


def _source_fingerprint(func: Any) -> str | None:
    try:
        source = _function_source(func)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None
    tree = _without_decorators(_strip_docstrings(tree))
    for node in tree.body[:1]:  # the name is the step's class name, described elsewhere
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.name = ""
    return hash_bytes(ast.dump(tree, annotate_fields=False, include_attributes=False).encode())


def _code_bytes(code: types.CodeType) -> bytes:
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    consts = code.co_consts
    if consts and isinstance(consts[0], str):
        consts = (None, *consts[1:])  # a function's first constant is its docstring or None
    for const in consts:
        if isinstance(const, types.CodeType):
            parts.append(_code_bytes(const))
        else:
            parts.append(repr(const).encode())
    return b"\0".join(parts)


def code_fingerprint(func: Any) -> str:
    """A fingerprint of a function's code, insensitive to comments and formatting."""
    func = inspect.unwrap(func)
    fingerprint = _source_fingerprint(func)
    if fingerprint is not None:
        return fingerprint
    code = getattr(func, "__code__", None)
    if code is None:
        msg = f"cannot fingerprint the code of {func!r}: it has neither source nor a code object"
        raise TypeError(msg)
    return hash_bytes(b"code:" + _code_bytes(code))


def _member_function(member: Any) -> Any | None:
    if isinstance(member, staticmethod | classmethod):
        return member.__func__
    if isinstance(member, property):
        return member.fget
    if isinstance(member, types.FunctionType):
        return member
    return None


def class_code_fingerprints(cls: type, stop: tuple[type, ...]) -> dict[str, str]:
    """Fingerprints of the methods a class and its user-defined bases define.

    Classes in ``stop`` (the library's own bases) and everything above them are skipped:
    their code is versioned with the package, not with the user's cell.
    """
    fingerprints: dict[str, str] = {}
    library = {base for klass in stop for base in klass.__mro__}  # pydantic's BaseModel too
    for klass in reversed(cls.__mro__):
        if klass in library or klass is object or klass.__module__.startswith("distilabel_nb."):
            continue
        for name, member in vars(klass).items():
            func = _member_function(member)
            if func is not None and not name.startswith("__"):
                fingerprints[name] = code_fingerprint(func)
    return fingerprints
