"""The mock OpenAI-compatible server itself: behaviours, recording, auth, and the standalone runner."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from openarena.demo.mock_server import (
    DEMO_BEHAVIOURS,
    Behaviour,
    MockServer,
    load_behaviours,
)
from openarena.errors import DataError
from openarena.providers import ModelConfig, ProviderError, complete_chat, stream_chat
from tests.providers.test_client import free_port


def ask(model: ModelConfig, text: str) -> str:
    return asyncio.run(complete_chat(model, [{"role": "user", "content": text}])).text


def test_behaviours() -> None:
    judge = Behaviour.by_rules({r"\[\[A\]\]": "[[A>B]]", r"assistant.*B is better": "[[B>A]]"}, default="[[A=B]]")
    models = {
        "echo": Behaviour.echo("You said: "),
        "script": Behaviour.scripted(["first", "second"]),
        "judge": judge,
        "fn": Behaviour.from_function(lambda body: f"{len(body['messages'])} messages"),
        "plain": "just text",
    }
    with MockServer(models) as srv:
        assert ask(srv.model_config("echo"), "ping") == "You said: ping"
        script = srv.model_config("script")
        assert [ask(script, "x") for _ in range(3)] == ["first", "second", "second"]
        j = srv.model_config("judge")
        assert ask(j, "verdict [[A]] please") == "[[A>B]]"
        assert ask(j, "I think assistant\nB is better") == "[[B>A]]"
        assert ask(j, "no idea") == "[[A=B]]"
        assert ask(srv.model_config("fn"), "x") == "1 messages"
        assert ask(srv.model_config("plain"), "x") == "just text"
        assert [r.model for r in srv.requests][:2] == ["echo", "script"]
        assert srv.requests[0].last_user == "ping" and "verdict" in srv.requests_for("judge")[0].prompt
        srv.reset()
        assert srv.requests == []
        listed = httpx.get(f"{srv.base_url}/models").json()
        assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == list(models)


def test_raw_protocol() -> None:
    """Wire format as in the OpenAI API reference (checked on the raw bytes)."""
    with MockServer({"m": "a b"}) as srv:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
                "stream_options": {"include_usage": True}}
        lines = [ln for ln in httpx.post(f"{srv.base_url}/chat/completions", json=body).text.split("\n") if ln]
        assert all(ln.startswith("data: ") for ln in lines) and lines[-1] == "data: [DONE]"
        import json

        chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["a ", "b"]
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
        assert all(c["object"] == "chat.completion.chunk" and c["usage"] is None for c in chunks[:-1])
        r = httpx.post(f"{srv.base_url}/chat/completions", content=b"{not json")
        assert r.status_code == 400 and "error" in r.json()


def test_require_api_key() -> None:
    with MockServer({"m": "hi"}, require_api_key="k1") as srv:
        assert httpx.get(f"{srv.base_url}/models").status_code == 401
        with pytest.raises(ProviderError) as info:
            asyncio.run(complete_chat(srv.model_config("m"), [{"role": "user", "content": "x"}]))
        assert info.value.status == 401


def test_load_behaviours(tmp_path: Path) -> None:
    cfg = tmp_path / "b.yaml"
    cfg.write_text(
        "models:\n  m1: {text: hello, chunk_delay_s: 0.01}\n  m2: {fail_status: 500, fail_first: 1}\n"
        "  mock-judge: {rules: [{pattern: '\\[\\[A\\]\\]', answer: '[[A>B]]'}], text: '[[A=B]]'}\n"
    )
    got = load_behaviours(cfg)
    assert got["m1"].text == "hello" and got["m2"].fail_first == 1
    with MockServer(got) as srv:
        assert ask(srv.model_config("mock-judge"), "say [[A]]") == "[[A>B]]"
        assert ask(srv.model_config("mock-judge"), "say A") == "[[A=B]]"
    cfg.write_text("models:\n  m1: {txet: hello}\n")
    with pytest.raises(DataError) as info:
        load_behaviours(cfg)
    assert str(cfg) in str(info.value) and "txet" in str(info.value)


def test_standalone_serves_the_demo_registry(tmp_path: Path) -> None:
    from openarena.providers import load_registry

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "openarena.demo.mock_server", "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=0.5)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "mock server did not start"
                time.sleep(0.05)
        from openarena.demo import DEMO_REGISTRY as demo
        reg = load_registry(demo)
        echo = reg.get("demo-echo").model_copy(update={"base_url": f"http://127.0.0.1:{port}/v1"})
        flaky = reg.get("demo-flaky").model_copy(update={"base_url": f"http://127.0.0.1:{port}/v1"})

        async def both() -> tuple[str, str]:
            a = "".join([d async for d in stream_chat(echo, [{"role": "user", "content": "hey"}])])
            b = (await complete_chat(flaky, [{"role": "user", "content": "x"}])).text
            return a, b

        a, b = asyncio.run(both())
        assert a == "You said: hey" and b == DEMO_BEHAVIOURS["mock-flaky"].text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
