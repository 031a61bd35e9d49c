"""An OpenAI-compatible endpoint that routes each request with a trained router.

``POST /v1/chat/completions`` with ``model`` = ``router-NAME-THRESHOLD`` (RouteLLM's naming,
e.g. ``router-mf-0.116``): the router NAME (one of the loaded router files) scores the last
user message; a strong/weak router sends the request to the strong model when the score is at
least THRESHOLD, else to the weak one; the multi-model ``p2l`` router reads THRESHOLD as a
price budget (USD per million output tokens, the registry's ``price.output_per_million``) and
sends it to the best model it predicts for the prompt among those within the budget. The
request is forwarded to the chosen registry model through :mod:`openarena.providers.client`
(streamed as server-sent events when ``stream`` is true); the answer names the chosen model in
``model`` and in the ``x-openarena-routed-model`` header. Every request appends one JSON line
to the decision log: time, router, threshold, score, chosen model, token counts, cost (USD),
latency, status.

``GET /v1/models`` lists the routers as ``router-NAME`` (a threshold is chosen per request).

Limits for strangers: request bodies up to ``max_body_bytes`` (default 1 MiB, checked on the
bytes read, not only the header), at most 256 messages, the routed text cut to its last
``max_prompt_chars`` characters before scoring (bounded CPU per request; scoring runs in a
worker thread, not on the event loop), at most ``max_concurrency`` requests in flight (429
beyond: per process; run one process, or put a shared limiter in front). With ``api_key``
set, requests must carry ``Authorization: Bearer <key>``. Upstream errors are answered with a
502 naming the routed model and the error kind, never a traceback.

Source: Ong et al. (2024), RouteLLM (lm-sys/RouteLLM openai_server.py: ``router-NAME-THRESHOLD``);
Frick et al. (2025), Prompt-to-Leaderboard (routing under a cost budget).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from openarena.text import message_text

__all__ = ["LoadedRouter", "RouteDecision", "create_route_app", "parse_router_model", "decide"]

_MODEL_RE = re.compile(r"^router-([a-z0-9_]+)-([0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)$")
_FORWARDED = ("temperature", "max_tokens", "top_p", "seed", "stop")


@dataclass(frozen=True)
class LoadedRouter:
    """A trained router ready to serve: name (``--router`` name), router (fitted), strong and
    weak (registry model names; None for a multi-model p2l router), models (p2l: registry names
    in coefficient order)."""

    name: str
    router: Any
    strong: str | None
    weak: str | None
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteDecision:
    """One routing decision: router, threshold, score (P(strong better) for strong/weak
    routers; the chosen model's coefficient for p2l), chosen (registry model name)."""

    router: str
    threshold: float
    score: float
    chosen: str


def parse_router_model(model: str) -> tuple[str, float]:
    """``'router-mf-0.116'`` -> ``('mf', 0.116)``. Raises ValueError otherwise."""
    m = _MODEL_RE.fullmatch(model or "")
    if not m:
        raise ValueError(f"model {model[:80]!r} is not router-NAME-THRESHOLD (e.g. router-mf-0.116)")
    t = float(m.group(2))
    if not math.isfinite(t):
        raise ValueError("the threshold is not a finite number")
    return m.group(1), t


def decide(loaded: LoadedRouter, prompt: str, threshold: float, prices: Mapping[str, float] | None = None) -> RouteDecision:
    """Route one prompt (CPU work: call it off the event loop).

    Strong/weak: strong when score >= threshold. p2l with ``models``: the best model among
    those priced at most ``threshold`` (USD per million output tokens; ``prices`` by model).
    Raises: DataError when no model fits the budget.
    """
    r = loaded.router
    if loaded.models:
        names = list(loaded.models)
        chosen = r.route([prompt], prices=dict(prices or {}), budget=threshold)[0]
        coef = r.coefficients([prompt])[0]
        return RouteDecision(loaded.name, threshold, float(coef[names.index(chosen)]), chosen)
    s = float(np.asarray(r.score([prompt]))[0])
    assert loaded.strong is not None and loaded.weak is not None
    return RouteDecision(loaded.name, threshold, s, loaded.strong if s >= threshold else loaded.weak)


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": None, "code": code}}, status_code=status)


class _DecisionLog:
    """Append-only JSON lines, one per request (thread-safe; each line flushed)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, rec: dict[str, Any]) -> None:
        if self.path is None:
            return
        line = json.dumps(rec, ensure_ascii=False) + "\n"
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()


def create_route_app(
    routers: Mapping[str, LoadedRouter],
    registry: Any,
    *,
    log_path: str | Path | None = None,
    api_key: str | None = None,
    max_body_bytes: int = 1 << 20,
    max_prompt_chars: int = 20_000,
    max_concurrency: int = 64,
    retry: Any = None,
):
    """The FastAPI app of ``openarena route serve`` (endpoints and limits: module docstring).

    Parameters: routers, {name: LoadedRouter}; registry, the ModelRegistry holding every model a
    router can choose (checked now); log_path, the decision log (JSONL; None: no log); api_key,
    required bearer token (None: open); the limits; retry, the RetryPolicy of upstream calls.
    Raises: DataError (from the registry) when a router's model is not in the registry.
    """
    from starlette.concurrency import run_in_threadpool

    from openarena.providers.client import ProviderError, complete_chat, stream_chat

    for lr in routers.values():  # fail at start, not on the first request
        for m in (lr.models or (lr.strong, lr.weak)):
            registry.get(m)
    prices = {m.name: float(m.price.output_per_million) for m in registry if m.price is not None}
    log = _DecisionLog(Path(log_path) if log_path else None)
    slots = asyncio.Semaphore(max_concurrency)
    app = FastAPI(title="OpenArena router", docs_url=None, redoc_url=None, openapi_url=None)

    def unauthorised(request: Request) -> bool:
        return api_key is not None and request.headers.get("authorization", "") != f"Bearer {api_key}"

    @app.get("/v1/models")
    async def list_models(request: Request) -> Any:
        if unauthorised(request):
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        return {"object": "list", "data": [{"id": f"router-{n}", "object": "model", "created": 0, "owned_by": "openarena"}
                                           for n in routers]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        if unauthorised(request):
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body_bytes):
            return _error(413, f"request body larger than {max_body_bytes} bytes")
        raw = bytearray()
        async for part in request.stream():
            raw += part
            if len(raw) > max_body_bytes:
                return _error(413, f"request body larger than {max_body_bytes} bytes")
        def no_constant(name: str):
            raise ValueError(f"{name} is not a JSON number")

        try:  # strict JSON: no NaN/Infinity, no lone surrogates, bounded nesting
            body = json.loads(bytes(raw), parse_constant=no_constant)
            if not isinstance(body, dict):
                raise ValueError("not an object")
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except (ValueError, UnicodeError, RecursionError):
            return _error(400, "the body is not a JSON object of valid text (no NaN, Infinity or lone surrogates)")
        try:
            name, threshold = parse_router_model(str(body.get("model", "")))
        except ValueError as e:
            return _error(404, str(e), code="model_not_found")
        if name not in routers:
            return _error(404, f"no router {name!r} here (loaded: {', '.join(routers)})", code="model_not_found")
        messages = body.get("messages")
        if (not isinstance(messages, list) or not 1 <= len(messages) <= 256
                or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)):
            return _error(400, "messages must be a list of 1 to 256 {role, content} objects")
        users = [message_text(m.get("content"), sep=" ") for m in messages if m.get("role") == "user"]
        if not users:
            return _error(400, "no user message to route")
        overrides = {k: body[k] for k in _FORWARDED if body.get(k) is not None}
        for k in ("temperature", "top_p"):
            if k in overrides and (isinstance(overrides[k], bool) or not isinstance(overrides[k], (int, float))
                                   or not 0 <= overrides[k] <= 2):
                return _error(400, f"{k} must be a number in 0..2")
        if "max_tokens" in overrides and (isinstance(overrides["max_tokens"], bool) or not isinstance(overrides["max_tokens"], int) or overrides["max_tokens"] < 1):
            return _error(400, "max_tokens must be a positive integer")
        if "seed" in overrides and (isinstance(overrides["seed"], bool) or not isinstance(overrides["seed"], int)):
            return _error(400, "seed must be an integer")
        if not isinstance(body.get("stream", False), bool):
            return _error(400, "stream must be true or false")
        stream = body.get("stream", False)
        if slots.locked():
            return _error(429, "too many requests in flight; retry later", "rate_limit_exceeded")
        await slots.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                slots.release()

        try:
            prompt = users[-1][-max_prompt_chars:]
            from openarena.errors import DataError

            try:
                d = await run_in_threadpool(decide, routers[name], prompt, threshold, prices)
            except DataError as e:
                release()
                return _error(400, str(e))
            target = registry.get(d.chosen)
            rid = f"chatcmpl-route-{uuid.uuid4().hex[:16]}"
            base = {"ts": time.time(), "id": rid, "router": name, "threshold": threshold, "score": round(d.score, 6),
                    "chosen": d.chosen, "stream": stream, "prompt_chars": len(users[-1])}
            clean = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
            if not stream:
                try:
                    res = await complete_chat(target, clean, retry=retry, **overrides)
                except ProviderError as e:
                    log.write({**base, "status": 502, "error": e.kind})
                    return _error(502, f"the routed model {d.chosen} failed: {e.kind}", "upstream_error")
                finally:
                    release()
                cost = target.cost(res.prompt_tokens, res.completion_tokens)
                log.write({**base, "status": 200, "prompt_tokens": res.prompt_tokens, "completion_tokens": res.completion_tokens,
                           "cost_usd": cost, "latency_s": round(res.latency_s, 4)})
                return JSONResponse({
                    "id": rid, "object": "chat.completion", "created": int(time.time()), "model": d.chosen,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": res.text},
                                 "finish_reason": res.finish_reason or "stop"}],
                    "usage": {"prompt_tokens": res.prompt_tokens, "completion_tokens": res.completion_tokens,
                              "total_tokens": res.prompt_tokens + res.completion_tokens},
                }, headers={"x-openarena-routed-model": d.chosen})

            async def events():
                # the slot is held only while this generator runs: a client that leaves before the
                # body starts (the generator never runs, so no finally) keeps no slot
                nonlocal released
                await slots.acquire()
                released = False
                created = int(time.time())

                def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                    doc = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": d.chosen,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                    return f"data: {json.dumps(doc, ensure_ascii=False)}\n\n"

                s = None
                logged = False

                def finish(status: int) -> None:
                    nonlocal logged
                    if logged:
                        return
                    logged = True
                    release()
                    res = s.result if s is not None else None
                    extra = ({"prompt_tokens": res.prompt_tokens, "completion_tokens": res.completion_tokens,
                              "cost_usd": target.cost(res.prompt_tokens, res.completion_tokens),
                              "latency_s": round(res.latency_s, 4)} if res is not None else {})
                    log.write({**base, "status": status, **extra})

                try:
                    yield chunk({"role": "assistant", "content": ""})
                    async with stream_chat(target, clean, retry=retry, **overrides) as s:
                        async for delta in s:
                            yield chunk({"content": delta})
                    res = s.result
                    yield chunk({}, (res.finish_reason if res else None) or "stop")
                    if res is not None and isinstance(body.get("stream_options"), dict) and body["stream_options"].get("include_usage"):
                        usage = {"prompt_tokens": res.prompt_tokens, "completion_tokens": res.completion_tokens,
                                 "total_tokens": res.prompt_tokens + res.completion_tokens}
                        yield f"data: {json.dumps({'id': rid, 'object': 'chat.completion.chunk', 'created': created, 'model': d.chosen, 'choices': [], 'usage': usage})}\n\n"
                    finish(200)  # logged before [DONE], so a client that saw the end finds the record
                    yield "data: [DONE]\n\n"
                except ProviderError as e:
                    finish(502)
                    err = {"error": {"message": f"the routed model {d.chosen} failed: {e.kind}", "type": "upstream_error",
                                     "param": None, "code": None}}
                    yield f"data: {json.dumps(err)}\n\n"
                finally:
                    finish(499)  # the client went away mid-stream

            release()  # re-acquired by events()
            return StreamingResponse(events(), media_type="text/event-stream",
                                     headers={"x-openarena-routed-model": d.chosen, "cache-control": "no-cache"})
        except BaseException:
            release()
            raise

    return app
