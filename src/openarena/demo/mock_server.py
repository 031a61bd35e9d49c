r"""A mock model server speaking the OpenAI chat-completions protocol, for tests and the demo.

It is a real HTTP server (FastAPI + uvicorn) on 127.0.0.1, so tests exercise the same official
``openai`` client, sockets and server-sent events as production. Endpoints (as in the OpenAI
API reference):

- ``GET /v1/models``: ``{"object": "list", "data": [{"id": ..., "object": "model", ...}]}``;
- ``POST /v1/chat/completions`` with ``stream: false``: a ``chat.completion`` object with
  ``choices[0].message.content`` and ``usage``; with ``stream: true``: ``data: {chunk}`` SSE
  lines of ``chat.completion.chunk`` objects (first delta ``{"role": "assistant", "content": ""}``,
  then ``{"content": ...}`` deltas, then a delta ``{}`` with ``finish_reason``), a final chunk
  with ``choices: []`` and ``usage`` when ``stream_options.include_usage`` is true, then
  ``data: [DONE]``. Errors are ``{"error": {"message", "type", "param", "code"}}`` bodies.
  User messages may carry OpenAI content parts (``{"type": "text"}`` and ``{"type":
  "image_url", "image_url": {"url": "data:image/png;base64,..."}}``); a malformed part is a
  400 ``invalid_image_url``; a vision behaviour (:meth:`Behaviour.vision`) answers with the
  format, size and colour of the images it was sent (:func:`describe_images`);
- ``POST /v1/embeddings`` (any model id of the server): ``{"object": "list", "data": [{"object":
  "embedding", "index": i, "embedding": [...]}], "model", "usage"}``, deterministic vectors of
  ``dimensions`` (default 64, at most 4096) floats: character 3-grams of the lower-cased text
  hashed (blake2b) into the dimensions, counted, L2-normalised; so similar texts get similar
  vectors. ``input`` is a string or a list of at most 2048 strings.

Token counts of the mock: prompt_tokens = whitespace-separated words of all messages;
completion_tokens = number of streamed text chunks (words by default). ``max_tokens`` truncates
the answer to that many chunks with ``finish_reason: "length"``.

Each model has a :class:`Behaviour` (what it answers and how it misbehaves); the server records
every request (:class:`RecordedRequest`) and the peak number of requests in flight.

In a test::

    with MockServer({"m": Behaviour.fixed("Hello there")}) as srv:
        model = srv.model_config("m")          # a ModelConfig pointing at this server
        result = asyncio.run(complete_chat(model, [{"role": "user", "content": "hi"}]))
        assert result.text == "Hello there" and len(srv.requests) == 1

Standalone (for the demo registry ``openarena/demo/models.yaml``)::

    python -m openarena.demo.mock_server --port 8101 [--config behaviours.yaml]

The config file maps model ids to behaviour fields (the :class:`Behaviour` attributes)::

    models:
      mock-echo: {echo_prefix: "You said: ", chunk_delay_s: 0.05}
      mock-judge: {rules: [{pattern: '\[\[A\]\]', answer: '[[A>B]]'}], text: '[[A=B]]'}
      mock-flaky: {text: "finally", fail_status: 500, fail_first: 2}

Without ``--config`` it serves :data:`DEMO_BEHAVIOURS`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from openarena.errors import DataError
from openarena.providers.registry import ModelConfig
from openarena.text import message_text

__all__ = [
    "DEMO_BEHAVIOURS",
    "describe_images",
    "MARKDOWN_SAMPLE",
    "XSS_PAYLOAD",
    "hashed_embedding",
    "Behaviour",
    "MockServer",
    "RecordedRequest",
    "Rule",
    "create_app",
]

XSS_PAYLOAD = (
    "Here is some <b>bold</b> HTML.\n\n"
    "<script>alert('xss-script')</script>\n"
    "<img src=x onerror=\"alert('xss-img')\">\n"
    "[click me](javascript:alert('xss-link'))\n"
    "<iframe src=\"javascript:alert('xss-iframe')\"></iframe>\n"
    "<a href=\"#\" onclick=\"alert('xss-onclick')\">link</a>\n"
    "</div></pre><svg onload=\"alert('xss-svg')\">"
)
"""Answer text whose every script must be neutralised by a page that renders it."""

MARKDOWN_SAMPLE = (
    "## A short answer\n\n"
    "Here is a list:\n\n"
    "1. **bold** item\n"
    "2. *italic* item with `inline code`\n\n"
    "```python\n"
    "def add(a, b):\n"
    "    return a + b\n"
    "```\n\n"
    "| model | score |\n"
    "|-------|-------|\n"
    "| A     | 1.0   |\n\n"
    "Inline math $e^{i\\pi} + 1 = 0$ and a [link](https://example.org)."
)
"""Markdown with a heading, lists, code fence, table, math and a link, for rendering tests."""


class Rule(BaseModel):
    """Answer ``answer`` when ``pattern`` (a regex, searched with DOTALL) is found in the prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    answer: str


