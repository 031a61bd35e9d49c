"""The provider client against a real local HTTP server speaking the OpenAI protocol (MockServer)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from openarena.errors import OpenArenaError
from openarena.providers import (
    ProviderError,
    RetryPolicy,
    complete_chat,
    map_bounded,
    ping,
    stream_chat,
)
from openarena.demo.mock_server import XSS_PAYLOAD, Behaviour, MockServer

FAST = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05)
HI = [{"role": "user", "content": "Hello mock model"}]


@pytest.fixture
def srv() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def collect(stream: Any) -> list[str]:
    return [d async for d in stream]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- streaming --------------------------------------------------------------------------------


def test_stream_yields_exact_chunks_and_usage(srv: MockServer) -> None:
    chunks = ["Hel", "lo, ", "wor", "ld", "!"]
    srv.set_behaviour("m", Behaviour(chunks=chunks))
    stream = stream_chat(srv.model_config("m"), HI)
    assert run(collect(stream)) == chunks
    res = stream.result
    assert res is not None and res.text == "Hello, world!"
    assert (res.prompt_tokens, res.completion_tokens, res.usage_estimated) == (3, 5, False)
    assert res.finish_reason == "stop" and res.raw_model == "m" and res.first_token_s is not None
    (req,) = srv.requests
    assert req.stream and req.body["stream_options"] == {"include_usage": True} and req.completed


def test_stream_without_usage_support(srv: MockServer) -> None:
    srv.set_behaviour("m", Behaviour.fixed("one two three four", usage=False))
    stream = stream_chat(srv.model_config("m", stream_usage=False), HI)
    assert "".join(run(collect(stream))) == "one two three four"
    assert "stream_options" not in srv.requests[0].body
    res = stream.result
    assert res.usage_estimated and res.completion_tokens == len("one two three four") // 4
    assert res.prompt_tokens == len(HI[0]["content"]) // 4


def test_stream_context_manager_and_official_parser(srv: MockServer) -> None:
    """The official client parses the mock's SSE on its own (no wrapper in between)."""
    srv.set_behaviour("m", Behaviour.fixed("a b c"))

    async def official() -> tuple[list[str], Any]:
        client = openai.AsyncOpenAI(api_key="x", base_url=srv.base_url, max_retries=0)
        async with client:
            out, usage = [], None
            stream = await client.chat.completions.create(
                model="m", messages=HI, stream=True, stream_options={"include_usage": True})
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    out.append(chunk.choices[0].delta.content)
                usage = chunk.usage or usage
            listed = [m.id async for m in client.models.list()]
            assert listed == ["m"]
            return out, usage

    out, usage = run(official())
    assert out == ["a ", "b ", "c"] and usage.completion_tokens == 3

    async def with_cm() -> str:
        async with stream_chat(srv.model_config("m"), HI) as s:
            return "".join([d async for d in s])

    assert run(with_cm()) == "a b c"


def test_cancelling_a_stream_stops_the_server(srv: MockServer) -> None:
    srv.set_behaviour("slow", Behaviour.fixed("word " * 100, chunk_delay_s=0.02))

    async def scenario() -> list[str]:
        got: list[str] = []

        async def consume() -> None:
            async for d in stream_chat(srv.model_config("slow"), HI):
                got.append(d)

        task = asyncio.create_task(consume())
        while len(got) < 3:
            await asyncio.sleep(0.005)
        task.cancel()  # what the arena's Stop button does
        with pytest.raises(asyncio.CancelledError):
            await task
        return got

    t0 = time.monotonic()
    got = run(scenario())
    deadline = time.monotonic() + 2
    while not srv.requests[0].disconnected and time.monotonic() < deadline:
        time.sleep(0.01)
    req = srv.requests[0]
    assert req.disconnected and not req.completed and req.chunks_sent < 20
    assert len(got) >= 3 and time.monotonic() - t0 < 2


def test_closing_a_stream_early_releases_it(srv: MockServer) -> None:
    srv.set_behaviour("slow", Behaviour.fixed("word " * 100, chunk_delay_s=0.02))

    async def scenario() -> None:
        s = stream_chat(srv.model_config("slow"), HI)
        async for _ in s:
            break
        await s.aclose()

    run(scenario())
    deadline = time.monotonic() + 2
    while srv.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.in_flight == 0 and srv.requests[0].disconnected and srv.requests[0].chunks_sent < 20


def test_stream_stall_is_a_timeout_after_partial_text(srv: MockServer) -> None:
    srv.set_behaviour("stall", Behaviour.fixed("a b c d", stall_after=2))
    got: list[str] = []

    async def scenario() -> None:
        async for d in stream_chat(srv.model_config("stall", timeout_s=0.3), HI, retry=FAST):
            got.append(d)

    t0 = time.monotonic()
    with pytest.raises(ProviderError) as info:
        run(scenario())
    assert info.value.kind == "timeout" and got == ["a ", "b "]
    assert time.monotonic() - t0 < 1.5
    assert len(srv.requests) == 1  # no retry once text was handed out


