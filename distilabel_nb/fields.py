"""Pydantic-style fields: annotated class attributes set by keyword.

``Fielded`` collects the annotated attributes of a class and its bases into fields;
``__init__`` takes them as keyword arguments and refuses unknown ones with the list of
known ones. ``RuntimeParameter[T]`` and ``Secret[T]`` mark fields in annotations.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import typing
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Optional, TypeVar

__all__ = ["SECRET_NAMES", "Field", "Fielded", "RuntimeParameter", "Secret", "redact", "scrub",
           "scrub_error", "secret_values"]

_RUNTIME = "distilabel_nb:runtime-parameter"
_SECRET = "distilabel_nb:secret"

#: Field names that are always treated as secrets, whatever their annotation.
SECRET_NAMES = frozenset({"api_key", "token", "hf_token", "password", "secret"})


_T = TypeVar("_T")

if TYPE_CHECKING:
    #: ``RuntimeParameter[T]``: a parameter settable at ``pipeline.run(parameters=...)``.
    RuntimeParameter = Optional[_T]  # noqa: UP045 (a generic alias for type checkers)
    #: ``Secret[T]``: a value that is sent but never stored, hashed, logged or shown.
    Secret = Optional[_T]  # noqa: UP045
else:

    class RuntimeParameter:
        """``RuntimeParameter[T]``: a parameter settable at ``pipeline.run(parameters=...)``."""

        def __class_getitem__(cls, item: Any) -> Any:
            return Annotated[typing.Optional[item], _RUNTIME]  # noqa: UP045

    class Secret:
        """``Secret[T]``: a value that is sent but never stored, hashed, logged or shown."""

        def __class_getitem__(cls, item: Any) -> Any:
            return Annotated[typing.Optional[item], _SECRET]  # noqa: UP045


@dataclasses.dataclass(frozen=True)
class Field:
    """One declared parameter of a ``Fielded`` class."""

    name: str
    default: Any
    runtime: bool = False
    secret: bool = False
    required: bool = False


def _markers(annotation: Any) -> set[str]:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    found = set()
    if "RuntimeParameter" in text or _RUNTIME in text:
        found.add(_RUNTIME)
    if "Secret[" in text or _SECRET in text or "SecretStr" in text:
        found.add(_SECRET)
    return found


def redact(value: Any) -> str:
    """How a secret is shown anywhere: never its value."""
    return "<redacted>" if value else "<unset>"


def secret_values(obj: Any) -> set[str]:
    """Every secret string held by ``obj``'s fields, nested objects included."""
    found: set[str] = set()
    if isinstance(obj, Fielded):
        for name, field in obj._fields.items():
            value = getattr(obj, name, None)
            if field.secret and isinstance(value, str) and len(value) >= 4:
                found.add(value)
            elif isinstance(value, Fielded):
                found |= secret_values(value)
    return found


def scrub(text: str, secrets: set[str]) -> str:
    """``text`` with every secret in ``secrets`` replaced by ``<redacted>``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text


def scrub_error(error: Exception, secrets: set[str]) -> Exception:
    """``error`` with ``secrets`` taken out of its message (in place)."""
    if secrets and any(secret in str(error) for secret in secrets):
        error.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in error.args)
        for name in ("message", "msg"):
            value = getattr(error, name, None)
            if isinstance(value, str):
                with contextlib.suppress(AttributeError):
                    setattr(error, name, scrub(value, secrets))
    return error


class Fielded:
    """Base for steps and LLMs: fields from annotations, keyword construction."""

    _fields: ClassVar[dict[str, Field]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            annotations = inspect.get_annotations(klass)
            for name, annotation in annotations.items():
                if name.startswith("_") or "ClassVar" in str(annotation):
                    continue
                markers = _markers(annotation)
                present = name in klass.__dict__
                default = klass.__dict__.get(name, fields[name].default if name in fields else None)
                if isinstance(default, property):
                    continue
                fields[name] = Field(
                    name=name,
                    default=default,
                    runtime=_RUNTIME in markers or (name in fields and fields[name].runtime),
                    secret=_SECRET in markers or name in SECRET_NAMES,
                    required=not present and name not in fields,
                )
        cls._fields = fields

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self._fields))
        if unknown:
            known = ", ".join(sorted(self._fields)) or "none"
            msg = (
                f"{type(self).__name__} got unknown parameter(s) {', '.join(unknown)}; "
                f"its parameters are: {known}"
            )
            raise TypeError(msg)
        for name, field in self._fields.items():
            if name in kwargs:
                value = kwargs[name]
            elif field.required and not field.runtime:
                msg = f"{type(self).__name__} needs the parameter {name!r}"
                raise TypeError(msg)
            else:
                value = copy.deepcopy(field.default)
            object.__setattr__(self, name, value)

    def field_values(self) -> dict[str, Any]:
        """Every field's current value (secrets included: for sending, never storing)."""
        return {name: getattr(self, name) for name in self._fields}

    def __repr__(self) -> str:
        parts = []
        for name, field in self._fields.items():
            value = getattr(self, name, None)
            shown = redact(value) if field.secret else repr(value)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            parts.append(f"{name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"
