"""A cache URI's filesystem, with bounded retries, and the error for a store that does
not answer.

Object stores reset connections and answer ``503 SlowDown`` under load; the retries are
the SDK's own (``pyarrow.fs.S3FileSystem(retry_strategy=AwsStandardS3RetryStrategy(...))``,
exponential backoff with jitter), bounded by ``max_attempts``, with connect and request
timeouts so a store that hangs fails too. They are set in the URI's query string
beside pyarrow's own options (``s3://bucket/prefix?max_attempts=10&request_timeout=60``)
or by ``$DISTILABEL_NB_S3_MAX_ATTEMPTS``. GCS retries by itself (``retry_time_limit``).

When the store still does not answer, ``CacheUnreachableError`` names the cache and says
that nothing committed is lost: a batch counts only once its commit marker is written,
after its data, so the next run resumes from the markers that are there.
"""

from __future__ import annotations

import os
import urllib.parse

import pyarrow.fs as pafs

__all__ = ["DEFAULT_MAX_ATTEMPTS", "CacheUnreachableError", "location", "open_filesystem"]

#: Attempts per request (the first one included) when nothing else is said.
DEFAULT_MAX_ATTEMPTS = 8
_OURS = ("max_attempts", "connect_timeout", "request_timeout")
_TIMEOUTS = {"connect_timeout": 10.0, "request_timeout": 60.0}


class CacheUnreachableError(OSError):
    """The cache's object store did not answer, after the retries; nothing committed is
    lost."""

    def __init__(self, where: str, error: BaseException, action: str = "reach") -> None:
        super().__init__(
            f"cannot {action} the cache at {where}: {str(error).rstrip('.')}. The store did "
            "not answer after "
            "its retries; every batch committed before is kept there and the next run "
            "resumes from it. Run again once the store answers (more patience: "
            "?max_attempts=20&request_timeout=120 in the cache URI)")
        self.where = where


def location(uri: str) -> str:
    """``uri`` as error messages show it: no credentials, no query string."""
    parts = urllib.parse.urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """``pafs.FileSystem.from_uri(uri)``; for S3 with bounded retries and timeouts."""
    parts = urllib.parse.urlsplit(uri)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OURS}
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k not in _OURS], safe=":/*")
    filesystem, path = pafs.FileSystem.from_uri(urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, parts.path, rest, parts.fragment)))
    if isinstance(filesystem, pafs.S3FileSystem):
        filesystem = _with_retries(filesystem, ours)
    return filesystem, path


def _with_retries(filesystem: pafs.S3FileSystem, ours: dict[str, str]) -> pafs.S3FileSystem:
    options = dict(filesystem.__reduce__()[1][0])  # every option from_uri set
    attempts = ours.get("max_attempts") or os.environ.get("DISTILABEL_NB_S3_MAX_ATTEMPTS")
    try:
        max_attempts = int(attempts) if attempts else DEFAULT_MAX_ATTEMPTS
        for name, default in _TIMEOUTS.items():
            given = float(ours[name]) if name in ours else None
            if given is not None or float(options.get(name) or -1) < 0:
                options[name] = given if given is not None else default
    except ValueError as error:
        msg = (f"max_attempts, connect_timeout and request_timeout in a cache URI are "
               f"numbers ({error})")
        raise ValueError(msg) from None
    options["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=max(1, max_attempts))
    return pafs.S3FileSystem(**options)
