"""A thin wrapper over the official ``openai`` client for every model of the registry.

One call = one chat completion against ``model.base_url`` (any server speaking the OpenAI
chat-completions protocol). What this module adds to the official client, and nothing more:

- the key is read from the environment variable named by ``model.api_key_env`` at call time
  (a missing key is a :class:`ProviderError` of kind ``missing_key`` naming the variable);
- the model's generation parameters and system prompt are applied to every request;
- retries with exponential backoff and jitter on HTTP 408/409/429/5xx, timeouts and connection
  errors (bounded attempts, :class:`RetryPolicy`); ``Retry-After`` is honoured up to the maximum
  delay. The official client's own retries are switched off so that there is one policy;
- a per-attempt timeout (``model.timeout_s`` or the ``timeout_s`` argument). For a non-streamed
  call it bounds the whole attempt; for a stream it bounds the wait for the response and every
  wait between two chunks (a long answer that keeps flowing is not cut);
- one typed error, :class:`ProviderError` (an :class:`~openarena.errors.OpenArenaError`);
- token usage from the response's ``usage`` field (for streams ``stream_options.include_usage``
  is requested unless ``model.stream_usage`` is false); when a server reports none, tokens are
  estimated as ``len(text) // 4`` (about 4 characters per token for English; approximate, and
  flagged by ``ChatResult.usage_estimated``);
- valid text only: lone surrogates and NUL in a model's answer become U+FFFD
  (:mod:`openarena.text`), so what is stored, rendered and exported never fails on it.

Behaviour follows the OpenAI chat-completions API reference (request fields, SSE chunks,
``[DONE]``, the final usage chunk) and FastChat's ``api_provider.py`` (stream text deltas,
OpenAI-compatible endpoints configured per model).

Each call opens its own HTTP client and closes it at the end (cheap: the TLS context is shared),
so the functions are safe to use from any event loop, thread or test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import openai
import pydantic
from openai.types.chat import ChatCompletion

from openarena.errors import OpenArenaError
from openarena.providers.registry import ModelConfig
from openarena.text import StreamText, clean_text, message_text

__all__ = [
    "ChatResult",
    "ChatStream",
    "PingResult",
    "ProviderError",
    "RetryPolicy",
    "complete_chat",
    "estimate_tokens",
    "image_content",
    "map_bounded",
    "ping",
    "stream_chat",
    "with_images",
]

T = TypeVar("T")
R = TypeVar("R")

ERROR_KINDS = ("timeout", "http_status", "connection", "malformed", "missing_key")
NO_KEY = "no-key"  # sent as the bearer token to servers that need none (api_key_env: null)


class ProviderError(OpenArenaError):
    """A call to a model failed.

    Attributes: model, the registry name; kind, one of ``timeout`` (no answer within the
    timeout), ``http_status`` (the server answered with an error status, ``status`` says which,
    or sent an error event inside a stream: status None), ``connection`` (could not connect, or
    the connection broke), ``malformed`` (the answer is not a chat completion: bad JSON, missing
    ``choices``), ``missing_key`` (the environment variable named by ``api_key_env`` is unset);
    message, details; status, the HTTP status or None; attempts, how many attempts were made.
    """

    def __init__(self, model: str, kind: str, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown ProviderError kind {kind!r}")
        self.model = model
        self.kind = kind
        self.message = message
        self.status = status
        self.attempts = attempts
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"model {self.model!r}: {self.kind}: {self.message}"
        if self.attempts > 1:
            text += f" (after {self.attempts} attempts)"
        return text.replace("\n", " ")

    @property
    def retryable(self) -> bool:
        """True for timeouts, connection errors, error events in a stream and HTTP 408/409/429/5xx."""
        if self.kind in ("timeout", "connection"):
            return True
        if self.kind == "http_status":
            return self.status is None or self.status in (408, 409, 429) or self.status >= 500
        return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a failed call.

    Attributes: max_attempts, total attempts including the first (>= 1); base_delay_s, the delay
    after the first failure, doubled after each further one, capped at max_delay_s; jitter, when
    true each delay d is drawn uniformly from [d/2, d] so that many clients do not retry in step.
    A server's ``Retry-After`` (seconds) replaces the computed delay, capped at max_delay_s.
    """

    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("RetryPolicy needs max_attempts >= 1 and non-negative delays")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay_s)
        d = min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s)
        return random.uniform(d / 2, d) if self.jitter else d


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class ChatResult:
    """The outcome of one chat completion.

    Attributes: text, the answer; prompt_tokens and completion_tokens, from the server's usage
    report, else estimated (then usage_estimated is true); latency_s, wall-clock seconds of the
    successful attempt, from sending the request to the last byte; first_token_s, seconds to the
    first text delta (streams only, else None); finish_reason, as reported ("stop", "length", ...)
    or None; raw_model, the model name the server reported; attempts, attempts used; cached, true
    when the result came from a :class:`~openarena.providers.cache.ResponseCache` (no call made);
    system_fingerprint, the backend configuration the server reported (None when not sent).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str | None
    raw_model: str | None
    usage_estimated: bool = False
    first_token_s: float | None = None
    attempts: int = 1
    cached: bool = False
    system_fingerprint: str | None = None


@dataclass(frozen=True)
class PingResult:
    """Whether a model answers: ok, latency_s of the probe, and error (one line) with its kind."""

    ok: bool
    latency_s: float
    error: str | None = None
    kind: str | None = None


def estimate_tokens(text: str) -> int:
    """Approximate token count, ``len(text) // 4`` (4 characters per token, English-ish text)."""
    return len(text) // 4


