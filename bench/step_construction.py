"""What constructing steps costs (steps are pydantic models): per instance and per
``@step`` class. Run: ``PYTHONPATH=$PWD python3 bench/step_construction.py``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from distilabel_nb.llms import OpenAILLM
from distilabel_nb.steps import KeepColumns, LoadDataFromDicts, StepInput, StepOutput, step
from distilabel_nb.steps.tasks import TextGeneration


@step(inputs=["a"], outputs=["b"])
def Double(inputs: StepInput, factor: int = 2) -> StepOutput:
    yield inputs


def per_call(label: str, make: Callable[[], Any], n: int) -> None:
    make()
    start = time.perf_counter()
    for _ in range(n):
        make()
    print(f"{label}: {(time.perf_counter() - start) / n * 1e6:.1f} us")


def main() -> None:
    rows = [{"a": i} for i in range(100_000)]
    per_call("KeepColumns(columns=[...])", lambda: KeepColumns(columns=["a", "b"]), 20_000)
    per_call("@step instance", lambda: Double(factor=3), 20_000)
    per_call("LoadDataFromDicts(100k rows)", lambda: LoadDataFromDicts(data=rows), 2_000)
    per_call("TextGeneration(llm=OpenAILLM(...))", lambda: TextGeneration(
        llm=OpenAILLM(model="m", base_url="http://127.0.0.1:9", api_key="k")), 5_000)
    start = time.perf_counter()
    for _ in range(200):
        step(inputs=["a"], outputs=["b"])(lambda inputs, x=1: (yield inputs))
    print(f"@step class creation: {(time.perf_counter() - start) / 200 * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
