"""``OfflineLLM``: a stand-in LLM for demos, tests and the quickstart notebook.

It does not run a model and never touches the network. Its "generation" is a short,
deterministic text derived from the prompt and the generation kwargs, so that the cache
behaves exactly as with a real model: the same input gives the same output, a changed
temperature gives a different one. Token counts are whitespace word counts, standing in
for a tokenizer. Swap it for ``OpenAILLM`` to get real generations.
"""

from __future__ import annotations

import asyncio
from typing import Any

from distilabel_nb.cache.signature import hash_value
from distilabel_nb.llms.base import LLM, ChatType, Generation

__all__ = ["OfflineLLM"]

_WORDS = ("clear", "brief", "careful", "useful", "plain", "thoughtful", "precise", "friendly")


class OfflineLLM(LLM):
    """A deterministic fake LLM: no model, no network (a stand-in, not a model)."""

    model: str = "offline-echo"
    #: Seconds each request "takes" (simulated with ``asyncio.sleep``).
    latency: float = 0.0
    #: Inputs whose last message contains one of these strings fail (to try retries).
    fail_on: list[str] = []

    async def agenerate(self, messages: ChatType, **generation_kwargs: Any) -> Generation:
        if self.latency:
            await asyncio.sleep(self.latency)
        prompt = str(messages[-1].get("content", "")) if messages else ""
        if any(marker in prompt for marker in self.fail_on):
            return Generation(None, error="OfflineLLM: simulated failure (fail_on)")
        digest = hash_value({"messages": messages, "kwargs": generation_kwargs})
        adjective = _WORDS[int(digest[:4], 16) % len(_WORDS)]
        words = prompt.split()
        text = (f"A {adjective} answer to “{' '.join(words[:12])}"
                f"{' …' if len(words) > 12 else ''}” [{digest[:6]}]")
        limit = generation_kwargs.get("max_new_tokens")
        if isinstance(limit, int) and limit > 0:
            text = " ".join(text.split()[:limit])
        input_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        return Generation(text, input_tokens=input_tokens, output_tokens=len(text.split()))