class Behaviour(BaseModel):
    """What one mock model answers, and how it streams or fails.

    The answer is taken from the first source that is set, in this order: ``responder(request
    body) -> str``; ``rules`` (first regex found in the prompt = every message's text joined by
    newlines; when none matches, ``text`` or else ``"no rule matched"``); ``script`` (answers
    consumed in order, one per successful call, the last one repeating); ``echo_prefix`` (the
    prefix + the last user message); ``text`` (fixed); ``chunks`` (fixed, streamed exactly as
    these pieces); else ``"Hello from <model>."``.

    Streaming: the answer is cut into ``chunks`` if given, else pieces of ``chunk_chars``
    characters, else words (each with its trailing whitespace); ``chunk_delay_s`` seconds pass
    before each piece; ``delay_s`` before the response starts. A non-streamed answer waits
    ``delay_s + chunk_delay_s * n_chunks``. ``stall_after=k`` streams k pieces then stops sending
    without closing (for idle timeouts).

    Failures: ``fail_status`` (e.g. 500, 429) for the first ``fail_first`` calls (0 = every call),
    with ``retry_after_s`` as a Retry-After header; ``hang`` never answers (until the client
    disconnects or the server stops); ``malformed="json"`` sends invalid JSON (an invalid SSE
    event when streaming), ``"shape"`` valid JSON that is not a chat completion. ``usage=False``
    leaves usage out (servers that report none).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    text: str | None = None
    echo_prefix: str | None = None
    script: list[str] | None = None
    rules: list[Rule] | None = None
    responder: Callable[[dict[str, Any]], str] | None = Field(default=None, exclude=True)
    chunks: list[str] | None = None
    chunk_chars: int | None = Field(default=None, ge=1)
    chunk_delay_s: float = Field(default=0.0, ge=0)
    delay_s: float = Field(default=0.0, ge=0)
    stall_after: int | None = Field(default=None, ge=0)
    fail_status: int | None = Field(default=None, ge=400, le=599)
    fail_first: int = Field(default=0, ge=0)
    retry_after_s: float | None = Field(default=None, ge=0)
    hang: bool = False
    malformed: Literal["json", "shape"] | None = None
    usage: bool = True
    finish_reason: str = "stop"
    describe_images: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Behaviour:
        if self.script is not None and not self.script:
            raise ValueError("script needs at least one answer")
        return self

    # Factories -------------------------------------------------------------------------------
    @classmethod
    def vision(cls, prefix: str = "", **kw: Any) -> Behaviour:
        """A model that sees images: answer ``prefix`` + :func:`describe_images` of the
        request (format, size in pixels and dominant colour of each ``image_url`` part of the
        last user message)."""
        return cls(describe_images=prefix, **kw)

    @classmethod
    def fixed(cls, text: str, **kw: Any) -> Behaviour:
        """Always answer ``text``."""
        return cls(text=text, **kw)

    @classmethod
    def echo(cls, prefix: str = "", **kw: Any) -> Behaviour:
        """Answer ``prefix`` + the last user message."""
        return cls(echo_prefix=prefix, **kw)

    @classmethod
    def scripted(cls, answers: list[str], **kw: Any) -> Behaviour:
        """Answer ``answers[0]``, then ``answers[1]``, ...; the last one repeats."""
        return cls(script=list(answers), **kw)

    @classmethod
    def by_rules(cls, rules: Mapping[str, str] | list[tuple[str, str]], default: str | None = None, **kw: Any) -> Behaviour:
        """Answer by regex on the prompt: ``{pattern: answer}`` in order; ``default`` if none matches."""
        items = rules.items() if isinstance(rules, Mapping) else rules
        return cls(rules=[Rule(pattern=p, answer=a) for p, a in items], text=default, **kw)

    @classmethod
    def from_function(cls, responder: Callable[[dict[str, Any]], str], **kw: Any) -> Behaviour:
        """Answer ``responder(request_body)`` (the parsed JSON body of the request)."""
        return cls(responder=responder, **kw)

    @classmethod
    def failing(cls, status: int = 500, times: int = 0, then: str = "ok", **kw: Any) -> Behaviour:
        """HTTP ``status`` for the first ``times`` calls (0 = always), then answer ``then``."""
        return cls(fail_status=status, fail_first=times, text=then, **kw)

    @classmethod
    def hanging(cls) -> Behaviour:
        """Never answer."""
        return cls(hang=True)

    @classmethod
    def broken(cls, kind: Literal["json", "shape"] = "json") -> Behaviour:
        """Answer with a malformed body."""
        return cls(malformed=kind)


DEMO_BEHAVIOURS: dict[str, Behaviour] = {
    "mock-echo": Behaviour.echo("You said: ", chunk_delay_s=0.03),
    "mock-poet": Behaviour.fixed(
        "Silent circuits hum,\nTwo answers race through the dark,\nYou choose the brighter.",
        chunk_delay_s=0.06,
    ),
    "mock-markdown": Behaviour.fixed(MARKDOWN_SAMPLE, chunk_delay_s=0.02),
    "mock-slow": Behaviour.fixed(
        "This model thinks slowly. " * 20 + "Press Stop whenever you like.", chunk_delay_s=0.15
    ),
    "mock-flaky": Behaviour.failing(
        500, times=1, then="I failed once, the client retried, and here I am.", chunk_delay_s=0.03
    ),
    "mock-vision-eye": Behaviour.vision(chunk_delay_s=0.04),
    "mock-vision-poet": Behaviour.vision("Pixels in my eye. ", chunk_delay_s=0.05),
    "mock-judge": Behaviour.by_rules(
        {r"\[\[A\]\]|A is better": "Assistant A is more helpful. My final verdict is: [[A>B]]"},
        default="Both answers are comparable. My final verdict is: [[A=B]]",
    ),
}
"""Behaviours served by ``python -m openarena.demo.mock_server`` without ``--config``;
their ids are the ``model_id``s of ``openarena/demo/models.yaml``."""


# ---------------------------------------------------------------------------------------------
# Recording


@dataclass
class RecordedRequest:
    """One request the server received.

    Attributes: model (the requested model id), body (parsed JSON), headers (lower-case names),
    stream, status (HTTP status sent), chunks_sent (text chunks written to a stream),
    completed (the whole answer was sent), disconnected (the client went away first),
    started and ended (``time.monotonic()``; ended None while running).
    """

    model: str
    body: dict[str, Any]
    headers: dict[str, str]
    stream: bool
    status: int = 200
    chunks_sent: int = 0
    completed: bool = False
    disconnected: bool = False
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's messages."""
        msgs = self.body.get("messages")
        return msgs if isinstance(msgs, list) else []

    @property
    def prompt(self) -> str:
        """Every message's text, joined by newlines."""
        return "\n".join(message_text(m.get("content"), sep="") if isinstance(m, Mapping) else "" for m in self.messages)

    @property
    def last_user(self) -> str:
        """The text of the last user message ('' if none)."""
        for m in reversed(self.messages):
            if isinstance(m, Mapping) and m.get("role") == "user":
                return message_text(m.get("content"), sep="")
        return ""


