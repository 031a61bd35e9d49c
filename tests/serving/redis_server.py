"""A real Redis for the serving tests, found or started in this order:

1. ``OPENARENA_TEST_REDIS_URL`` (e.g. ``redis://127.0.0.1:6379/0``);
2. a throwaway ``redis-server`` of our own (``/usr/bin/redis-server`` or on PATH) on a free
   loopback port in a temporary folder, without persistence; stopped and deleted at the end;
3. otherwise the tests are skipped, saying why; under CI (``CI`` or
   ``OPENARENA_REQUIRE_REDIS`` set) a missing Redis fails instead of skipping.

Every test takes its own key prefix (:func:`fresh_prefix`), so tests sharing a server never
see each other's buckets or counters.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.services import provide


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _can_connect(url: str) -> str | None:
    """None if PING works, else the reason."""
    try:
        import redis
    except ImportError as e:  # pragma: no cover
        return f"redis-py not installed ({e})"
    try:
        c = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            c.ping()
        finally:
            c.close()
        return None
    except Exception as e:  # noqa: BLE001
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


class OwnRedis:
    """``redis-server`` on a free port in a temporary folder; ``stop()`` removes it."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
        if exe is None:
            raise RuntimeError("no redis-server (apt-get install redis-server)")
        self.tmp = Path(tempfile.mkdtemp(prefix="openarena-redis-"))
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.tmp),
             "--daemonize", "no", "--logfile", str(self.tmp / "log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def find_redis() -> tuple[str | None, OwnRedis | None, str]:
    """(url, server we started or None, description or the reason for none)."""
    reasons = []
    env = os.environ.get("OPENARENA_TEST_REDIS_URL", "").strip()
    if env:
        why = _can_connect(env)
        if why is None:
            return env, None, "OPENARENA_TEST_REDIS_URL"
        reasons.append(f"OPENARENA_TEST_REDIS_URL does not answer: {why}")
    try:
        own = OwnRedis()
        deadline = time.monotonic() + 10
        while (why := _can_connect(own.url)) is not None and time.monotonic() < deadline and own.proc.poll() is None:
            time.sleep(0.05)
        if why is None:
            return own.url, own, f"own redis-server on port {own.port}"
        own.stop()
        reasons.append(f"own redis-server did not answer: {why}")
    except Exception as e:  # noqa: BLE001
        reasons.append(f"cannot start an own redis-server: {e}")
    return None, None, "; ".join(reasons)


@pytest.fixture(scope="session")
def redis_url():
    """URL of a reachable Redis (see the module docstring), or skip/fail with the reason."""
    yield from provide(find_redis(), "Redis for the shared-state tests", "OPENARENA_REQUIRE_REDIS")


def fresh_prefix() -> str:
    """A key prefix no other test uses."""
    return f"oatest:{secrets.token_hex(6)}:"