def _estimate_prompt_tokens(messages: Sequence[dict[str, Any]]) -> int:
    return sum(estimate_tokens(message_text(m.get("content"), sep="")) for m in messages)


# ---------------------------------------------------------------------------------------------
# Request building


def _api_key(model: ModelConfig) -> str:
    if model.api_key_env is None:
        return NO_KEY
    key = os.environ.get(model.api_key_env, "")
    if not key.strip():
        raise ProviderError(
            model.name, "missing_key",
            f"environment variable {model.api_key_env} is not set (api_key_env of this model); "
            f"export {model.api_key_env}=<your key>",
        )
    return key.strip()


@cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~50 ms; one context is shared by every client.
    return ssl.create_default_context()


#: per event loop (weakly: a finished loop's clients go with it), the clients of each endpoint
_CLIENTS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, openai.AsyncOpenAI]]" = weakref.WeakKeyDictionary()
MAX_CLIENTS_PER_LOOP = 64


@contextlib.asynccontextmanager
async def _client(model: ModelConfig, api_key: str, timeout_s: float) -> AsyncIterator[openai.AsyncOpenAI]:
    """The client of the running event loop for this endpoint (base URL, key, timeout), made on
    first use and kept: its HTTP connections stay open between calls, so a call costs no new
    client (~1-2 ms of CPU: an httpx client and its transports) and no new TCP and TLS
    handshake. A client belongs to one event loop; at most :data:`MAX_CLIENTS_PER_LOOP` per
    loop (the oldest is closed beyond that)."""
    loop = asyncio.get_running_loop()
    clients = _CLIENTS.get(loop)
    if clients is None:
        clients = _CLIENTS[loop] = {}
    key = (model.base_url, api_key, timeout_s)
    client = clients.get(key)
    if client is None or client.is_closed():
        client = clients[key] = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=model.base_url,
            max_retries=0,
            timeout=openai.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            http_client=openai.DefaultAsyncHttpxClient(verify=_ssl_context()),
        )
        while len(clients) > MAX_CLIENTS_PER_LOOP:
            await clients.pop(next(iter(clients))).close()
    yield client