class _State:
    """Behaviours, counters and the request log, shared by the app and the test thread."""

    def __init__(self, models: Mapping[str, Behaviour], require_api_key: str | None) -> None:
        self.lock = threading.Lock()
        self.behaviours: dict[str, Behaviour] = dict(models)
        self.require_api_key = require_api_key
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, int] = {}
        self.answered: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = False
        self.seq = 0

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self, rec: RecordedRequest | None) -> None:
        with self.lock:
            self.in_flight -= 1
            if rec is not None:
                rec.ended = time.monotonic()


def _split(text: str, b: Behaviour) -> list[str]:
    if b.chunks is not None and text == "".join(b.chunks):
        return list(b.chunks)
    if b.chunk_chars:
        return [text[i : i + b.chunk_chars] for i in range(0, len(text), b.chunk_chars)]
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


_COLOURS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "red": (200, 30, 30),
    "green": (30, 160, 30), "blue": (30, 30, 200), "yellow": (230, 210, 40), "orange": (240, 140, 20),
    "purple": (130, 40, 160), "brown": (120, 70, 30),
}


def _describe_one(url: Any) -> str:
    import base64
    import io

    if not isinstance(url, str) or not url.startswith("data:"):
        return "an image at a URL this mock does not fetch"
    try:
        from PIL import Image

        data = base64.b64decode(url.split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(data)) as im:
            fmt, (w, h) = im.format or "image", im.size
            if w * h > 50_000_000:
                return f"a {fmt} of {w} × {h} pixels"
            r, g, b = im.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    except Exception:  # noqa: BLE001 - a mock: say what it could not read
        return "an image this mock could not decode"
    colour = min(_COLOURS, key=lambda c: sum((x - y) ** 2 for x, y in zip(_COLOURS[c], (r, g, b))))
    return f"a {fmt} of {w} × {h} pixels, mostly {colour}"


