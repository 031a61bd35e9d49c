"""Size limits on every request: the body (413) and the request head (431).

Two layers, so the limits hold whichever server runs the app:

- :class:`RequestLimits`, a pure ASGI middleware (holds under any ASGI server and the
  TestClient): a request whose URL and headers together exceed ``max_header_bytes`` gets 431;
  a ``Content-Length`` above ``max_body_bytes`` gets 413 before a byte of the body is read; a
  body without Content-Length (chunked) is counted as it arrives and answered 413 as soon as it
  passes the limit (the app then sees a disconnect; nothing more is read). These answers carry
  ``Connection: close``.
- :class:`ArenaHttpToolsProtocol`, uvicorn's httptools protocol with a bound on the bytes of a
  request head that is still incomplete: uvicorn with httptools buffers a head of any size
  before the app sees it (h11 has ``h11_max_incomplete_event_size``; httptools has no limit), so
  a 100 MB header would sit in memory before the middleware could refuse it. It reads the
  bound from the same uvicorn setting, ``h11_max_incomplete_event_size`` (``openarena serve``
  sets it to ``max_header_bytes``), and answers 431 and closes.

Source: RFC 9110 §15.5.14 (413 Content Too Large), RFC 6585 §5 (431 Request Header Fields Too
Large); nginx's ``client_max_body_size`` / ``large_client_header_buffers`` for the defaults'
orders of magnitude.
"""

from __future__ import annotations

import json
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a dependency; without it uvicorn runs h11
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = ["ArenaHttpToolsProtocol", "RequestLimits", "uvicorn_options"]

DEFAULT_MAX_HEADER_BYTES = 16_384


def _message(status: int, limit: int) -> str:
    if status == 413:
        return f"The request body is too large (at most {limit:,} bytes)."
    return f"The request headers are too large (at most {limit:,} bytes in all)."


async def _refuse(send: Any, status: int, limit: int) -> None:
    code = "too_large" if status == 413 else "headers_too_large"
    body = json.dumps({"error": _message(status, limit), "code": code}).encode()
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """Pure ASGI middleware: 431 for a request head (target + headers) above
    ``max_header_bytes``, 413 for a body above ``max_body_bytes`` (declared by Content-Length or
    counted while it streams in). Bytes of a head: path, query string and, per header, name +
    value + 4 (``": "`` and CRLF)."""

    def __init__(self, app: Any, max_body_bytes: int, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        head = len(scope.get("raw_path") or scope.get("path", "").encode()) + len(scope.get("query_string", b""))
        declared = None
        for name, value in scope.get("headers", ()):
            head += len(name) + len(value) + 4
            if name == b"content-length":
                declared = value
        if head > self.max_header_bytes:
            return await _refuse(send, 431, self.max_header_bytes)
        if declared is not None:
            try:
                too_big = int(declared) > self.max_body_bytes
            except ValueError:
                too_big = False  # the server refuses a malformed Content-Length itself
            if too_big:
                return await _refuse(send, 413, self.max_body_bytes)
        received = 0
        refused = False
        started = False

        async def limited_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    refused = True
                    if not started:
                        await _refuse(send, 413, self.max_body_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if refused and not started:
                return  # our 413 went out instead of the app's answer
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


class ArenaHttpToolsProtocol(HttpToolsProtocol or object):  # type: ignore[misc]
    """uvicorn's httptools protocol, with a bound on an incomplete request head: when more than
    ``config.h11_max_incomplete_event_size`` bytes (default 16 KiB) arrive before the head of a
    request is complete, it answers 431 and closes the connection. Memory held per connection
    for a head: at most that bound plus one read of the socket."""

    def __init__(self, config, *args, **kwargs) -> None:
        super().__init__(config, *args, **kwargs)
        self._head_limit = getattr(config, "h11_max_incomplete_event_size", None) or DEFAULT_MAX_HEADER_BYTES
        self._in_head = True
        self._head_bytes = 0

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True  # what arrives next is the head of the next request
        self._head_bytes = 0
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self._head_limit and not self.transport.is_closing():
            body = json.dumps({"error": _message(431, self._head_limit), "code": "headers_too_large"}).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
            )
            self.transport.close()


def uvicorn_options(max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that bound a request head at
    ``max_header_bytes`` in the HTTP parser itself (httptools: :class:`ArenaHttpToolsProtocol`;
    h11: ``h11_max_incomplete_event_size``)."""
    return {"http": ArenaHttpToolsProtocol if HttpToolsProtocol is not None else "h11", "h11_max_incomplete_event_size": max_header_bytes}
