"""OpenAI's Batch API for the test server (``tests/openai_server.py``): file upload,
batch create and retrieve, the output file.

A batch stays ``in_progress`` until the test calls ``complete()`` (or until it has been
retrieved ``finish_after_polls`` times); then every request line is answered as the chat
completions route answers it, with usage, into an output file.
"""

from __future__ import annotations

import email.parser
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["BatchAPI"]

Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


class BatchAPI:
    """The Batch API routes, answering each request line through ``answer(body)``."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self._lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        #: Complete a batch on this retrieve (None: only ``complete()`` does).
        self.finish_after_polls: int | None = None
        self.polls = 0
        self.uploads = 0

    # -- the test's side ---------------------------------------------------------------
    def complete(self, job_id: str | None = None) -> None:
        """Answer every request of the batch (all open batches when None)."""
        with self._lock:
            for batch in self.batches.values():
                if job_id in (None, batch["id"]) and batch["status"] == "in_progress":
                    self._finish(batch)

    def requests_of(self, job_id: str) -> list[dict[str, Any]]:
        """The request lines of a batch's input file."""
        batch = self.batches[job_id]
        return [json.loads(line) for line in self.files[batch["input_file_id"]].splitlines()
                if line.strip()]

    # -- HTTP --------------------------------------------------------------------------
    def respond(self, method: str, path: str, headers: dict[str, str],
                raw: bytes) -> tuple[int, Any]:
        route = path.split("?", 1)[0].rstrip("/")
        if method == "POST" and route.endswith("/files"):
            return 200, self._upload(headers.get("content-type", ""), raw)
        if method == "GET" and (found := re.search(r"/files/([^/]+)/content$", route)):
            content = self.files.get(found.group(1))
            return (200, content) if content is not None else _missing(route)
        if method == "POST" and route.endswith("/batches"):
            return 200, self._create(json.loads(raw or b"{}"))
        if method == "GET" and (found := re.search(r"/batches/([^/]+)$", route)):
            return self._retrieve(found.group(1))
        return _missing(route)

    def _upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        message = email.parser.BytesParser().parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        data = b""
        for part in message.get_payload():  # type: ignore[union-attr]
            if part.get_param("name", header="content-disposition") == "file":
                data = part.get_payload(decode=True)
        with self._lock:
            self.uploads += 1
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = data
        return _file(file_id, len(data), "batch.jsonl", "batch")

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        lines = [line for line in self.files[body["input_file_id"]].splitlines()
                 if line.strip()]
        with self._lock:
            job_id = f"batch_{len(self.batches) + 1}"
            self.batches[job_id] = {
                "id": job_id, "object": "batch", "endpoint": body["endpoint"],
                "input_file_id": body["input_file_id"],
                "completion_window": body["completion_window"], "status": "in_progress",
                "created_at": int(time.time()), "output_file_id": None,
                "error_file_id": None, "errors": None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0}}
            return dict(self.batches[job_id])

    def _retrieve(self, job_id: str) -> tuple[int, Any]:
        with self._lock:
            batch = self.batches.get(job_id)
            if batch is None:
                return _missing(job_id)
            self.polls += 1
            if self.finish_after_polls is not None and batch["status"] == "in_progress":
                batch.setdefault("_polls", 0)
                batch["_polls"] += 1
                if batch["_polls"] >= self.finish_after_polls:
                    self._finish(batch)
            return 200, {k: v for k, v in batch.items() if not k.startswith("_")}

    def _finish(self, batch: dict[str, Any]) -> None:
        out = []
        for line in self.files[batch["input_file_id"]].splitlines():
            if not line.strip():
                continue
            request = json.loads(line)
            status, body = self._answer(request["body"])
            out.append(json.dumps({"id": f"resp-{request['custom_id'][:8]}",
                                   "custom_id": request["custom_id"],
                                   "response": {"status_code": status, "body": body},
                                   "error": None}))
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = ("\n".join(out) + "\n").encode()
        batch.update(status="completed", output_file_id=file_id,
                     request_counts={"total": len(out), "completed": len(out), "failed": 0})


def _file(file_id: str, size: int, name: str, purpose: str) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "bytes": size, "created_at": int(time.time()),
            "filename": name, "purpose": purpose, "status": "processed"}


def _missing(what: str) -> tuple[int, dict[str, Any]]:
    return 404, {"error": {"message": f"no such route or object: {what}"}}