def describe_images(body: Mapping[str, Any]) -> str:
    """What the mock's vision models answer: the images (OpenAI ``image_url`` content parts)
    of the last user message of a chat-completions request body, e.g. ``"I see 1 image: a PNG
    of 64 × 48 pixels, mostly red."``, or ``"I see no image."``. Data URLs only (decoded with
    Pillow); other URLs are named, not fetched."""
    messages = body.get("messages") if isinstance(body, Mapping) else None
    last = next((m for m in reversed(messages or []) if isinstance(m, Mapping) and m.get("role") == "user"), None)
    content = last.get("content") if last else None
    parts = [p for p in content if isinstance(p, Mapping) and p.get("type") == "image_url"] if isinstance(content, list) else []
    if not parts:
        return "I see no image."
    seen = [_describe_one((p.get("image_url") or {}).get("url")) for p in parts]
    return f"I see {len(seen)} image{'s' if len(seen) > 1 else ''}: " + "; ".join(seen) + "."


def _bad_image_part(body: Mapping[str, Any]) -> str | None:
    """Why an ``image_url`` content part of the request is malformed (as OpenAI refuses it),
    or None."""
    for i, m in enumerate(body.get("messages") or []):
        content = m.get("content") if isinstance(m, Mapping) else None
        if not isinstance(content, list):
            continue
        for j, p in enumerate(content):
            if not isinstance(p, Mapping) or p.get("type") not in ("text", "image_url"):
                return f"messages[{i}].content[{j}]: expected a part of type text or image_url"
            if p["type"] == "image_url":
                url = (p.get("image_url") or {}).get("url") if isinstance(p.get("image_url"), Mapping) else None
                if not isinstance(url, str) or not url.startswith(("data:image/", "http://", "https://")):
                    return f"messages[{i}].content[{j}].image_url.url: expected a data:image/... or http(s) URL"
    return None


def _answer(model: str, b: Behaviour, body: dict[str, Any], rec: RecordedRequest, answered: int) -> str:
    if b.responder is not None:
        return str(b.responder(body))
    if b.describe_images is not None:
        return b.describe_images + describe_images(body)
    if b.rules is not None:
        prompt = rec.prompt
        for rule in b.rules:
            if re.search(rule.pattern, prompt, flags=re.S):
                return rule.answer
        return b.text if b.text is not None else "no rule matched"
    if b.script is not None:
        return b.script[min(answered, len(b.script) - 1)]
    if b.echo_prefix is not None:
        return b.echo_prefix + rec.last_user
    if b.text is not None:
        return b.text
    if b.chunks is not None:
        return "".join(b.chunks)
    return f"Hello from {model}."


