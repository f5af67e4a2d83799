"""``OpenAILLM``: any OpenAI-compatible chat completions server, through the openai SDK.

OpenAI itself, vLLM, TGI, Ollama, llama.cpp server, LiteLLM...: ``base_url`` selects the
server. The API key comes from ``api_key=`` or ``$OPENAI_API_KEY``; it is sent in the
``Authorization`` header and is never part of a signature, a cache file, a log line, an
error message or the report.

HTTP goes through the SDK's aiohttp client (``openai.DefaultAioHttpClient``, the
``openai[aiohttp]`` extra): keep-alive connections without httpx's pool, which costs
milliseconds of CPU per request at hundreds of requests in flight. ``http_transport="httpx"``
keeps the SDK's default httpx client instead. Retries with exponential backoff on
408/409/429/5xx, timeouts and connection errors are the SDK's (``max_retries``; a server's
``Retry-After`` is honoured). An error that remains
becomes that row's error: its output is None and the error is recorded in the row's
metadata, and the row is retried on the next run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from distilabel_nb.fields import Secret
from distilabel_nb.llms.base import LLM, ChatType, Generation

if TYPE_CHECKING:
    from distilabel_nb.llms.openai_batch import BatchState

__all__ = ["OpenAILLM", "parse_completion", "to_openai_kwargs"]

#: distilabel's generation kwarg names -> the chat completions API's.
_RENAMED = {"max_new_tokens": "max_tokens", "stop_sequences": "stop"}


def to_openai_kwargs(generation_kwargs: dict[str, Any]) -> dict[str, Any]:
    """distilabel-style generation kwargs as chat completions request fields.

    ``max_new_tokens`` -> ``max_tokens``, ``stop_sequences`` -> ``stop``; ``temperature``,
    ``top_p``, ``stop``, ``frequency_penalty``, ``presence_penalty``, ``seed``,
    ``response_format``, ``logprobs``, ... pass as they are; ``extra_body`` is merged into
    the request (server-specific fields such as vLLM's ``top_k``). None values are dropped.
    """
    body: dict[str, Any] = {}
    for key, value in generation_kwargs.items():
        if value is None:
            continue
        if key == "extra_body" and isinstance(value, dict):
            body.update(value)
            continue
        body[_RENAMED.get(key, key)] = value
    return body


class OpenAILLM(LLM):
    """Chat completions on an OpenAI-compatible server (``pip install openai``)."""

    signature_skip: ClassVar[frozenset[str]] = LLM.signature_skip | {"http_transport"}

    model: str
    base_url: str | None = None
    api_key: Secret[str] = None
    max_retries: int = 6
    #: Seconds per request attempt.
    timeout: float = 120.0
    #: "auto" (or "aiohttp"): the SDK's aiohttp client when aiohttp is installed, else its
    #: httpx client; "httpx": always the SDK's httpx client.
    http_transport: str = "auto"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: Any = None
        self._post_options: Any = None

    def _resolved_key(self) -> str:
        key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if key:
            return str(key)
        if self.base_url is None:
            msg = ("OpenAILLM needs an API key: pass api_key=... or set OPENAI_API_KEY (or "
                   "give base_url= for a local server that needs none)")
            raise ValueError(msg)
        return "EMPTY"  # local servers (vLLM, llama.cpp) accept any key

    def _extra_secrets(self) -> list[str]:
        env = os.environ.get("OPENAI_API_KEY")
        return [env] if env else []

    def _make_client(self) -> Any:
        try:
            from openai import AsyncOpenAI
        except ImportError as error:
            msg = "OpenAILLM needs the openai package: pip install 'distilabel_nb[llm]'"
            raise ImportError(msg) from error
        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL") or None
        return _client_class(AsyncOpenAI)(api_key=self._resolved_key(), base_url=base_url,
                           max_retries=int(self.max_retries), timeout=float(self.timeout),
                           http_client=self._http_client())

    def _http_client(self) -> Any:
        """The SDK's aiohttp client (None: the SDK's default httpx client)."""
        if self.http_transport == "httpx":
            return None
        try:
            import aiohttp  # noqa: F401 (only checks that the extra is installed)
            from openai import DefaultAioHttpClient
        except ImportError:
            if self.http_transport == "aiohttp":
                msg = ("OpenAILLM(http_transport='aiohttp') needs aiohttp: "
                       "pip install 'openai[aiohttp]'")
                raise ImportError(msg) from None
            return None
        return DefaultAioHttpClient(timeout=float(self.timeout))

    def load(self) -> None:
        self._resolved_key()  # fail early, before any row is sent

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # -- offline batch generation (OpenAI's Batch API, half the price) -------------------
    def submit_batch(self, chats: Sequence[ChatType], keys: Sequence[str]) -> str:
        from distilabel_nb.llms.openai_batch import submit_batch

        body = {"model": self.model, **to_openai_kwargs(dict(self.generation_kwargs or {}))}
        return self._run(submit_batch(self._ensure_client(), chats, keys, body))

    def poll_batch(self, job_id: str) -> BatchState:
        from distilabel_nb.llms.openai_batch import poll_batch

        return self._run(poll_batch(self._ensure_client(), job_id))

    def batch_results(self, state: BatchState) -> dict[str, Generation]:
        from distilabel_nb.llms.openai_batch import batch_results

        return self._run(batch_results(self._ensure_client(), state, parse_completion))

    def _ensure_client(self) -> Any:
        if self._client is None:
            from openai._models import FinalRequestOptions

            self._post_options = FinalRequestOptions.construct(method="post",
                                                               url="/chat/completions")
            self._client = self._make_client()
        return self._client

    async def agenerate(self, messages: ChatType, **generation_kwargs: Any) -> Generation:
        client = self._ensure_client()
        body = {"model": self.model, "messages": messages, **to_openai_kwargs(generation_kwargs)}
        try:
            # The SDK's generic request (what ``client.post`` does): its auth, retries,
            # timeouts and errors, without the typed-dict transform and model parsing of
            # ``chat.completions.create``, nor the per-call construction of the request
            # options (a copy of one prepared here once). The body goes as orjson bytes
            # and the answer comes back as bytes that orjson parses.
            options = self._post_options.model_copy(update={"content": orjson.dumps(body)})
            raw = await client.request(bytes, options)
        except Exception as error:
            return Generation(None, error=self.scrub(_describe_error(error)))
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = raw.decode("utf-8", "replace")  # not JSON: reported as such
        return parse_completion(data)


@functools.cache
def _client_class(base: type) -> type:
    """``AsyncOpenAI`` that parses its base URL + a path once, not on every request.

    The SDK re-parses ``base_url`` + ``"/chat/completions"`` into an ``httpx.URL`` on
    every request; a URL is immutable, so the result is kept (per base URL and path, a
    few dozen at most). Everything else (auth, headers, retries, timeouts) is the SDK's.
    """

    class _Client(base):
        def _prepare_url(self, url: str) -> Any:
            cache: dict[tuple[str, str], Any] = self.__dict__.setdefault("_nb_urls", {})
            key = (str(self.base_url), url)
            found = cache.get(key)
            if found is None:
                found = super()._prepare_url(url)
                if len(cache) < _URLS_KEPT:
                    cache[key] = found
            return found

    _Client.__name__ = _Client.__qualname__ = f"{base.__name__}WithUrlCache"
    return _Client


#: URLs a client keeps parsed (chat completions; batch polls add one per job id).
_URLS_KEPT = 64


def parse_completion(data: Any) -> Generation:
    """A chat completion's JSON as a ``Generation`` (text, usage, or the error)."""
    if not isinstance(data, dict):
        return Generation(None, error=f"unexpected response: {str(data)[:200]}")
    usage = data.get("usage") or {}
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    choices = data.get("choices") or []
    if not choices:
        return Generation(None, input_tokens, output_tokens, error="the response has no choices")
    message = choices[0].get("message") or {}
    content = message.get("content")
    if content is None and message.get("tool_calls"):
        content = str(message["tool_calls"])
    if content is None:
        reason = choices[0].get("finish_reason")
        return Generation(None, input_tokens, output_tokens,
                          error=f"the response has no content (finish_reason={reason})")
    return Generation(str(content), input_tokens, output_tokens)


def _describe_error(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    message = getattr(error, "message", None) or str(error)
    where = f" {status}" if status is not None else ""
    return f"{type(error).__name__}{where}: {message}"
