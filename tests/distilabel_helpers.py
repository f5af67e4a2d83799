"""Shared by the tests of distilabel's own classes on our engine."""

from __future__ import annotations

import warnings
from typing import Any

warnings.filterwarnings("ignore", module="pydantic")  # distilabel's own Field() warnings

#: The key the tests give distilabel's LLMs: it must never reach a key, file or log.
API_KEY = "sk-distilabel-SECRET-0123456789"


def rows(distiset: Any, config: str = "default") -> list[dict[str, Any]]:
    """A Distiset's rows as dicts, whatever its split type (Arrow table or Dataset)."""
    split = distiset[config]["train"]
    to_rows = getattr(split, "to_pylist", None) or split.to_list
    return list(to_rows())


def instructions(n: int) -> list[dict[str, Any]]:
    return [{"instruction": f"question number {i}"} for i in range(n)]