def test_stream_retries_before_first_token(srv: MockServer) -> None:
    srv.set_behaviour("f", Behaviour.failing(503, times=2, then="fine"))
    stream = stream_chat(srv.model_config("f"), HI, retry=FAST)
    assert "".join(run(collect(stream))) == "fine"
    assert stream.result.attempts == 3 and len(srv.requests) == 3


# --- non-streamed -------------------------------------------------------------------------------


def test_complete_result_and_request_fields(srv: MockServer) -> None:
    srv.set_behaviour("endpoint-id", Behaviour.fixed("The answer is 42."))
    model = srv.model_config(
        "endpoint-id", name="arena-name", temperature=0.3, max_tokens=64, top_p=0.9, seed=7,
        extra_body={"top_k": 5}, system_prompt="Be brief.",
    )
    res = run(complete_chat(model, HI))
    assert res.text == "The answer is 42." and res.finish_reason == "stop" and res.raw_model == "endpoint-id"
    assert (res.prompt_tokens, res.completion_tokens, res.usage_estimated) == (5, 4, False)
    assert res.latency_s > 0 and res.attempts == 1
    body = srv.requests[0].body
    assert body["model"] == "endpoint-id" and body["stream"] is False
    assert (body["temperature"], body["max_tokens"], body["top_p"], body["seed"], body["top_k"]) == (0.3, 64, 0.9, 7, 5)
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, *HI]

    run(complete_chat(model, [{"role": "system", "content": "Judge."}, *HI], temperature=0, top_p=None))
    body = srv.requests[1].body
    assert body["temperature"] == 0 and "top_p" not in body and body["messages"][0]["content"] == "Judge."


def test_usage_fallback_and_length(srv: MockServer) -> None:
    srv.set_behaviour("m", Behaviour.fixed("one two three four five six", usage=False))
    res = run(complete_chat(srv.model_config("m"), HI))
    assert res.usage_estimated and res.completion_tokens == len(res.text) // 4
    srv.set_behaviour("m", Behaviour.fixed("one two three four five six"))
    res = run(complete_chat(srv.model_config("m"), HI, max_tokens=2))
    assert res.text == "one two " and res.finish_reason == "length" and res.completion_tokens == 2


def test_payloads_pass_through_untouched(srv: MockServer) -> None:
    srv.set_behaviour("xss", Behaviour.fixed(XSS_PAYLOAD))
    assert run(complete_chat(srv.model_config("xss"), HI)).text == XSS_PAYLOAD
    assert "".join(run(collect(stream_chat(srv.model_config("xss"), HI)))) == XSS_PAYLOAD


# --- retries and errors -------------------------------------------------------------------------


def test_retry_after_two_500_then_success(srv: MockServer) -> None:
    srv.set_behaviour("flaky", Behaviour.failing(500, times=2, then="third time lucky"))
    res = run(complete_chat(srv.model_config("flaky"), HI, retry=FAST))
    assert res.text == "third time lucky" and res.attempts == 3
    assert [r.status for r in srv.requests] == [500, 500, 200]


def test_429_is_retried_with_retry_after(srv: MockServer) -> None:
    srv.set_behaviour("limited", Behaviour.failing(429, times=1, then="ok", retry_after_s=0))
    slow_policy = RetryPolicy(max_attempts=2, base_delay_s=30)  # Retry-After: 0 overrides the 30 s
    t0 = time.monotonic()
    assert run(complete_chat(srv.model_config("limited"), HI, retry=slow_policy)).text == "ok"
    assert time.monotonic() - t0 < 2 and [r.status for r in srv.requests] == [429, 200]


def test_retries_are_bounded(srv: MockServer) -> None:
    srv.set_behaviour("down", Behaviour.failing(502, times=0))
    with pytest.raises(ProviderError) as info:
        run(complete_chat(srv.model_config("down"), HI, retry=FAST))
    err = info.value
    assert (err.kind, err.status, err.attempts) == ("http_status", 502, 3) and len(srv.requests) == 3
    assert isinstance(err, OpenArenaError) and "'down'" in str(err) and "502" in str(err)


def test_client_errors_are_not_retried(srv: MockServer) -> None:
    with pytest.raises(ProviderError) as info:
        run(complete_chat(srv.model_config("no-such-model"), HI, retry=FAST))
    assert (info.value.kind, info.value.status) == ("http_status", 404) and len(srv.requests) == 1


