"""The LLM protocol: async generation over a batch of chat inputs, a concurrency limit,
and a synchronous wrapper that works inside a Jupyter kernel.

An ``LLM`` is a ``Fielded`` object: its fields (model, base_url, generation_kwargs, ...)
are described into the signature of the task that uses it, except the ones that do not
change what it generates (concurrency, retries, timeout, prices) and secrets (api_key).
A subclass implements ``agenerate(messages, **generation_kwargs) -> Generation``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ClassVar, TypeVar

from distilabel_nb.cache.source import class_code_fingerprints
from distilabel_nb.fields import Fielded, RuntimeParameter
from distilabel_nb.llms.budget import Budget

__all__ = ["BATCH_PRICE_FACTOR", "CHARS_PER_TOKEN", "DEFAULT_MAX_NEW_TOKENS", "LLM",
           "NOT_SENT", "ChatType", "Generation", "count_tokens"]

#: One chat input: a list of ``{"role": ..., "content": ...}`` messages.
ChatType = list[dict[str, Any]]

#: The error of a request a ``Budget`` refused: it was never sent.
NOT_SENT = "not sent: the run's max_budget was reached"
#: Seconds between asking a full ``Budget`` again (requests in flight come back).
_BUDGET_POLL = 0.005
#: OpenAI's rule of thumb for English text: about four characters per token.
CHARS_PER_TOKEN = 4
#: Tokens each message adds around its content, and the reply's priming (OpenAI's count).
_TOKENS_PER_MESSAGE = 4
_TOKENS_PER_REPLY = 3
#: What one answer is expected to take when no ``max_new_tokens`` is set (distilabel's).
DEFAULT_MAX_NEW_TOKENS = 128
#: Batch APIs (OpenAI's, Anthropic's) charge half the list price.
BATCH_PRICE_FACTOR = 0.5


def count_tokens(messages: ChatType) -> int:
    """The characters-per-token estimate of a chat's prompt tokens (see ``LLM``)."""
    total = _TOKENS_PER_REPLY
    for message in messages:
        content = message.get("content", "")
        if isinstance(content, list):  # content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        total += _TOKENS_PER_MESSAGE + -(-len(str(content or "")) // CHARS_PER_TOKEN)
    return total

_T = TypeVar("_T")


