"""An HTTP proxy on 127.0.0.1 that injects faults in front of an S3 server (moto).

Each request draws from a seeded ``random.Random``: a connection reset (no answer, a TCP
RST), a ``503 SlowDown`` as S3 answers under load, a slow answer, or a clean pass to
the server. Faults are bounded: one request (method and path) never meets more than
``max_in_a_row`` faults in a row, however other requests interleave with it, so a
client that retries as S3's own SDKs do gets through. ``down = True`` answers every
request with 503 until it is set back to False (a store that stays down).

    with FaultProxy(upstream_port, seed=7, rate=0.3) as proxy:
        uri = f"s3://bucket/prefix?scheme=http&endpoint_override=127.0.0.1:{proxy.port}"
"""

from __future__ import annotations

import collections
import http.client
import http.server
import random
import socket
import struct
import threading
import time
from typing import Any

__all__ = ["FaultProxy"]

_SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
              b"<Message>Please reduce your request rate.</Message></Error>")
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
        "trailer", "upgrade"}


class FaultProxy:
    def __init__(self, upstream_port: int, seed: int, rate: float = 0.3,
                 max_in_a_row: int = 2, slow: float = 0.3) -> None:
        self.upstream_port = upstream_port
        self.rng = random.Random(seed)
        self.rate = rate
        self.max_in_a_row = max_in_a_row
        self.slow = slow
        self.down = False
        self.counts: collections.Counter[str] = collections.Counter()
        #: Faults each request (method and path) met in a row: retries of one request
        #: meet at most ``max_in_a_row``, however other requests interleave with them.
        self._in_a_row: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._draw(f"{self.command} {self.path}")
                proxy.counts[fault] += 1
                if fault == "reset":
                    # SO_LINGER 0: close() sends a RST, as a dropped connection does
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault in ("503", "down"):
                    self.send_response(503, "Slow Down")
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(_SLOW_DOWN)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(_SLOW_DOWN)
                    return
                if fault == "slow":
                    time.sleep(proxy.slow)
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port,
                                                      timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status, answer.reason)
                head = self.command == "HEAD"  # its Content-Length is the object's size
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP and (head or name.lower() != "content-length"):
                        self.send_header(name, value)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="faultproxy")

    def _draw(self, request: str) -> str:
        with self._lock:
            if self.down:
                return "down"
            if self._in_a_row[request] >= self.max_in_a_row or self.rng.random() >= self.rate:
                del self._in_a_row[request]
                return "pass"
            self._in_a_row[request] += 1
            return self.rng.choice(["reset", "503", "slow"])

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
