"""Shared by both sides of the LLM benchmark: the rows and the server's request count.

Runs under the project's Python and under distilabel's venv (standard library only).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

MODEL = "bench-model"


def rows(n: int) -> list[dict[str, Any]]:
    return [{"instruction": f"Write a short note about topic number {i}."} for i in range(n)]


def server_count(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/stats", timeout=10) as response:
        return int(json.loads(response.read())["count"])