async def _json_object(request: Request) -> "dict[str, Any] | JSONResponse":
    """The request's JSON object body, or the 400 answer the OpenAI API gives when it is not one."""
    try:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            raise ValueError("body is not an object")
    except ValueError as e:
        return _error(400, f"We could not parse the JSON body of your request: {e}", "invalid_request_error")
    return body


def _error(status: int, message: str, type_: str, code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _sleep_or_disconnect(request: Request, seconds: float, state: _State) -> bool:
    """Sleep, checking every 20 ms whether the client left; True if it did (or the server stops)."""
    deadline = time.monotonic() + seconds
    while True:
        if state.stopping or await request.is_disconnected():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(left, 0.02))


def hashed_embedding(text: str, dim: int = 64) -> list[float]:
    """The mock's embedding of ``text``: counts of its lower-cased character 3-grams hashed
    (blake2b, 8 bytes) into ``dim`` buckets with a hashed sign, L2-normalised (all zeros for
    an empty text). Deterministic across processes and machines."""
    import hashlib
    import math

    t = f" {text.lower()} "
    v = [0.0] * dim
    for i in range(max(0, len(t) - 2)):
        h = int.from_bytes(hashlib.blake2b(t[i:i + 3].encode("utf-8"), digest_size=8).digest(), "little")
        v[h % dim] += 1.0 if (h >> 63) & 1 else -1.0
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n else v


