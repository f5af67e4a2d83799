"""A lean HTTP/1.1 transport for plain ``http://`` OpenAI-compatible servers.

Local inference servers (vLLM, TGI, Ollama, llama.cpp) are reached over plain HTTP, often
with hundreds of requests in flight. The httpx connection pool costs milliseconds of CPU
per request at that concurrency, which caps a notebook at a few hundred requests per
second; this transport keeps a pool of keep-alive ``asyncio`` connections and writes each
request in one send. It only speaks what these servers answer to a JSON POST: a
Content-Length or chunked body, keep-alive or close. HTTPS and proxies keep the SDK's
default transport.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

__all__ = ["httpx_module", "make_http_client"]


def httpx_module() -> Any:
    """The httpx module the installed openai SDK is built on (httpx, or httpx2)."""
    import openai._base_client as base

    return getattr(base, "httpx2", None) or getattr(base, "httpx")  # noqa: B009 (either)


#: Request headers this transport sets itself (no compressed answers to decode).
_DROPPED = frozenset({"content-length", "transfer-encoding", "accept-encoding"})


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> tuple[bytes, bool]:
    """The response body, and whether the connection can be reused."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # trailers end with an empty line
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return b"".join(parts), True
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"])), True
    return await reader.read(), False  # body until close


def make_http_client(base_url: str, timeout: float) -> Any:
    """An ``httpx.AsyncClient`` for the SDK, on the lean transport if ``base_url`` is http."""
    if urlsplit(base_url).scheme != "http":
        return None
    httpx = httpx_module()

    class LeanTransport(httpx.AsyncBaseTransport):  # type: ignore[name-defined]
        def __init__(self) -> None:
            self._idle: dict[tuple[str, int], list[_Connection]] = {}

        async def _connect(self, host: str, port: int, fresh: bool) -> _Connection:
            pool = self._idle.get((host, port))
            if pool and not fresh:
                return pool.pop()
            reader, writer = await asyncio.open_connection(host, port, limit=2**20)
            return _Connection(reader, writer)

        async def handle_async_request(self, request: Any) -> Any:
            url = request.url
            host, port = url.host, url.port or 80
            body = await request.aread()
            lines = [f"{request.method} {url.raw_path.decode('ascii')} HTTP/1.1"]
            lines += [f"{key}: {value}" for key, value in request.headers.multi_items()
                      if key.lower() not in _DROPPED]
            lines += ["Accept-Encoding: identity", f"Content-Length: {len(body)}"]
            message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
            try:
                return await asyncio.wait_for(self._exchange(request, host, port, message),
                                              timeout)
            except asyncio.TimeoutError as error:
                raise httpx.ReadTimeout("request timed out", request=request) from error

        async def _exchange(self, request: Any, host: str, port: int, message: bytes) -> Any:
            for attempt in range(2):
                connection = await self._connect(host, port, fresh=attempt == 1)
                try:
                    connection.writer.write(message)
                    status_line = await connection.reader.readuntil(b"\r\n")
                    break
                except (ConnectionError, asyncio.IncompleteReadError, OSError) as error:
                    connection.close()
                    if attempt == 1:  # a new connection failed too: a real error
                        raise httpx.ConnectError(str(error), request=request) from error
            try:
                raw_head = await connection.reader.readuntil(b"\r\n\r\n")
                status = int(status_line.split(b" ", 2)[1])
                headers: dict[str, str] = {}
                pairs = []
                for line in raw_head.decode("latin-1").split("\r\n"):
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                        pairs.append((key.strip(), value.strip()))
                content, reusable = await _read_body(connection.reader, headers)
            except BaseException:
                connection.close()
                raise
            if reusable and headers.get("connection", "").lower() != "close":
                self._idle.setdefault((host, port), []).append(connection)
            else:
                connection.close()
            pairs = [(k, v) for k, v in pairs
                     if k.lower() not in ("transfer-encoding", "content-encoding")]
            return httpx.Response(status, headers=pairs, content=content, request=request)

        async def aclose(self) -> None:
            for pool in self._idle.values():
                for connection in pool:
                    connection.close()
            self._idle.clear()

    return httpx.AsyncClient(transport=LeanTransport(), timeout=timeout)
