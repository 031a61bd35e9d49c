"""Several worker processes, shared state and forwarded headers, on the real server.

Each test runs ``openarena serve`` as a child process (its own process group, a free port,
stopped at the end), so the sockets, worker processes and uvicorn options are production's:

- sessions: with ``--workers 2`` on PostgreSQL, 100 new sessions spread over the workers are
  all accepted (no ``403 no_session``), and after a restart an old session still votes on its
  battle (issue 8, defect 2);
- rate limits: with 2 and 4 workers and Redis, a limit of 20 per minute lets 20 of 80 requests
  through (within one: the bucket refills a token every 3 s) (defect 3);
- ``--workers 2`` without Redis is refused with one line and exit 2 (defect 3);
- X-Forwarded-For: by default a forged header from 127.0.0.1 does not change the client's
  address for the per-IP limit; with ``--forwarded-allow-ips 127.0.0.1`` it does (defect 4).

Every request goes over a new connection, so the kernel spreads them over the workers.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.serving.helpers import events
from tests.serving.redis_server import fresh_prefix, redis_url  # noqa: F401
from tests.storage.postgres import create_schema, drop_schema, postgres_url, schema_url  # noqa: F401

OPENARENA = str(Path(sys.executable).parent / "openarena")
NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """``openarena serve ARGS`` on a free port; :meth:`start` waits for /healthz."""

    def __init__(self, tmp: Path, *args: str, prefix: str | None = None) -> None:
        self.args = list(args)
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("OPENARENA_SECRET", "OPENARENA_SECRET_KEY", "OPENARENA_REDIS_URL", "OPENARENA_DATABASE_URL", "FORWARDED_ALLOW_IPS")}
        self.env["OPENARENA_REDIS_PREFIX"] = prefix or fresh_prefix()
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 120) -> "Serve":
        """Start on a free port, or, for a restart, on the port of the last start."""
        restart = bool(self.url)
        for _ in range(1 if restart else 3):  # another process may take the free port before the server binds it
            port = int(self.url.rsplit(":", 1)[1]) if restart else _free_port()
            self.url = f"http://127.0.0.1:{port}"
            log = open(self.tmp / "serve.log", "ab")
            self.proc = subprocess.Popen([OPENARENA, "serve", "--port", str(port), "--leaderboard-interval", "3600", *self.args],
                                         stdout=log, stderr=log, env=self.env, cwd=self.tmp, start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            code = self.proc.poll()
            self.stop()
            if restart or code is None or "already in use" not in self.log_text():
                raise AssertionError(f"openarena serve did not start (exit {code}):\n{self.log_text()[-3000:]}")
        raise AssertionError("no free port")

    def log_text(self) -> str:
        p = self.tmp / "serve.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, limits=NO_KEEPALIVE, **kw)


def open_session(client: httpx.Client) -> dict[str, str]:
    r = client.get("/")
    assert r.status_code == 200, r.text
    return {"x-csrf-token": re.search(r'name="csrf-token" content="([0-9a-f]+)"', r.text).group(1)}


@pytest.fixture
def pg_schema(postgres_url):  # noqa: F811
    schema = "w_" + secrets.token_hex(6)
    create_schema(postgres_url, schema)
    try:
        yield schema_url(postgres_url, schema)
    finally:
        drop_schema(postgres_url, schema)


def test_sessions_are_shared_by_workers_and_survive_a_restart(tmp_path, pg_schema, redis_url):  # noqa: F811
    server = Serve(tmp_path, "--demo", "--workers", "2", "--db", pg_schema, "--redis", redis_url, "--no-rate-limits").start()
    try:
        def new_session(_) -> int:  # a new session, then its first API call, each on a new connection
            with server.client() as c:
                h = open_session(c)
                return c.post("/api/battles", json={"mode": "anony"}, headers=h).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(new_session, range(100)))
        assert statuses.count(403) == 0 and statuses.count(200) == 100, statuses

        keeper = server.client()
        h = open_session(keeper)
        r = keeper.post("/api/battles", json={"mode": "named", "model_a": "demo-echo", "model_b": "demo-markdown"}, headers=h)
        assert r.status_code == 200, r.text
        bid = r.json()["battle_id"]
        r = keeper.post(f"/api/battles/{bid}/turns", json={"prompt": "hello across a restart"}, headers=h)
        ev = events(r.text)
        assert r.status_code == 200 and ev[-1][0] == "end" and ev[-1][1]["votable"], r.text
    finally:
        server.stop()

    server.start()  # same database, same Redis: a restart (or a deploy)
    try:
        v = keeper.post(f"/api/battles/{bid}/vote", json={"winner": "model_b"}, headers=h)
        assert v.status_code == 200, v.text
        assert v.json()["model_b"] == "demo-markdown" and v.json()["counted"] is True
        assert keeper.post("/api/battles", json={"mode": "anony"}, headers=h).status_code == 200
    finally:
        keeper.close()
        server.stop()


@pytest.mark.parametrize("workers", [2, 4])
def test_a_rate_limit_holds_across_workers(tmp_path, redis_url, workers):  # noqa: F811
    server = Serve(tmp_path, "--demo", "--workers", str(workers), "--db", f"sqlite:///{tmp_path / 'arena.db'}", "--redis", redis_url,
                   "--limit", "battle_session=20", "--limit", "battle_ip=0").start()
    try:
        with server.client() as c:
            h = open_session(c)
            t0 = time.monotonic()
            with ThreadPoolExecutor(8) as pool:  # 8 at a time, each on a new connection: every worker gets some
                codes = list(pool.map(lambda _: c.post("/api/battles", json={"mode": "named", "model_a": "demo-echo", "model_b": "demo-poet"},
                                                       headers=h).status_code, range(80)))
            elapsed = time.monotonic() - t0
    finally:
        server.stop()
    assert "OpenArena is running at http://localhost:" in server.log_text()  # printed once a worker answered
    passed = codes.count(200)
    # a bucket of 20 tokens refilled at one every 3 s: 20, plus one per 3 s the 80 requests took
    # (on a busy machine they can take several seconds); N workers on their own would allow 20 N
    assert set(codes) <= {200, 429}, codes
    assert 20 <= passed <= 20 + int(elapsed / 3.0), (passed, elapsed)


def test_the_printed_address_is_one_a_browser_opens():
    from openarena.cli.serve import display_url

    assert display_url("127.0.0.1", 8000) == display_url("::1", 8000) == "http://localhost:8000"
    assert display_url("0.0.0.0", 80) == "http://0.0.0.0:80"
    assert display_url("::", 8000) == "http://[::]:8000" and display_url("fd00::2", 8080) == "http://[fd00::2]:8080"


def test_the_running_line_waits_until_the_server_answers():
    """With several workers the socket is bound at once but the workers start seconds later:
    the line that sends people to the address waits for an answer."""
    import http.server

    from openarena.cli.serve import announce_when_up

    port, printed = _free_port(), []
    thread = announce_when_up("127.0.0.1", port, "up", timeout_s=60, echo=printed.append)
    time.sleep(0.5)
    assert printed == []  # nothing listens yet
    with socket.socket() as bound:  # bound and listening, nobody accepting: uvicorn's supervisor before its workers
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound.bind(("127.0.0.1", port))
        bound.listen(8)
        time.sleep(0.5)
        assert printed == []

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(503)  # any answer will do: it accepts requests
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Healthz)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        thread.join(30)
        assert printed == ["up"]
    finally:
        server.shutdown()
        server.server_close()


def test_several_workers_without_redis_are_refused(tmp_path, monkeypatch):
    from openarena.cli.main import app

    monkeypatch.delenv("OPENARENA_REDIS_URL", raising=False)
    res = CliRunner().invoke(app, ["serve", "--demo", "--workers", "2", "--port", "0", "--data-dir", str(tmp_path / "d")])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--redis" in lines[0] and "Traceback" not in res.output
    assert not (tmp_path / "d").exists()  # refused before anything started


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_for_is_trusted_only_from_configured_proxies(tmp_path, trusted):
    args = ["--demo", "--data-dir", str(tmp_path / "d"), "--limit", "battle_ip=5", "--limit", "battle_session=0"]
    if trusted:
        args += ["--forwarded-allow-ips", "127.0.0.1"]
    server = Serve(tmp_path, *args).start()
    try:
        with server.client() as c:
            h = open_session(c)
            codes = [c.post("/api/battles", json={"mode": "named", "model_a": "demo-echo", "model_b": "demo-poet"},
                            headers={**h, "x-forwarded-for": f"203.0.113.{i}"}).status_code for i in range(1, 13)]
    finally:
        server.stop()
    if trusted:  # the proxy on 127.0.0.1 is believed: twelve different clients
        assert codes == [200] * 12, codes
    else:  # the header is ignored: one client, 127.0.0.1, limited to 5 (6 if a token came back meanwhile)
        assert codes.count(200) in (5, 6) and codes[:5] == [200] * 5 and codes[-1] == 429, codes


@pytest.mark.parametrize("args, words", [
    (["--limit", "battle_ip=lots"], ["--limit", "battle_ip=lots", "KIND=N"]),
    (["--limit", "votes=5"], ["--limit", "votes=5", "battle_session"]),
    (["--forwarded-allow-ips", "127.0.0.1,proxy.example"], ["--forwarded-allow-ips", "proxy.example", "not an IP"]),
    (["--redis", "redis://127.0.0.1:1/0"], ["cannot reach Redis at redis://127.0.0.1:1/0"]),
    (["--redis", "redis://:hunter2@127.0.0.1:1/0"], ["cannot reach Redis", "***"]),
])
def test_bad_serve_options_are_one_line(tmp_path, monkeypatch, args, words):
    from openarena.cli.main import app

    monkeypatch.delenv("OPENARENA_REDIS_URL", raising=False)
    res = CliRunner().invoke(app, ["serve", "--demo", "--port", "0", "--data-dir", str(tmp_path / "d"), *args])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert all(w in lines[0] for w in words) and "hunter2" not in res.output, res.output


def test_a_short_secret_is_refused(tmp_path, monkeypatch):
    from openarena.cli.main import app

    monkeypatch.setenv("OPENARENA_SECRET", "guessable")
    res = CliRunner().invoke(app, ["serve", "--demo", "--port", "0", "--data-dir", str(tmp_path / "d")])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and "at least 32" in lines[0] and "guessable" not in lines[0], res.output


def test_a_worker_freezes_its_start_up_objects_out_of_the_collector(arena_factory):
    """A full garbage collection over a worker's start-up objects (~10^5: modules, the app)
    holds the GIL for tens of ms, a pause of every request and of the vote writer under load:
    the worker freezes them once started (gc.freeze), so a collection walks only what requests
    create (the pause it saves, 20-70 ms, was timed with a temporary trace: bench/serve_load.md, stop 18)."""
    import gc

    gc.unfreeze()
    live = arena_factory()
    with live.client() as c:
        assert c.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 50_000, gc.get_freeze_count()