def create_app(state: _State) -> FastAPI:
    """The FastAPI app of a mock server over ``state`` (see the module docstring for endpoints)."""
    app = FastAPI(title="OpenArena mock OpenAI-compatible server", docs_url=None, redoc_url=None, openapi_url=None)

    def auth_error(request: Request) -> Any:
        if state.require_api_key is None:
            return None
        if request.headers.get("authorization", "") != f"Bearer {state.require_api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return None

    @app.get("/v1/models")
    async def list_models(request: Request) -> Any:
        if (err := auth_error(request)) is not None:
            return err
        with state.lock:
            names = list(state.behaviours)
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "openarena-mock"} for n in names]
        return {"object": "list", "data": data}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        model = str(body.get("model", ""))
        rec = RecordedRequest(model, body, {k.lower(): v for k, v in request.headers.items()}, False)
        with state.lock:
            state.requests.append(rec)
            known = model in state.behaviours
        rec.ended = time.monotonic()
        if (err := auth_error(request)) is not None:
            rec.status = 401
            return err
        if not known:
            rec.status = 404
            return _error(404, f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found")
        inp = body.get("input")
        texts = [inp] if isinstance(inp, str) else inp
        dim = body.get("dimensions", 64)
        if (not isinstance(texts, list) or not 1 <= len(texts) <= 2048 or not all(isinstance(t, str) for t in texts)
                or not isinstance(dim, int) or not 1 <= dim <= 4096):
            rec.status = 400
            return _error(400, "input must be a string or a list of 1 to 2048 strings; dimensions 1 to 4096",
                          "invalid_request_error")
        rec.status = 200
        data = [{"object": "embedding", "index": i, "embedding": hashed_embedding(t, dim)} for i, t in enumerate(texts)]
        n_tok = sum(len(t.split()) for t in texts)
        return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": n_tok, "total_tokens": n_tok}}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        model = str(body.get("model", ""))
        stream = bool(body.get("stream", False))
        bad_part = _bad_image_part(body)
        rec = RecordedRequest(model, body, {k.lower(): v for k, v in request.headers.items()}, stream)
        with state.lock:
            state.requests.append(rec)
            state.seq += 1
            seq = state.seq
        if (err := auth_error(request)) is not None:
            rec.status, rec.ended = 401, time.monotonic()
            return err
        with state.lock:
            behaviour = state.behaviours.get(model)
            if behaviour is not None:
                state.calls[model] = call_no = state.calls.get(model, 0) + 1
        if behaviour is None:
            rec.status, rec.ended = 404, time.monotonic()
            return _error(404, f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found")
        if bad_part is not None:
            rec.status, rec.ended = 400, time.monotonic()
            return _error(400, f"Invalid content part: {bad_part}", "invalid_request_error", "invalid_image_url")
        b = behaviour
        state.enter()
        streaming_started = False
        try:
            if b.fail_status is not None and (b.fail_first == 0 or call_no <= b.fail_first):
                rec.status = b.fail_status
                headers = {"retry-after": f"{b.retry_after_s:g}"} if b.retry_after_s is not None else None
                kind = "rate_limit_exceeded" if b.fail_status == 429 else "server_error"
                return _error(b.fail_status, f"mock failure {call_no} of {b.fail_first or 'every'}", kind, None, headers)
            if b.hang:
                while not await _sleep_or_disconnect(request, 3600, state):
                    pass
                rec.disconnected = True
                rec.status = 504
                return Response(status_code=504)
            if b.delay_s and await _sleep_or_disconnect(request, b.delay_s, state):
                rec.disconnected = True
                return Response(status_code=499)
            with state.lock:
                answered = state.answered.get(model, 0)
                state.answered[model] = answered + 1
            text = _answer(model, b, body, rec, answered)
            pieces = _split(text, b)
            finish = b.finish_reason
            max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
            if isinstance(max_tokens, int) and 0 < max_tokens < len(pieces):
                pieces, finish = pieces[:max_tokens], "length"
            prompt_tokens = len(rec.prompt.split())
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(pieces),
                "total_tokens": prompt_tokens + len(pieces),
            }
            base = {"id": f"chatcmpl-mock-{seq}", "created": int(time.time()), "model": model,
                    "system_fingerprint": "openarena-mock"}
            if not stream:
                if b.malformed == "json":
                    return Response('{"id": "chatcmpl-mock", "choices": [{"message": {"content": "trunc',
                                    media_type="application/json")
                if b.malformed == "shape":
                    return JSONResponse({"result": text, "status": "ok"})
                if b.chunk_delay_s and await _sleep_or_disconnect(request, b.chunk_delay_s * len(pieces), state):
                    rec.disconnected = True
                    return Response(status_code=499)
                out = dict(base, object="chat.completion", choices=[{
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces), "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }])
                if b.usage:
                    out["usage"] = usage
                rec.chunks_sent, rec.completed = len(pieces), True
                return JSONResponse(out)

            opts = body.get("stream_options")
            include_usage = b.usage and isinstance(opts, dict) and bool(opts.get("include_usage"))

            def event(choices: list[dict[str, Any]], usage_value: Any = None) -> str:
                chunk = dict(base, object="chat.completion.chunk", choices=choices)
                if include_usage:
                    chunk["usage"] = usage_value
                return f"data: {json.dumps(chunk)}\n\n"

            def delta(d: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
                return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish_reason}]

            async def events() -> Any:
                try:
                    yield event(delta({"role": "assistant", "content": ""}))
                    if b.malformed is not None:
                        yield "data: {\"choices\": [{\"delta\": {\"content\": \"tru\n\n" if b.malformed == "json" \
                            else f"data: {json.dumps({'result': text})}\n\n"
                        yield "data: [DONE]\n\n"
                        return
                    for i, piece in enumerate(pieces):
                        if b.stall_after is not None and i >= b.stall_after:
                            while not state.stopping:
                                await asyncio.sleep(0.02)
                            return
                        if b.chunk_delay_s:
                            await asyncio.sleep(b.chunk_delay_s)
                        yield event(delta({"content": piece}))
                        rec.chunks_sent += 1
                    yield event(delta({}, finish))
                    if include_usage:
                        yield event([], usage)
                    yield "data: [DONE]\n\n"
                    rec.completed = True
                except (asyncio.CancelledError, GeneratorExit):
                    rec.disconnected = True
                    raise
                finally:
                    state.leave(rec)

            streaming_started = True
            return StreamingResponse(events(), media_type="text/event-stream",
                                     headers={"cache-control": "no-cache"})
        finally:
            if not streaming_started:
                state.leave(rec)

    return app


# ---------------------------------------------------------------------------------------------
# Runner


def _coerce(models: Mapping[str, Behaviour | str | Mapping[str, Any]] | None) -> dict[str, Behaviour]:
    out: dict[str, Behaviour] = {}
    for name, b in (models or {}).items():
        if isinstance(b, Behaviour):
            out[name] = b
        elif isinstance(b, str):
            out[name] = Behaviour.fixed(b)
        else:
            out[name] = Behaviour.model_validate(dict(b))
    return out


class MockServer:
    """Run the mock server in a background thread; a context manager.

    Parameters: models, ``{model_id: Behaviour}`` (a str is shorthand for ``Behaviour.fixed``,
    a dict for ``Behaviour(**dict)``); host; port, 0 picks a free port; require_api_key, when
    set every request must carry ``Authorization: Bearer <require_api_key>`` (else HTTP 401).

    Attributes: base_url (``http://127.0.0.1:PORT/v1``), port, requests (list of
    RecordedRequest, in arrival order), max_in_flight (peak simultaneous chat requests).
    Raises: RuntimeError if the server does not start within 10 s.
    """

    def __init__(
        self,
        models: Mapping[str, Behaviour | str | Mapping[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        require_api_key: str | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._state = _State(_coerce(models), require_api_key)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # Lifecycle -------------------------------------------------------------------------------
    def start(self) -> MockServer:
        """Bind, start serving in a daemon thread and wait until ready; returns self."""
        import uvicorn

        self._state.stopping = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self._state), log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=1, timeout_keep_alive=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"mock-openai-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"mock server on port {self.port} did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving (hanging requests are released) and join the thread."""
        self._state.stopping = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Inspection and control --------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, the base_url for a registry entry."""
        if self.port is None:
            raise RuntimeError("the mock server is not started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, in arrival order."""
        with self._state.lock:
            return list(self._state.requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """The requests received for one model id."""
        return [r for r in self.requests if r.model == model]

    @property
    def max_in_flight(self) -> int:
        """The largest number of chat requests being served at the same time."""
        return self._state.max_in_flight

    @property
    def in_flight(self) -> int:
        """Chat requests being served now."""
        return self._state.in_flight

    def set_behaviour(self, model: str, behaviour: Behaviour | str) -> None:
        """Add or replace a model's behaviour (its call counters restart)."""
        b = _coerce({model: behaviour})[model]
        with self._state.lock:
            self._state.behaviours[model] = b
            self._state.calls.pop(model, None)
            self._state.answered.pop(model, None)

    def reset(self) -> None:
        """Forget recorded requests, call counters and the in-flight peak."""
        with self._state.lock:
            self._state.requests.clear()
            self._state.calls.clear()
            self._state.answered.clear()
            self._state.max_in_flight = self._state.in_flight

    def model_config(self, model_id: str, *, name: str | None = None, **fields: Any) -> ModelConfig:
        """A registry ``ModelConfig`` for ``model_id`` on this server (name defaults to the id).

        Extra keyword arguments are ModelConfig fields (e.g. ``timeout_s=0.5``,
        ``api_key_env="MY_KEY"``).
        """
        return ModelConfig(name=name or model_id, base_url=self.base_url, model_id=model_id, **fields)


def load_behaviours(path: str | Path) -> dict[str, Behaviour]:
    """Read a behaviours YAML file (``models: {model_id: {behaviour fields}}``).

    Raises: DataError naming the file, the model (as field) and the problem.
    """
    import yaml

    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"cannot read behaviours: {e}", source) from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise DataError("no 'models' mapping", source, field="models", expected="models: {model_id: {behaviour}}")
    out = {}
    for name, spec in models.items():
        try:
            out[str(name)] = _coerce({str(name): spec if spec is not None else {}})[str(name)]
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise DataError(f"model {name!r}: {err['msg']}", source, None, loc or str(name),
                            "Behaviour fields: " + ", ".join(Behaviour.model_fields)) from None
    return out


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m openarena.demo.mock_server``."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Mock OpenAI-compatible chat server (for tests and the demo).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--config", help="YAML file: models: {model_id: {behaviour fields}}; default: the demo models")
    parser.add_argument("--require-api-key", default=None, help="reject requests without this bearer token")
    args = parser.parse_args(argv)
    behaviours = load_behaviours(args.config) if args.config else dict(DEMO_BEHAVIOURS)
    state = _State(behaviours, args.require_api_key)
    print(f"mock OpenAI server on http://{args.host}:{args.port}/v1 serving: {', '.join(behaviours)}", flush=True)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=1)


if __name__ == "__main__":  # pragma: no cover
    main()
