"""distilabel 1.5.3's side: TextGeneration on its OpenAILLM, same server, same rows.

Runs under bench/.venv-distilabel/bin/python; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import MODEL, rows, server_count

os.environ.setdefault("HF_HUB_OFFLINE", "1")
logging.disable(logging.WARNING)


def run(n: int, args: argparse.Namespace, cache: str) -> dict[str, float]:
    from distilabel.models.llms import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    with Pipeline(name="bench-llm", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(data=rows(n), batch_size=args.batch_size)
        gen = TextGeneration(
            input_batch_size=args.batch_size,
            llm=OpenAILLM(model=MODEL, base_url=args.base_url, api_key="bench",
                          max_retries=2,
                          generation_kwargs={"temperature": 0.7, "max_new_tokens": 64}))
        load >> gen
    before = server_count(args.base_url)
    start = time.perf_counter()
    distiset = pipeline.run(use_cache=True)
    seconds = time.perf_counter() - start
    table = distiset["default"]["train"]
    return {"seconds": seconds, "requests": server_count(args.base_url) - before,
            "rows": len(table), "none": sum(1 for g in table["generation"] if g is None)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--added", type=float, default=0.01)
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="bench-llm-distilabel-")
    os.environ["HF_HOME"] = os.path.join(cache, "hf")
    cold = run(args.n, args, cache)
    result: dict[str, object] = {"cold": cold}
    if args.added:
        result["added"] = run(int(args.n * (1 + args.added)), args, cache)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
