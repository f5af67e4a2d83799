"""LLM clients: kwarg mapping, concurrency, the sync wrapper, errors, secrets."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from distilabel_nb.llms import LLM, Generation, OfflineLLM, OpenAILLM
from distilabel_nb.llms.openai_llm import to_openai_kwargs

from .openai_server import OpenAIServer, answer_for


def chat(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_generation_kwargs_use_the_api_names():
    assert to_openai_kwargs({"max_new_tokens": 10, "temperature": 0.3, "top_p": 0.9,
                             "stop_sequences": ["\n"], "seed": None,
                             "extra_body": {"top_k": 5}}) == {
        "max_tokens": 10, "temperature": 0.3, "top_p": 0.9, "stop": ["\n"], "top_k": 5}


def test_offline_llm_is_deterministic_and_counts_tokens():
    llm = OfflineLLM()
    first = llm.generate([chat("hello there"), chat("bye")])
    again = OfflineLLM().generate([chat("hello there"), chat("bye")])
    assert [g.text for g in first] == [g.text for g in again]
    assert first[0].text != first[1].text
    assert first[0].input_tokens == 2 and first[0].output_tokens > 0
    hotter = OfflineLLM(generation_kwargs={"temperature": 1.5}).generate([chat("hello there")])
    assert hotter[0].text != first[0].text
    failing = OfflineLLM(fail_on=["bye"]).generate([chat("bye")])
    assert failing[0].text is None and failing[0].error
    llm.unload()


class Slow(LLM):
    """Counts how many requests are in flight at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.active = self.peak = 0

    async def agenerate(self, messages: Any, **kwargs: Any) -> Generation:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0.01)
        self.active -= 1
        if messages[0]["content"] == "boom":
            raise RuntimeError("kaboom")
        return Generation(messages[0]["content"].upper(), 1, 1)


def test_concurrency_is_bounded_and_errors_stay_in_their_row():
    llm = Slow(max_concurrency=4)
    out = llm.generate([chat(f"x{i}") for i in range(20)] + [chat("boom")])
    assert llm.peak == 4
    assert [g.text for g in out[:3]] == ["X0", "X1", "X2"]
    assert out[-1].text is None and "kaboom" in (out[-1].error or "")
    llm.unload()


def test_sync_wrapper_works_where_an_event_loop_is_running():
    """As in a Jupyter kernel's main thread."""
    llm = Slow()

    async def inside_a_running_loop() -> list[Generation]:
        return llm.generate([chat("a"), chat("b")])

    assert [g.text for g in asyncio.run(inside_a_running_loop())] == ["A", "B"]
    # and from another thread, reusing the same private loop
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.extend(llm.generate([chat("c")])))
    thread.start()
    thread.join()
    assert results[0].text == "C"
    llm.unload()


def test_cost_from_prices():
    assert OfflineLLM().cost(10, 10) is None
    assert OfflineLLM(price_per_million_tokens=2.0).cost(500_000, 500_000) == 2.0
    llm = OfflineLLM(price_per_million_input_tokens=1.0, price_per_million_output_tokens=3.0)
    assert llm.cost(1_000_000, 1_000_000) == 4.0


def test_api_key_is_never_shown():
    llm = OpenAILLM(model="m", api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(llm)
    assert "api_key" not in llm.signature_description()
    assert llm.scrub("bad key sk-very-secret") == "bad key <redacted>"


def test_missing_key_for_openai_itself_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAILLM(model="gpt-4o-mini").load()


def test_signature_skips_tuning_knobs():
    a = OpenAILLM(model="m", base_url="http://x/v1", max_concurrency=1, timeout=1.0,
                  max_retries=0, price_per_million_tokens=3.0)
    b = OpenAILLM(model="m", base_url="http://x/v1")
    assert a.signature_description() == b.signature_description()
    c = OpenAILLM(model="m2", base_url="http://x/v1")
    assert c.signature_description() != b.signature_description()


@pytest.mark.parametrize("transport", ["auto", "httpx"])
def test_openai_llm_against_a_server(transport):
    openai = pytest.importorskip("openai")
    with OpenAIServer(latency=0.05) as server:
        server.fail_prompts = {"bad"}
        llm = OpenAILLM(model="m", base_url=server.base_url, api_key="sk-abc",
                        max_retries=1, max_concurrency=10, http_transport=transport)
        start = time.perf_counter()
        out = llm.generate([chat(f"p{i}") for i in range(20)] + [chat("bad")])
        elapsed = time.perf_counter() - start
        # "auto": the SDK's aiohttp client (openai[aiohttp]), no hand-written transport.
        aiohttp_client = isinstance(llm._client._client, openai.DefaultAioHttpClient)
        llm.unload()
    assert aiohttp_client == (transport == "auto")
    assert [g.text for g in out[:20]] == [answer_for(f"p{i}", {}) for i in range(20)]
    assert out[0].input_tokens == 1 and out[0].output_tokens == 3
    assert out[20].text is None and "500" in (out[20].error or "")
    assert server.prompt_counts()["bad"] == 2  # one retry
    assert elapsed < 2.0  # 21 requests of 50 ms, 10 at a time: concurrent
    assert set(server.auth_headers) == {"Bearer sk-abc"}


def test_openai_llm_timeout_becomes_a_row_error():
    pytest.importorskip("openai")
    with OpenAIServer(latency=1.0) as server:
        llm = OpenAILLM(model="m", base_url=server.base_url, api_key="k", timeout=0.1,
                        max_retries=0)
        out = llm.generate([chat("slow")])
        llm.unload()
    assert out[0].text is None and "Timeout" in (out[0].error or "")


def test_openai_llm_a_body_that_is_not_json_becomes_a_row_error():
    pytest.importorskip("openai")

    class Garbled(OpenAIServer):
        def completion(self, body: dict[str, Any]) -> Any:
            return b"<html>proxy error</html>" if "garbled" in str(body) else \
                super().completion(body)

    with Garbled() as server:
        llm = OpenAILLM(model="m", base_url=server.base_url, api_key="k", max_retries=0,
                        generation_kwargs={"temperature": 0.5, "max_new_tokens": 8})
        out = llm.generate([chat("fine"), chat("garbled")])
        llm.unload()
    assert out[0].text == answer_for("fine", {"temperature": 0.5})
    assert out[0].input_tokens == 1 and out[0].output_tokens > 0
    assert out[1].text is None
    assert out[1].error == "unexpected response: <html>proxy error</html>"
    assert server.requests[0]["max_tokens"] == 8 and server.requests[0]["model"] == "m"
