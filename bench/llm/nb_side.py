"""distilabel_nb's side: TextGeneration on OpenAILLM, a cold run then +1% rows.

    python bench/llm/nb_side.py --base-url URL --n 10000 --concurrency 64 --batch-size 640
prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import MODEL, rows, server_count

from distilabel_nb import Pipeline
from distilabel_nb.llms import OpenAILLM
from distilabel_nb.steps import LoadDataFromDicts
from distilabel_nb.steps.tasks import TextGeneration


def build(n: int, args: argparse.Namespace, cache: str) -> Pipeline:
    with Pipeline(name="bench-llm", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=rows(n), batch_size=args.batch_size)
        gen = TextGeneration(
            name="gen", input_batch_size=args.batch_size,
            llm=OpenAILLM(model=MODEL, base_url=args.base_url, api_key="bench",
                          max_concurrency=args.concurrency, max_retries=2,
                          http_transport=args.transport,
                          generation_kwargs={"temperature": 0.7, "max_new_tokens": 64}))
        load >> gen
    return pipeline


def timed(pipeline: Pipeline, base_url: str) -> dict[str, float]:
    before = server_count(base_url)
    start = time.perf_counter()
    table = pipeline.run(progress=False).arrow_table("default")
    seconds = time.perf_counter() - start
    report = pipeline.last_run["gen"]
    return {"seconds": seconds, "requests": server_count(base_url) - before,
            "rows": table.num_rows, "step_seconds": report.seconds,
            "none": table.column("generation").null_count,
            "rows_reused": report.rows_reused, "tokens_saved": report.tokens_saved}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=640)
    parser.add_argument("--added", type=float, default=0.01)
    parser.add_argument("--transport", default="auto")
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="bench-llm-nb-")
    cold = timed(build(args.n, args, cache), args.base_url)
    more = timed(build(int(args.n * (1 + args.added)), args, cache), args.base_url)
    print(json.dumps({"cold": cold, "added": more}))


if __name__ == "__main__":
    main()
