"""OpenAI's Batch API through the openai SDK: one JSONL upload, one batch, its results.

Each request line carries the row key as ``custom_id``; the output file's lines are
matched back to rows by it. Batches cost half the list price and finish within the
completion window (24 h); ``OpenAILLM(use_offline_batch_generation=True)`` uses this.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from distilabel_nb.llms.base import ChatType, Generation

__all__ = ["BatchState", "batch_results", "poll_batch", "submit_batch"]

#: Statuses of a batch that will not change any more.
_FINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclasses.dataclass(frozen=True)
class BatchState:
    """Where a provider batch job stands."""

    job_id: str
    status: str
    done: int
    total: int
    output_file_id: str | None = None
    error_file_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in _FINAL


async def submit_batch(client: Any, chats: Sequence[ChatType], keys: Sequence[str],
                       body: dict[str, Any]) -> str:
    """Upload the requests as one JSONL file and create one batch; returns its id."""
    lines = [orjson.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions",
                           "body": {**body, "messages": chat}})
             for key, chat in zip(keys, chats, strict=True)]
    upload = await client.files.create(file=("batch.jsonl", b"\n".join(lines) + b"\n"),
                                       purpose="batch")
    batch = await client.batches.create(input_file_id=upload.id,
                                        endpoint="/v1/chat/completions",
                                        completion_window="24h")
    return str(batch.id)


async def poll_batch(client: Any, job_id: str) -> BatchState:
    batch = await client.batches.retrieve(job_id)
    counts = batch.request_counts
    done = int((counts.completed or 0) + (counts.failed or 0)) if counts else 0
    return BatchState(job_id, str(batch.status), done, int(counts.total or 0) if counts else 0,
                      batch.output_file_id, batch.error_file_id)


async def batch_results(client: Any, state: BatchState,
                        parse_completion: Callable[[Any], Generation]
                        ) -> dict[str, Generation]:
    """The answers of a finished batch by ``custom_id`` (failed requests as errors);
    ``parse_completion`` reads one chat completion body."""
    results: dict[str, Generation] = {}
    for file_id in (state.output_file_id, state.error_file_id):
        if not file_id:
            continue
        content = await client.files.content(file_id)
        for line in content.read().splitlines():
            if not line.strip():
                continue
            record = orjson.loads(line)
            response = record.get("response") or {}
            error = record.get("error")
            if error or int(response.get("status_code") or 0) != 200:
                detail = error or response.get("body") or {}
                message = detail.get("message") if isinstance(detail, dict) else None
                results[record["custom_id"]] = Generation(
                    None, error=f"batch request failed: {message or detail}")
            else:
                results[record["custom_id"]] = parse_completion(response.get("body"))
    return results
