"""A small OpenAI-compatible HTTP server for the tests and the LLM benchmark.

Real HTTP/1.1 with keep-alive on 127.0.0.1, written on ``asyncio`` streams (no extra
dependency). It implements ``POST /v1/chat/completions`` (and ``GET /v1/models``, and
``GET /v1/stats`` with the request count, and OpenAI's Batch API: ``openai_batch_api.py``),
answers deterministically from the prompt and the sampling parameters, reports ``usage``,
counts requests, records the ``Authorization`` header, can fail chosen prompts, and can
wait a fixed latency before answering.

In the tests: ``with OpenAIServer() as server: ... server.base_url``. For the benchmark,
as a process: ``python tests/openai_server.py --latency 0.02`` prints ``PORT <n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from typing import Any

try:  # a package in the tests, a script for the benchmark
    from tests.openai_batch_api import BatchAPI
except ImportError:
    from openai_batch_api import BatchAPI  # type: ignore[no-redef]

__all__ = ["OpenAIServer", "answer_for"]


def answer_for(prompt: str, body: dict[str, Any]) -> str:
    """The deterministic reply to ``prompt`` under the request's sampling parameters."""
    temperature = body.get("temperature")
    suffix = f" (t={temperature})" if temperature is not None else ""
    return f"answer to: {prompt}{suffix}"


def _prompt_of(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    last = users[-1] if users else (messages[-1] if messages else {})
    content = last.get("content", "")
    if isinstance(content, list):  # content parts
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


def _n_tokens(text: str) -> int:
    return len(text.split())


class OpenAIServer:
    """An OpenAI-compatible chat completions server in a background thread."""

    def __init__(self, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0,
                 record: bool = True) -> None:
        self.latency = latency
        self.host = host
        self.port = port
        self.record = record
        #: Prompts containing one of these substrings get ``fail_status``.
        self.fail_prompts: set[str] = set()
        self.fail_status = 500
        #: prompt substring -> how many more times to fail it before answering.
        self.flaky: dict[str, int] = {}
        self.requests: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        self.count = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        #: OpenAI's Batch API; its requests are answered as chat completions, uncounted.
        self.batch_api = BatchAPI(lambda body: (200, self.completion(body)))

    # -- observing -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def prompts(self) -> list[str]:
        """The prompts of every recorded request, in arrival order."""
        with self._lock:
            return [_prompt_of(body) for body in self.requests]

    def prompt_counts(self) -> Counter[str]:
        return Counter(self.prompts())

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.auth_headers.clear()
            self.count = 0
            self.failures = 0

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> OpenAIServer:
        self._thread = threading.Thread(target=self._serve_forever, daemon=True,
                                        name="openai-test-server")
        self._thread.start()
        if not self._ready.wait(10):
            msg = "the test OpenAI server did not start"
            raise RuntimeError(msg)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._server is not None:
            loop.call_soon_threadsafe(self._server.close)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_forever(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(
            asyncio.start_server(self._handle, self.host, self.port, backlog=1024))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.close()

    # -- HTTP ------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                raw = await reader.readexactly(length) if length else b""
                status, payload, extra = await self._respond(method, path, headers, raw)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                reason = {200: "OK", 404: "Not Found"}.get(status, "Error")
                out = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
                       f"Content-Length: {len(data)}", "Connection: keep-alive"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(self, method: str, path: str, headers: dict[str, str],
                       raw: bytes) -> tuple[int, Any, dict[str, str]]:
        if method == "GET" and path.rstrip("/").endswith("/stats"):
            return 200, {"count": self.count, "failures": self.failures}, {}
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]}, {}
        if "/files" in path or "/batches" in path:  # the Batch API (openai_batch_api.py)
            status, payload = self.batch_api.respond(method, path, headers, raw)
            return status, payload, {}
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {method} {path}"}}, {}
        body = json.loads(raw or b"{}")
        prompt = _prompt_of(body)
        with self._lock:
            self.count += 1
            if self.record:
                self.requests.append(body)
                self.auth_headers.append(headers.get("authorization", ""))
            failing = any(s in prompt for s in self.fail_prompts)
            for key, left in self.flaky.items():
                if key in prompt and left > 0:
                    self.flaky[key] = left - 1
                    failing = True
            if failing:
                self.failures += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if failing:
            error = {"error": {"message": f"simulated failure ({self.fail_status})",
                               "type": "server_error", "code": None}}
            return self.fail_status, error, {"retry-after-ms": "5"}
        return 200, self.completion(body), {}

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat completion answering ``body``, with usage (the batch API's too)."""
        text = answer_for(_prompt_of(body), body)
        prompt_tokens = sum(_n_tokens(str(m.get("content", "")))
                            for m in body.get("messages") or [])
        completion_tokens = _n_tokens(text)
        return {
            "id": f"chatcmpl-{self.count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "test-model"),
            "choices": [{"index": i, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": text}}
                        for i in range(int(body.get("n") or 1))],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    args = parser.parse_args()
    server = OpenAIServer(latency=args.latency, port=args.port, record=False).start()
    print(f"PORT {server.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
