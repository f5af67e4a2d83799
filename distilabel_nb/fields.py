"""Pydantic-style fields: annotated class attributes set by keyword.

``Fielded`` collects the annotated attributes of a class and its bases into fields;
``__init__`` takes them as keyword arguments and refuses unknown ones with the list of
known ones. ``RuntimeParameter[T]`` and ``Secret[T]`` mark fields in annotations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import typing
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Optional, TypeVar

import pydantic

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


def _collect_fields(cls: type[pydantic.BaseModel]) -> dict[str, Field]:
    """The parameters of a model class, runtime and secret ones marked (the marks are
    read from the annotations as written, strings included, and pydantic's metadata)."""
    written: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        written.update(inspect.get_annotations(klass))
    fields: dict[str, Field] = {}
    for name, info in cls.model_fields.items():
        markers = _markers(written.get(name, "")) | {
            m for m in info.metadata if m in (_RUNTIME, _SECRET)}
        if "SecretStr" in repr(info.annotation):
            markers.add(_SECRET)
        runtime = _RUNTIME in markers
        required = info.is_required()
        fields[name] = Field(
            name=name,
            default=None if required else info.get_default(call_default_factory=True),
            runtime=runtime,
            secret=_SECRET in markers or name in SECRET_NAMES,
            required=required and not runtime,
        )
    return fields


def _only_converted(kept: Any, given: Any) -> bool:
    """Whether pydantic only changed the type of a value (1 -> 1.0, a tuple -> a list)."""
    if type(kept) is type(given):
        return False
    try:
        return bool(kept == given) or (isinstance(given, tuple) and list(given) == kept)
    except Exception:  # values that cannot compare: keep what pydantic made
        return False


def redact(value: Any) -> str:
    """How a secret is shown anywhere: never its value."""
    return "<redacted>" if value else "<unset>"


def secret_values(obj: Any) -> set[str]:
    """Every secret string held by ``obj``'s fields, nested objects included (objects of
    other libraries may say themselves, with a ``secret_values()`` method)."""
    custom = getattr(obj, "secret_values", None)
    if callable(custom):
        return set(custom())
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


class Fielded(pydantic.BaseModel):
    """Base for steps and LLMs: a pydantic model, as distilabel's steps are.

    ``Field(default=...)``, ``PrivateAttr``, validators and ``model_post_init`` work as in
    pydantic. ``_fields`` lists the parameters the signatures read; unknown or missing
    parameters are refused with the known ones listed. A value pydantic only converted
    (``1`` for a float, a tuple for a list) is kept as given, so cache keys do not move.
    Steps compare and hash by identity; other attributes (a run's context) may be set.
    """

    model_config = pydantic.ConfigDict(
        arbitrary_types_allowed=True, protected_namespaces=(),
        ignored_types=(frozenset, set, functools.cached_property))

    _fields: ClassVar[dict[str, Field]] = {}

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._fields = _collect_fields(cls)

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self._fields))
        if unknown:
            known = ", ".join(sorted(self._fields)) or "none"
            msg = (
                f"{type(self).__name__} got unknown parameter(s) {', '.join(unknown)}; "
                f"its parameters are: {known}"
            )
            raise TypeError(msg)
        model_fields = type(self).model_fields
        values = dict(kwargs)
        for name, field in self._fields.items():
            if name in values:
                continue
            if field.required:
                msg = f"{type(self).__name__} needs the parameter {name!r}"
                raise TypeError(msg)
            if model_fields[name].is_required():  # a runtime parameter without default
                values[name] = None
        super().__init__(**values)
        for name, given in kwargs.items():
            kept = self.__dict__.get(name)
            if kept is not given and _only_converted(kept, given):
                self.__dict__[name] = given

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).model_fields or name in self.__private_attributes__:
            super().__setattr__(name, value)
        else:  # what a run attaches (pipeline, context, clients): not parameters
            object.__setattr__(self, name, value)

    def __repr_args__(self) -> Any:
        for name, field in self._fields.items():
            value = getattr(self, name, None)
            yield name, (redact(value) if field.secret else value)

    def __repr__(self) -> str:
        parts = []
        for name, field in self._fields.items():
            value = getattr(self, name, None)
            shown = redact(value) if field.secret else repr(value)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            parts.append(f"{name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"