def test_hang_times_out_within_the_timeout(srv: MockServer) -> None:
    srv.set_behaviour("hang", Behaviour.hanging())
    t0 = time.monotonic()
    with pytest.raises(ProviderError) as info:
        run(complete_chat(srv.model_config("hang", timeout_s=0.3), HI, retry=RetryPolicy(max_attempts=1)))
    elapsed = time.monotonic() - t0
    assert info.value.kind == "timeout" and 0.25 < elapsed < 5  # the server never answers: only the timeout ends the call
    # timeouts are retried: two attempts, each bounded
    t0 = time.monotonic()
    with pytest.raises(ProviderError) as info:
        run(complete_chat(srv.model_config("hang"), HI, timeout_s=0.2, retry=RetryPolicy(2, 0.01)))
    assert info.value.attempts == 2 and time.monotonic() - t0 < 1.5
    assert len(srv.requests_for("hang")) == 3
    with pytest.raises(ProviderError, match="timeout"):
        run(collect(stream_chat(srv.model_config("hang", timeout_s=0.2), HI, retry=RetryPolicy(1))))


@pytest.mark.parametrize("kind", ["json", "shape"])
def test_malformed_answers(srv: MockServer, kind: str) -> None:
    srv.set_behaviour("bad", Behaviour.broken(kind))  # type: ignore[arg-type]
    with pytest.raises(ProviderError) as info:
        run(complete_chat(srv.model_config("bad"), HI, retry=FAST))
    assert info.value.kind == "malformed"
    with pytest.raises(ProviderError) as info:
        run(collect(stream_chat(srv.model_config("bad"), HI, retry=FAST)))
    assert info.value.kind == "malformed"
    assert len(srv.requests) == 2  # not retried


def test_connection_refused() -> None:
    from openarena.providers import ModelConfig

    model = ModelConfig(name="gone", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=2)
    with pytest.raises(ProviderError) as info:
        run(complete_chat(model, HI, retry=FAST))
    assert info.value.kind == "connection" and info.value.attempts == 3


def test_api_key_from_env(srv: MockServer, monkeypatch: pytest.MonkeyPatch) -> None:
    srv.set_behaviour("m", "secret ok")
    srv._state.require_api_key = "s3cret"  # noqa: SLF001 - switch auth on for this server
    model = srv.model_config("m", api_key_env="OA_TEST_KEY")
    monkeypatch.delenv("OA_TEST_KEY", raising=False)
    with pytest.raises(ProviderError) as info:
        run(complete_chat(model, HI))
    assert info.value.kind == "missing_key" and "OA_TEST_KEY" in str(info.value)
    with pytest.raises(ProviderError, match="OA_TEST_KEY"):
        run(collect(stream_chat(model, HI)))
    assert srv.requests == []  # nothing was sent without a key

    monkeypatch.setenv("OA_TEST_KEY", "s3cret")
    assert run(complete_chat(model, HI)).text == "secret ok"
    assert srv.requests[0].headers["authorization"] == "Bearer s3cret"
    monkeypatch.setenv("OA_TEST_KEY", "wrong")
    with pytest.raises(ProviderError) as info:
        run(complete_chat(model, HI, retry=FAST))
    assert (info.value.status, info.value.attempts) == (401, 1) and "wrong" not in str(info.value)


# --- ping and batches ---------------------------------------------------------------------------


def test_ping(srv: MockServer) -> None:
    srv.set_behaviour("up", "pong pong pong")
    srv.set_behaviour("hang", Behaviour.hanging())
    ok = run(ping(srv.model_config("up")))
    assert ok.ok and ok.error is None and ok.latency_s > 0
    assert srv.requests[0].body["max_tokens"] == 1
    slow = run(ping(srv.model_config("hang"), timeout_s=0.2))
    assert not slow.ok and slow.kind == "timeout" and "hang" in slow.error
    missing = run(ping(srv.model_config("absent")))
    assert not missing.ok and missing.kind == "http_status" and "404" in missing.error


def test_map_bounded_respects_concurrency(srv: MockServer) -> None:
    srv.set_behaviour("echo", Behaviour.echo("re: ", delay_s=0.08))
    model = srv.model_config("echo")
    seen: list[tuple[int, int]] = []

    async def ask(i: int) -> str:
        return (await complete_chat(model, [{"role": "user", "content": f"q{i}"}])).text

    out = run(map_bounded(ask, range(9), concurrency=3, progress=lambda d, n: seen.append((d, n))))
    assert out == [f"re: q{i}" for i in range(9)]
    assert srv.max_in_flight == 3
    assert [d for d, _ in seen] == list(range(1, 10)) and {n for _, n in seen} == {9}


def test_map_bounded_errors() -> None:
    async def f(x: int) -> int:
        await asyncio.sleep(0.001 * x)
        if x == 2:
            raise ValueError("two")
        return x * 10

    assert run(map_bounded(f, [], 4)) == []
    out = run(map_bounded(f, range(4), 2, return_exceptions=True))
    assert out[:2] == [0, 10] and isinstance(out[2], ValueError) and out[3] == 30
    with pytest.raises(ValueError, match="two"):
        run(map_bounded(f, range(4), 2))
    with pytest.raises(ValueError):
        run(map_bounded(f, range(4), 0))