@dataclasses.dataclass
class Generation:
    """What an LLM returned for one input: the text (None on error) and token usage."""

    text: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class LLM(Fielded):
    """Base of the LLM clients. Subclasses implement ``agenerate``."""

    #: Fields that do not change what the model generates: kept out of the signature.
    #: How the requests travel (one by one, or as a provider batch job) does not change
    #: the answers either: rows generated either way are reused either way.
    signature_skip: ClassVar[frozenset[str]] = frozenset({
        "max_concurrency", "max_retries", "timeout", "price_per_million_tokens",
        "price_per_million_input_tokens", "price_per_million_output_tokens",
        "use_offline_batch_generation", "offline_batch_generation_block_until_done"})

    generation_kwargs: RuntimeParameter[dict[str, Any]] = {}
    #: At most this many requests in flight at once.
    max_concurrency: int = 64
    #: Price in your currency per million tokens (one price for all tokens), for reports.
    price_per_million_tokens: float | None = None
    #: Or separate prices for prompt (input) and completion (output) tokens.
    price_per_million_input_tokens: float | None = None
    price_per_million_output_tokens: float | None = None
    #: As distilabel's: send the rows to the provider's batch API (half the price) as one
    #: job per run; a run before the job is done raises ``OfflineBatchPendingError``.
    use_offline_batch_generation: bool = False
    #: Seconds to wait for the job, polling (None: do not wait, collect on a later run).
    offline_batch_generation_block_until_done: int | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()

    # -- what the model is -----------------------------------------------------------
    @property
    def model_name(self) -> str:
        return str(getattr(self, "model", None) or type(self).__name__)

    def code_fingerprints(self) -> dict[str, str]:
        """Fingerprints of user code in a custom LLM subclass (library code excluded)."""
        return class_code_fingerprints(type(self), stop=(LLM,))

    def signature_description(self) -> dict[str, Any]:
        """What the task's signature covers of this LLM (no secrets, no tuning knobs)."""
        from distilabel_nb.cache.describe import describe_fields

        description: dict[str, Any] = {"class": type(self).__qualname__}
        description.update(describe_fields(self, skip=self.signature_skip))
        code = self.code_fingerprints()
        if code:
            description["code"] = code
        return description

    # -- estimates and cost --------------------------------------------------------------
    def count_tokens(self, messages: ChatType) -> int:
        """About how many prompt tokens ``messages`` are: ``CHARS_PER_TOKEN`` characters
        per token plus OpenAI's per-message framing. No tokenizer file is downloaded
        (tiktoken fetches its BPE files from the internet on first use); a subclass with
        a local tokenizer may count exactly."""
        return count_tokens(messages)

    def expected_output_tokens(self, **generation_kwargs: Any) -> int:
        """Tokens one answer may take: ``max_new_tokens`` (or ``max_tokens``), else
        ``DEFAULT_MAX_NEW_TOKENS`` (distilabel's default)."""
        kwargs = {**(self.generation_kwargs or {}), **generation_kwargs}
        for name in ("max_new_tokens", "max_tokens", "max_completion_tokens"):
            value = kwargs.get(name)
            if isinstance(value, int) and value > 0:
                return value
        return DEFAULT_MAX_NEW_TOKENS

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """The price of these tokens, or None when no price was given (half the price
        when they go through a provider's batch API)."""
        full = self.list_cost(input_tokens, output_tokens)
        if full is None or not getattr(self, "use_offline_batch_generation", False):
            return full
        return full * BATCH_PRICE_FACTOR

    def list_cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """The list price of these tokens, or None when no price was given."""
        per_in = self.price_per_million_input_tokens
        per_out = self.price_per_million_output_tokens
        if per_in is None and per_out is None:
            if self.price_per_million_tokens is None:
                return None
            per_in = per_out = self.price_per_million_tokens
        return ((per_in or 0.0) * input_tokens + (per_out or 0.0) * output_tokens) / 1e6

    # -- offline batch generation (a provider's batch API) ----------------------------
    def submit_batch(self, chats: Sequence[ChatType], keys: Sequence[str]) -> str:
        """Send ``chats`` as one provider batch job (``keys`` name the rows); its id."""
        msg = (f"{type(self).__name__} has no batch API: use_offline_batch_generation=True "
               "needs an LLM that implements submit_batch (OpenAILLM)")
        raise NotImplementedError(msg)

    def poll_batch(self, job_id: str) -> Any:
        """Where the job stands (``llms.openai_batch.BatchState``)."""
        raise NotImplementedError(type(self).__name__)

    def batch_results(self, state: Any) -> dict[str, Generation]:
        """A finished job's answers by row key."""
        raise NotImplementedError(type(self).__name__)

    # -- lifecycle ---------------------------------------------------------------------
    def load(self) -> None:
        """Prepare for generation (the client is created lazily inside the event loop)."""

    def unload(self) -> None:
        """Close the client and the private event loop."""
        loop = self._loop
        if loop is None:
            return
        try:
            self._run(self.aclose())
        finally:
            self._loop = None
            loop.close()

    async def aclose(self) -> None:
        """Close network clients; called inside the private loop by ``unload``."""

    # -- generation --------------------------------------------------------------------
    async def agenerate(self, messages: ChatType, **generation_kwargs: Any) -> Generation:
        """Generate for one chat input. Errors may be raised or returned in ``error``."""
        msg = f"{type(self).__name__} must implement agenerate()"
        raise NotImplementedError(msg)

    async def agenerate_batch(self, inputs: Sequence[ChatType],
                              on_result: Callable[[int, Generation], None] | None = None,
                              *, budget: Budget | None = None,
                              answer_tokens: float | None = None,
                              **generation_kwargs: Any) -> list[Generation]:
        """Generate for every input, at most ``max_concurrency`` at once, in input order.

        An input that raises gets ``Generation(None, error=...)``; the others go on.
        ``on_result(index, generation)`` is called as each one completes. With a
        ``budget``, each request first reserves its expected cost (``answer_tokens`` per
        answer, else ``expected_output_tokens()``); once the budget refuses, the inputs
        not sent get ``Generation(None, error=NOT_SENT)``.
        """
        kwargs = {**(self.generation_kwargs or {}), **generation_kwargs}
        limit = asyncio.Semaphore(max(1, int(self.max_concurrency or 1)))
        answer = answer_tokens if answer_tokens is not None else \
            self.expected_output_tokens(**generation_kwargs)

        async def one(index: int, messages: ChatType) -> Generation:
            async with limit:
                hold = 0.0
                if budget is not None:
                    hold = self.cost(self.count_tokens(messages), round(answer)) or 0.0
                    while (granted := budget.reserve(hold)) is None:
                        await asyncio.sleep(_BUDGET_POLL)  # holds in flight fill it
                    if not granted:
                        return Generation(None, error=NOT_SENT)
                try:
                    result = await self.agenerate(messages, **kwargs)
                except Exception as error:
                    result = Generation(None,
                                        error=self.scrub(f"{type(error).__name__}: {error}"))
                except BaseException:  # cancelled: nothing came back to pay for
                    if budget is not None:
                        budget.settle(hold, 0.0)
                    raise
                if budget is not None:
                    budget.settle(hold, self.cost(result.input_tokens,
                                                  result.output_tokens) or 0.0)
            if on_result is not None:
                on_result(index, result)
            return result

        return list(await asyncio.gather(*(one(i, m) for i, m in enumerate(inputs))))

    def generate(self, inputs: Sequence[ChatType],
                 on_result: Callable[[int, Generation], None] | None = None,
                 *, budget: Budget | None = None, answer_tokens: float | None = None,
                 **generation_kwargs: Any) -> list[Generation]:
        """Synchronous ``agenerate_batch``: runs in a private event loop of this LLM."""
        return self._run(self.agenerate_batch(inputs, on_result, budget=budget,
                                              answer_tokens=answer_tokens,
                                              **generation_kwargs))

    def scrub(self, text: str) -> str:
        """``text`` with any secret of this LLM replaced (for error messages)."""
        for name, field in self._fields.items():
            value = getattr(self, name, None)
            if field.secret and isinstance(value, str) and value:
                text = text.replace(value, "<redacted>")
        for value in self._extra_secrets():
            if value:
                text = text.replace(value, "<redacted>")
        return text

    def _extra_secrets(self) -> list[str]:
        """Secrets not held in fields (e.g. a key read from the environment)."""
        return []

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` to completion in this LLM's private loop.

        In a thread without a running loop (the step's own thread) the private loop runs
        right here. Where a loop is already running (a Jupyter kernel's main thread), the
        private loop runs in a helper thread and this call waits for it.
        """
        with self._loop_lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
            loop = self._loop
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return loop.run_until_complete(coro)
        with concurrent.futures.ThreadPoolExecutor(1, "distilabel_nb-llm") as pool:
            return pool.submit(loop.run_until_complete, coro).result()
