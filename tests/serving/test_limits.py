"""Request size limits (defect 8 of issue 8: four 100 MB bodies took the server from 240 MB to
895 MB): bodies above the limit get 413 (declared or chunked), request heads above it 431,
through the app (TestClient) and over real HTTP against uvicorn on a free port, where the
attacker sends raw bytes and the server must stop reading."""

from __future__ import annotations

import select
import socket
import time
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from openarena.serving.app import create_app

from .conftest import GOOD, start_arena
from .helpers import open_session

MB = 1024 * 1024


@pytest.fixture
def live(tmp_path):
    arena = start_arena(tmp_path, GOOD)
    try:
        yield arena
    finally:
        arena.stop()
        arena.mock.stop()


def _exchange(url: str, head: bytes, pieces=(), limit: int = 64 * MB) -> tuple[str, int]:
    """Send ``head`` then ``pieces`` on a raw socket until the server answers, closes, or
    ``limit`` bytes went out. Returns (the status line, or '' if the server closed without
    one; bytes of body sent)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sent = 0
    reply = b""
    try:
        sock.sendall(head)
        for piece in pieces:
            if select.select([sock], [], [], 0)[0] or sent >= limit:
                break  # the server answered (or closed): stop sending
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        deadline = time.monotonic() + 10
        while b"\r\n" not in reply and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            reply += chunk
    finally:
        sock.close()
    return reply.split(b"\r\n", 1)[0].decode("latin-1"), sent


def _post_head(host: str, path: str, extra: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n{extra}\r\n".encode()


def _endless(piece: bytes):
    while True:
        yield piece


# -- through the app: the middleware alone -----------------------------------------------------


@pytest.fixture
def client(arena):
    with TestClient(create_app(state=arena.state, start_background=False)) as c:
        yield c


def test_app_refuses_a_declared_large_body_with_413(client, arena):
    limit = arena.state.settings.body_limit()
    h = open_session(client)
    r = client.post("/api/battles", content=b"x" * (limit + 1), headers={**h, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "too_large" and f"{limit:,}" in r.json()["error"]
    assert r.headers["x-content-type-options"] == "nosniff"  # the security headers are on it too
    ok = client.post("/api/battles", json={"mode": "anony", "pad": "y" * (limit // 2)}, headers=h)
    assert ok.status_code == 200  # below the limit: served


def test_app_refuses_a_chunked_large_body_with_413(client, arena):
    limit = arena.state.settings.body_limit()
    h = open_session(client)
    served = []

    def body():
        for _ in range(limit // 4096 + 10):
            served.append(1)
            yield b"x" * 4096

    r = client.post("/api/battles", content=body(), headers={**h, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "too_large"


def test_app_refuses_large_headers_with_431(client, arena):
    r = client.get("/", headers={"x-padding": "p" * 20_000})
    assert r.status_code == 431 and r.json()["code"] == "headers_too_large"
    r = client.get("/", headers={f"x-h{i}": "p" * 100 for i in range(200)})
    assert r.status_code == 431
    r = client.get("/?" + "q" * 20_000)
    assert r.status_code == 431
    assert client.get("/", headers={"x-padding": "p" * 1_000}).status_code == 200


# -- over real HTTP: raw bytes against uvicorn on a free port ----------------------------------


def test_http_declared_100mb_body_is_refused_before_it_is_read(live):
    host = urlsplit(live.url).netloc
    status, sent = _exchange(live.url, _post_head(host, "/api/battles", f"content-length: {100 * MB}\r\n"), [b"x" * 1024])
    assert status.startswith("HTTP/1.1 413"), status


def test_http_chunked_endless_body_is_cut_at_the_limit(live):
    host = urlsplit(live.url).netloc
    with live.client() as c:  # a real session, so the route reads the body
        h = open_session(c)
        cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
    auth = f"cookie: {cookie}\r\nx-csrf-token: {h['x-csrf-token']}\r\n"
    piece = b"10000\r\n" + b"x" * 65536 + b"\r\n"  # chunks of 64 KiB, never a last chunk
    status, sent = _exchange(live.url, _post_head(host, "/api/battles", "transfer-encoding: chunked\r\n" + auth), _endless(piece), limit=200 * MB)
    # the server answered 413 long before 200 MB (what went out is mostly socket buffers) and closed
    assert status.startswith("HTTP/1.1 413"), status
    assert sent < 32 * MB, sent


def test_http_endless_header_gets_431_and_is_not_buffered(live):
    host = urlsplit(live.url).netloc
    head = f"GET / HTTP/1.1\r\nHost: {host}\r\nx-padding: ".encode()
    status, sent = _exchange(live.url, head, _endless(b"p" * 16384), limit=200 * MB)
    assert status.startswith("HTTP/1.1 431"), status
    assert sent < 32 * MB, sent  # without the bound in the parser, uvicorn buffered all 200 MB


def test_http_many_headers_get_431(live):
    host = urlsplit(live.url).netloc
    many = "".join(f"x-h{i}: {'p' * 100}\r\n" for i in range(400))  # ~44 KB of headers
    status, _ = _exchange(live.url, f"GET / HTTP/1.1\r\nHost: {host}\r\n{many}\r\n".encode())
    assert status.startswith("HTTP/1.1 431"), status
    status, _ = _exchange(live.url, f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nconnection: close\r\n\r\n".encode())
    assert status.startswith("HTTP/1.1 200"), status  # the server is still fine
