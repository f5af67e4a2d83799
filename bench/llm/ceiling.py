"""The machine's ceiling: a bare asyncio HTTP client (no SDK) on the same server.

64 keep-alive connections, one request each at a time, the same rows. Whatever an SDK
adds per request comes on top of this; it says how much of concurrency / latency this
machine can reach at all with Python on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
import time
from urllib.parse import urlsplit

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import MODEL, rows


async def measure(base_url: str, n: int, concurrency: int) -> dict[str, float]:
    url = urlsplit(base_url)
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(concurrency):
        pool.put_nowait(await asyncio.open_connection(url.hostname, url.port))
    path = f"{url.path}/chat/completions"

    async def one(row: dict[str, str]) -> None:
        reader, writer = await pool.get()
        body = json.dumps({"model": MODEL, "messages": [
            {"role": "user", "content": row["instruction"]}]}).encode()
        writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        json.loads(await reader.readexactly(length))
        pool.put_nowait((reader, writer))

    start = time.perf_counter()
    await asyncio.gather(*(one(r) for r in rows(n)))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows_per_s": n / seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.base_url, args.n, args.concurrency))))


if __name__ == "__main__":
    main()
