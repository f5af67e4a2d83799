"""What a distilabel step's cache key covers, as a readable description.

Its class (module and name) and distilabel's version; every pydantic field, nested
models (the LLM) by their own fields, runtime parameters included since they are fields
too; the code of user-defined classes (a ``Step`` subclass in a notebook cell) and of
``@step`` functions, through ``cache/source.py``'s fingerprints. Never a secret: fields
holding a ``SecretStr`` or named like a key or token are left out, at any depth. Large
lists (a loader's ``data``) are described by their length and a content hash, so the
description stays small while the key still changes with the content.
"""

from __future__ import annotations

import enum
import inspect
import pathlib
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from distilabel_nb.cache.signature import hash_value
from distilabel_nb.cache.source import class_code_fingerprints, code_fingerprint
from distilabel_nb.fields import SECRET_NAMES

__all__ = ["LLM_NOT_IN_ROWS", "NOT_IN_SIGNATURE", "describe_model", "describe_step",
           "is_secret_name", "secrets_of", "user_code"]

#: Step fields that never enter the key: how batches are cut and run, not what they hold
#: (the batch size is in the key's chunk instead), and distilabel's own exclusions.
NOT_IN_SIGNATURE = frozenset({
    "pipeline", "name", "use_cache", "input_batch_size", "batch_size", "resources",
    "exclude_from_signature", "disable_cuda_device_placement", "gpu_memory_utilization",
    "jobs_ids", "offline_batch_generation_block_until_done",
})
#: Fields of nested models (the LLM) left out, as distilabel leaves them out.
_NESTED_SKIP = frozenset({"jobs_ids", "offline_batch_generation_block_until_done",
                          "exclude_from_signature", "pipeline"})
#: LLM fields that do not change an answer: left out of the row cache's key.
LLM_NOT_IN_ROWS = _NESTED_SKIP | {"use_offline_batch_generation", "timeout", "max_retries",
                                   "generation_kwargs"}
#: Libraries whose classes are versioned with the package, not with the user's code.
_LIBRARIES = ("distilabel", "distilabel_nb", "pydantic", "abc", "typing", "builtins")
#: Lists longer than this (or of more than two dicts: rows) are described by length and
#: content hash.
_LONG = 16


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered.endswith(("api_key", "_token", "password",
                                                        "secret"))


def _is_library(klass: type) -> bool:
    return klass.__module__.split(".")[0] in _LIBRARIES \
        or klass.__name__ == "RuntimeParametersModel"  # made by distilabel's @step


def user_code(cls: type) -> dict[str, str]:
    """Fingerprints of the user code a distilabel class runs: the function of a
    ``@step`` step, else the methods of every user-defined class in its MRO."""
    func = _decorated_function(cls)
    if func is not None:
        return {func.__name__: code_fingerprint(func)}
    stop = tuple(klass for klass in cls.__mro__ if _is_library(klass))
    return class_code_fingerprints(cls, stop=stop)


def _decorated_function(cls: type) -> Any:
    """The user's function behind a class made by distilabel's ``@step`` (None if not)."""
    process = cls.__dict__.get("process")
    if process is None or not inspect.isfunction(process) \
            or not process.__module__.startswith("distilabel."):
        return None
    func = inspect.getclosurevars(process).nonlocals.get("func")
    return func if callable(func) else None


def describe_value(value: Any) -> Any:
    """A field's value as plain data for the key (secrets already left out)."""
    if isinstance(value, SecretStr | SecretBytes):
        return "<redacted>"
    if isinstance(value, BaseModel):
        return describe_model(value, _NESTED_SKIP)
    if isinstance(value, dict):
        return {str(k): describe_value(v) for k, v in value.items()
                if not (isinstance(k, str) and is_secret_name(k))}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
        if len(items) > _LONG or (len(items) > 2 and all(isinstance(v, dict) for v in items)):
            return f"{len(items):,} rows, content {_content_hash(items)[:12]}"
        return [describe_value(v) for v in items]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, enum.Enum):
        return describe_value(value.value)
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if callable(value):
        name = getattr(value, "__qualname__", type(value).__qualname__)
        try:
            return {"function": name, "code": code_fingerprint(value)}
        except (TypeError, OSError):
            return {"function": name}
    return _jsonable(value)


def _content_hash(items: list[Any]) -> str:
    try:
        return hash_value(items)
    except TypeError:
        return hash_value([describe_value(v) for v in items])


def _jsonable(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    try:
        return to_jsonable_python(value)
    except Exception:  # an object pydantic cannot serialize: its type stands for it
        return f"<{type(value).__module__}.{type(value).__qualname__}>"


def describe_model(model: BaseModel, skip: frozenset[str]) -> dict[str, Any]:
    """A pydantic model (a step, an LLM) by class, every field but ``skip`` and secrets,
    and the user code its class runs."""
    cls = type(model)
    description: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    for name in type(model).model_fields:
        if name in skip or is_secret_name(name):
            continue
        value = model.__dict__.get(name)  # not getattr: deprecated fields would warn
        if isinstance(value, SecretStr | SecretBytes):
            continue
        description[name] = describe_value(value)
    code = user_code(cls)
    if code:
        description["code"] = code
    return description


def describe_step(step: BaseModel) -> dict[str, Any]:
    """The description whose hash is a distilabel step's signature."""
    import distilabel

    description = describe_model(step, NOT_IN_SIGNATURE)
    description["distilabel"] = distilabel.__version__
    for which in ("inputs", "outputs"):
        getter = getattr(step, f"get_{which}", None)
        try:
            description[which] = sorted(getter()) if callable(getter) else None
        except Exception:  # columns read from data it does not hold (an empty loader)
            description[which] = None
    return description


def secrets_of(value: Any, named: bool = False) -> set[str]:
    """Every secret string a model holds at any depth (to take out of error messages)."""
    found: set[str] = set()
    if isinstance(value, SecretStr):
        found.add(value.get_secret_value())
    elif isinstance(value, str) and named:
        found.add(value)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            if name != "pipeline":
                found |= secrets_of(value.__dict__.get(name), is_secret_name(name))
    elif isinstance(value, dict):
        for key, item in value.items():
            found |= secrets_of(item, isinstance(key, str) and is_secret_name(key))
    elif isinstance(value, list | tuple):
        for item in value:
            found |= secrets_of(item)
    return {secret for secret in found if len(secret) >= 4}
