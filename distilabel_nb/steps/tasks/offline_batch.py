"""An LLM task's rows through a provider's batch API: one job per run, collected later.

The task gets its whole input as one batch (``Task.whole_input``), so the rows its row
cache lacks go out as ONE upload and ONE job. The job id is kept with the row cache
(``cache/jobs.py``); until the job is done every run polls it and raises
``OfflineBatchPendingError`` (nothing is sent again). Once it is done its answers enter
the row cache, the job is forgotten, and the step goes on like any row-cache hit. Rows
the job did not cover (the input grew meanwhile) go out as the next run's job.
``offline_batch_generation_block_until_done=SECONDS`` polls until done instead.
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

from distilabel_nb.cache.jobs import BatchJobs
from distilabel_nb.halts import OfflineBatchPendingError
from distilabel_nb.llms.base import ChatType, Generation

__all__ = ["POLL_SECONDS", "generate_offline"]

#: Seconds between two polls of a job while blocking until it is done.
POLL_SECONDS = 5.0


def generate_offline(task: Any, chats: list[ChatType], keys: list[str],
                     signature: str) -> list[Generation]:
    """The answers for ``keys``, from the step's batch job (raises while it runs).

    ``task`` is the ``Task`` asking (its row cache, context, llm and name)."""
    cache, context = task._rows, task.context
    if cache is None or context is None:
        msg = f"step {task.name!r}: offline batch generation needs the row cache (a run)"
        raise RuntimeError(msg)
    llm = task.llm
    with BatchJobs(cache.folder) as jobs:
        opened = jobs.open_job(signature)
        if opened is None:  # nothing in flight: this run's one job
            job_id = llm.submit_batch(chats, keys)
            jobs.add(signature, job_id, keys)
            opened = (job_id, keys)
        job_id, _ = opened
        state = _wait(llm, job_id, llm.offline_batch_generation_block_until_done, context)
        if not state.finished:
            raise OfflineBatchPendingError(job_id, state.done, state.total, state.status,
                                           task.name)
        if state.status != "completed":
            jobs.drop(signature, job_id)
            msg = (f"step {task.name!r}: offline batch job {job_id} ended {state.status} "
                   f"({state.done}/{state.total} requests done); the next run sends its "
                   "rows as a new job")
            raise RuntimeError(msg)
        results = llm.batch_results(state)
        cache.put_many(signature, [(key, {"text": g.text}, g.input_tokens, g.output_tokens)
                                   for key, g in results.items()
                                   if g.error is None and g.text is not None])
        jobs.drop(signature, job_id)
    missing = [key for key in keys if key not in results]
    if missing:  # the input grew since the job was sent: those rows go next run
        _send_the_rest(task, chats, keys, missing, signature)
    return [results[key] for key in keys]


def _wait(llm: Any, job_id: str, block: int | None, context: Any) -> Any:
    state = llm.poll_batch(job_id)
    deadline = time.monotonic() + float(block or 0)
    while not state.finished and block and time.monotonic() < deadline:
        if context.stopping.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
            break
        state = llm.poll_batch(job_id)
    return state


def _send_the_rest(task: Any, chats: list[ChatType], keys: list[str], missing: list[str],
                   signature: str) -> NoReturn:
    """Rows the finished job did not cover: this run's new job (their answers come on a
    later run; the covered rows are in the row cache already)."""
    index = {key: i for i, key in enumerate(keys)}
    job_id = task.llm.submit_batch([chats[index[k]] for k in missing], missing)
    assert task._rows is not None
    with BatchJobs(task._rows.folder) as jobs:
        jobs.add(signature, job_id, missing)
    raise OfflineBatchPendingError(job_id, 0, len(missing), "validating", task.name)
