"""Tokens and their cost per LLM step of a pipeline's last run."""

from __future__ import annotations

from typing import Any

__all__ = ["token_costs"]


def token_costs(pipeline: Any) -> dict[str, dict[str, Any]]:
    """Per LLM step of the last run: tokens used and saved, and their cost.

    The cost needs a price on the step's LLM (``price_per_million_tokens``, or
    ``price_per_million_input_tokens`` / ``..._output_tokens``); otherwise it is None.
    The same figures are in the report: ``pipeline.last_run[step].cost_used`` and
    ``.cost_saved`` (a step reused whole counts its cached rows' cost as saved).
    """
    report = getattr(pipeline, "last_run", None)
    result: dict[str, dict[str, Any]] = {}
    for name, step in pipeline.steps.items():
        llm = getattr(step, "llm", None)
        tally = getattr(step, "tokens", None)
        if llm is None or tally is None:
            continue
        entry = report[name] if report is not None and name in report else None
        result[name] = {
            "tokens_used": entry.tokens_used if entry is not None else tally.used,
            "tokens_saved": entry.tokens_saved if entry is not None else tally.saved,
            "cost_used": entry.cost_used if entry is not None else
            llm.cost(tally.input_used, tally.output_used),
            "cost_saved": entry.cost_saved if entry is not None else
            llm.cost(tally.input_saved, tally.output_saved),
        }
    return result
