"""distilabel's offline batch generation (``use_offline_batch_generation=True``) on our cache.

Under distilabel's pipeline the provider's job ids live on the LLM object (``jobs_ids``)
and a pending job stops the pipeline until it is run again with that same object. Here
the rows the row cache lacks go to the provider's batch API once (distilabel's own
``offline_batch_generate`` builds and uploads the job); its id and the row keys it covers
are kept beside the row cache (``cache/jobs.py``), so the next run of the cell, with new
objects, polls that job instead of sending the rows again. While it is unfinished a run
raises ``OfflineBatchPendingError``; once done, its answers enter the row cache and the
job is forgotten. ``offline_batch_generation_block_until_done=SECONDS`` polls until done.
"""

from __future__ import annotations

import time
from typing import Any

from distilabel_nb.cache.jobs import BatchJobs
from distilabel_nb.halts import OfflineBatchPendingError

__all__ = ["collect_offline"]


def _not_finished() -> type[Exception]:
    from distilabel.exceptions import DistilabelOfflineBatchGenerationNotFinishedException

    return DistilabelOfflineBatchGenerationNotFinishedException


def _poll(llm: Any, job_id: str, total: int, step: str | None, context: Any,
          num_generations: int, kwargs: dict[str, Any]) -> list[Any]:
    """The job's outputs, in the order of its rows; waits when the LLM asks to block."""
    wait = llm.offline_batch_generation_block_until_done
    while True:
        llm.jobs_ids = (job_id,)
        try:
            return list(llm.offline_batch_generate(inputs=None,
                                                   num_generations=num_generations,
                                                   **kwargs))
        except _not_finished():
            stopping = getattr(context, "stopping", None)
            if wait is None or (stopping is not None and stopping.is_set()):
                raise OfflineBatchPendingError(job_id, 0, total, "in_progress",
                                               step) from None
            time.sleep(float(wait))
        finally:
            llm.jobs_ids = None


def collect_offline(llm: Any, folder: Any, signature: str, missing: dict[str, Any],
                    num_generations: int, kwargs: dict[str, Any], context: Any
                    ) -> dict[str, Any]:
    """Outputs for the formatted inputs of ``missing`` (row key -> input), from the job in
    flight for ``signature`` or a new one; raises ``OfflineBatchPendingError`` while the
    job runs."""
    step = getattr(context, "step", None)
    jobs = BatchJobs(folder)
    answers: dict[str, Any] = {}
    found = jobs.open_job(signature)
    if found is not None:
        job_id, keys = found
        outputs = _poll(llm, job_id, len(keys), step, context, num_generations, kwargs)
        answers = dict(zip(keys, outputs, strict=False))
        jobs.drop(signature, job_id)
    rest = {key: formatted for key, formatted in missing.items() if key not in answers}
    if not rest:
        return answers
    llm.jobs_ids = None
    try:
        created = llm.offline_batch_generate(inputs=list(rest.values()),
                                             num_generations=num_generations, **kwargs)
    except _not_finished():
        job_id = llm.jobs_ids[0]
        jobs.add(signature, job_id, list(rest))
        if llm.offline_batch_generation_block_until_done is None:
            raise OfflineBatchPendingError(job_id, 0, len(rest), "validating", step) from None
        outputs = _poll(llm, job_id, len(rest), step, context, num_generations, kwargs)
        jobs.drop(signature, job_id)
        created = outputs
    finally:
        llm.jobs_ids = None
    answers.update(zip(rest, created, strict=False))
    return answers