def image_content(text: str, image_urls: Sequence[str]) -> list[dict[str, Any]]:
    """The content of a user message with images, in OpenAI's chat-completions format: a text
    part then one ``image_url`` part per image, ``[{"type": "text", "text": text}, {"type":
    "image_url", "image_url": {"url": "data:image/png;base64,..."}}, ...]``.

    ``image_urls``: data URLs (or http(s) URLs the endpoint can fetch). Source: OpenAI API
    reference, chat completions, "image_url" content parts (vLLM, Ollama and OpenRouter accept
    the same)."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    return parts


def with_images(messages: Sequence[dict[str, Any]], data_url: Callable[[str], str]) -> list[dict[str, Any]]:
    """The messages as an endpoint takes them: a stored message ``{"role", "content",
    "images": [sha256, ...]}`` becomes ``{"role", "content": image_content(...)}`` with
    ``data_url(sha256)`` for each image; other messages are copied as they are.

    Raises: whatever ``data_url`` raises for an image it cannot load (e.g. KeyError)."""
    out = []
    for m in messages:
        images = m.get("images")
        if images:
            m = {k: v for k, v in m.items() if k != "images"}
            m["content"] = image_content(m.get("content") or "", [data_url(h) for h in images])
        elif "images" in m:
            m = {k: v for k, v in m.items() if k != "images"}
        out.append(m)
    return out


def _messages(model: ModelConfig, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    out = [dict(m) for m in messages]
    if model.system_prompt and out[0].get("role") != "system":
        out.insert(0, {"role": "system", "content": model.system_prompt})
    return out


def _params(model: ModelConfig, messages: list[dict[str, Any]], overrides: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"model": model.endpoint_model, "messages": messages}
    for key in ("temperature", "max_tokens", "top_p", "seed"):
        value = getattr(model, key)
        if value is not None:
            params[key] = value
    if model.extra_body:
        params["extra_body"] = dict(model.extra_body)
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _classify(model: ModelConfig, exc: BaseException, timeout_s: float) -> ProviderError:
    """Map an exception raised during a call to a ProviderError (or re-raise a programming error)."""
    name = model.name
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, (TimeoutError, openai.APITimeoutError)):
        return ProviderError(name, "timeout", f"no answer (or no next chunk) from {model.base_url} within {timeout_s:g} s")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {cause}" if cause else ""
        return ProviderError(name, "connection", f"cannot reach {model.base_url}{detail}")
    if isinstance(exc, openai.APIStatusError):
        return ProviderError(
            name, "http_status", f"HTTP {exc.status_code} from {model.base_url}: {exc.message}"[:500],
            status=exc.status_code,
        )
    if isinstance(exc, (openai.APIResponseValidationError, json.JSONDecodeError, pydantic.ValidationError)):
        return ProviderError(name, "malformed", f"the answer is not a valid chat completion: {exc}"[:500])
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        return ProviderError(name, "http_status", f"error reported by the server: {exc.message}"[:500])
    raise exc


async def _with_retries(
    model: ModelConfig, retry: RetryPolicy, timeout_s: float, attempt_fn: Callable[[int], Awaitable[T]]
) -> T:
    attempt = 0
    while True:
        attempt += 1
        try:
            return await attempt_fn(attempt)
        except Exception as exc:  # noqa: BLE001 - classified, programming errors re-raised
            err = _classify(model, exc, timeout_s)
            if not err.retryable or attempt >= retry.max_attempts:
                raise ProviderError(err.model, err.kind, err.message, status=err.status, attempts=attempt) from exc
            await asyncio.sleep(retry.delay(attempt, _retry_after(exc)))


# ---------------------------------------------------------------------------------------------
# Public calls


async def complete_chat(
    model: ModelConfig,
    messages: Sequence[dict[str, Any]],
    *,
    retry: RetryPolicy | None = None,
    timeout_s: float | None = None,
    **overrides: Any,
) -> ChatResult:
    """One non-streamed chat completion (``POST {base_url}/chat/completions``, ``stream: false``).

    Parameters: model, a registry entry; messages, OpenAI-style ``[{"role", "content"}, ...]``
    (the model's system prompt is prepended when the first message is not a system message);
    retry, the retry policy (default 3 attempts); timeout_s, per-attempt timeout in seconds
    (default ``model.timeout_s``); overrides, request fields that replace the model's own, e.g.
    ``temperature=0, max_tokens=16`` for a judge (a None value removes the field).
    Returns: ChatResult.
    Raises: ProviderError (kinds: timeout, http_status, connection, malformed, missing_key);
    ValueError for empty messages.
    """
    retry = retry or DEFAULT_RETRY
    timeout = timeout_s if timeout_s is not None else model.timeout_s
    msgs = _messages(model, messages)
    params = _params(model, msgs, overrides)
    key = _api_key(model)

    async def attempt(n: int) -> ChatResult:
        t0 = time.perf_counter()
        async with _client(model, key, timeout) as client:
            async with asyncio.timeout(timeout):
                resp = await client.chat.completions.create(**params, stream=False)
        latency = time.perf_counter() - t0
        choices = getattr(resp, "choices", None) if isinstance(resp, ChatCompletion) else None
        message = getattr(choices[0], "message", None) if choices else None
        if message is None:
            raise ProviderError(model.name, "malformed", f"the answer has no choices[0].message: {str(resp)[:200]}")
        text = clean_text(message.content or "")
        usage = getattr(resp, "usage", None)
        p_tok = getattr(usage, "prompt_tokens", None)
        c_tok = getattr(usage, "completion_tokens", None)
        estimated = p_tok is None or c_tok is None
        return ChatResult(
            text=text,
            prompt_tokens=p_tok if p_tok is not None else _estimate_prompt_tokens(msgs),
            completion_tokens=c_tok if c_tok is not None else estimate_tokens(text),
            latency_s=latency,
            finish_reason=getattr(choices[0], "finish_reason", None),
            raw_model=getattr(resp, "model", None),
            usage_estimated=estimated,
            attempts=n,
            system_fingerprint=getattr(resp, "system_fingerprint", None),
        )

    return await _with_retries(model, retry, timeout, attempt)


class ChatStream:
    """The text deltas of one streamed chat completion; an ``AsyncIterator[str]``.

    Iterate with ``async for delta in stream``; after the end, ``stream.result`` holds the
    :class:`ChatResult` (full text, usage, latency, first_token_s). Closing early (``break`` then
    ``await stream.aclose()``, ``async with stream: ...``, or cancelling the task that iterates,
    as the arena's Stop button does) closes the HTTP connection at once, so the server can stop
    generating. Retries happen only before the first delta: once text has been handed out, a
    failure is raised as a ProviderError.
    """

    def __init__(
        self,
        model: ModelConfig,
        messages: Sequence[dict[str, Any]],
        *,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        **overrides: Any,
    ) -> None:
        self.model = model
        self.result: ChatResult | None = None
        self._retry = retry or DEFAULT_RETRY
        self._timeout = timeout_s if timeout_s is not None else model.timeout_s
        self._messages = _messages(model, messages)
        self._params = _params(model, self._messages, overrides)
        self._gen = self._run()

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> str:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Stop reading and close the connection (idempotent)."""
        await self._gen.aclose()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self) -> AsyncIterator[str]:
        model, timeout = self.model, self._timeout
        key = _api_key(model)
        params = dict(self._params, stream=True)
        if model.stream_usage:
            params.setdefault("stream_options", {"include_usage": True})
        attempt = 0
        while True:
            attempt += 1
            yielded = False
            parts: list[str] = []
            usage = None
            finish_reason = raw_model = None
            first_token_s = None
            n_chunks = 0
            cleaner = StreamText()
            t0 = time.perf_counter()
            try:
                async with _client(model, key, timeout) as client:
                    async with asyncio.timeout(timeout):
                        stream = await client.chat.completions.create(**params)
                    try:
                        async for chunk in stream:  # each wait bounded by the client's read timeout
                            if getattr(chunk, "choices", None) is None:
                                raise ProviderError(model.name, "malformed", f"not a chat completion chunk: {str(chunk)[:200]}")
                            n_chunks += 1
                            raw_model = raw_model or getattr(chunk, "model", None)
                            if getattr(chunk, "usage", None) is not None:
                                usage = chunk.usage
                            for choice in chunk.choices or ():
                                if getattr(choice, "index", 0) != 0:
                                    continue
                                if choice.finish_reason:
                                    finish_reason = choice.finish_reason
                                delta = getattr(choice.delta, "content", None) if choice.delta else None
                                if delta:
                                    delta = cleaner.feed(delta)  # valid text only (see openarena.text)
                                if delta:
                                    if first_token_s is None:
                                        first_token_s = time.perf_counter() - t0
                                    parts.append(delta)
                                    yielded = True
                                    yield delta
                    finally:
                        await stream.close()
                if n_chunks == 0:
                    raise ProviderError(model.name, "malformed", "the stream ended without any chat completion chunk")
                tail = cleaner.flush()
                if tail:
                    parts.append(tail)
                    yielded = True
                    yield tail
            except Exception as exc:  # noqa: BLE001 - classified, programming errors re-raised
                err = _classify(model, exc, timeout)
                if yielded or not err.retryable or attempt >= self._retry.max_attempts:
                    raise ProviderError(err.model, err.kind, err.message, status=err.status, attempts=attempt) from exc
                await asyncio.sleep(self._retry.delay(attempt, _retry_after(exc)))
                continue
            text = "".join(parts)
            p_tok = getattr(usage, "prompt_tokens", None)
            c_tok = getattr(usage, "completion_tokens", None)
            self.result = ChatResult(
                text=text,
                prompt_tokens=p_tok if p_tok is not None else _estimate_prompt_tokens(self._messages),
                completion_tokens=c_tok if c_tok is not None else estimate_tokens(text),
                latency_s=time.perf_counter() - t0,
                finish_reason=finish_reason,
                raw_model=raw_model,
                usage_estimated=p_tok is None or c_tok is None,
                first_token_s=first_token_s,
                attempts=attempt,
            )
            return


def stream_chat(
    model: ModelConfig,
    messages: Sequence[dict[str, Any]],
    *,
    retry: RetryPolicy | None = None,
    timeout_s: float | None = None,
    **overrides: Any,
) -> ChatStream:
    """Stream one chat completion (``stream: true``, server-sent events); yields text deltas.

    Usage: ``async with stream_chat(model, messages) as s: async for delta in s: ...`` then
    ``s.result`` for usage and latency. Parameters as for :func:`complete_chat`; ``timeout_s``
    bounds the wait for the response headers and between two chunks.
    Raises (while iterating): ProviderError; ValueError (at once) for empty messages.
    Source: OpenAI chat-completions streaming (``choices[0].delta.content`` chunks, a final
    usage chunk when ``stream_options.include_usage``, then ``data: [DONE]``).
    """
    return ChatStream(model, messages, retry=retry, timeout_s=timeout_s, **overrides)


async def ping(model: ModelConfig, *, timeout_s: float | None = None) -> PingResult:
    """Check that a model answers: one non-streamed completion of "ping" with ``max_tokens=1``,
    one attempt, within ``timeout_s`` (default ``min(model.timeout_s, 30)``).

    Returns: PingResult; never raises ProviderError (its message goes in ``error``).
    """
    timeout = timeout_s if timeout_s is not None else min(model.timeout_s, 30.0)
    t0 = time.perf_counter()
    try:
        await complete_chat(model, [{"role": "user", "content": "ping"}], retry=NO_RETRY, timeout_s=timeout, max_tokens=1)
    except ProviderError as e:
        return PingResult(False, time.perf_counter() - t0, str(e), e.kind)
    return PingResult(True, time.perf_counter() - t0)


async def map_bounded(
    func: Callable[[T], Awaitable[R]],
    items: Iterable[T],
    concurrency: int,
    progress: Callable[[int, int], object] | None = None,
    *,
    return_exceptions: bool = False,
) -> list[R | BaseException]:
    """Apply an async function to every item with at most ``concurrency`` calls in flight.

    Parameters: func, ``async def func(item) -> result``; items, any iterable (read at once);
    concurrency, maximum simultaneous calls (>= 1); progress, called as ``progress(done, total)``
    after each item finishes (e.g. to advance a progress bar); return_exceptions, when true an
    item's exception is put in its result slot instead of stopping the batch.
    Returns: results in the order of ``items``.
    Raises: the first exception of ``func`` (the calls still running are cancelled) unless
    return_exceptions; ValueError if concurrency < 1.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    todo = list(items)
    total = len(todo)
    results: list[Any] = [None] * total
    indexes = iter(range(total))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i in indexes:  # shared iterator: each index is taken by exactly one worker
            try:
                results[i] = await func(todo[i])
            except Exception as exc:
                if not return_exceptions:
                    raise
                results[i] = exc
            done += 1
            if progress is not None:
                progress(done, total)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, total)):
                group.create_task(worker())
    except BaseExceptionGroup as eg:
        raise eg.exceptions[0] from None
    return results
