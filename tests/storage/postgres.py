"""A real PostgreSQL for the storage tests, found or started in this order:

1. ``OPENARENA_TEST_POSTGRES_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/test``);
2. a throwaway cluster of our own: Debian's ``/usr/lib/postgresql/*/bin/initdb`` and ``pg_ctl``
   on a free loopback port in a temporary folder (run as the ``postgres`` user through
   ``runuser`` when we are root, since initdb refuses root); stopped and deleted at the end;
3. the server at 127.0.0.1:5432, database ``test``, trust authentication, if it answers;
4. otherwise the tests are skipped, saying why. CI sets ``OPENARENA_REQUIRE_POSTGRES=1`` so
   that a missing server fails instead of skipping.

Each test gets its own schema (``search_path`` in the URL), dropped afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.services import provide

FALLBACK_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _can_connect(url: str) -> str | None:
    """None if a connection works, else the reason."""
    try:
        import psycopg
    except ImportError as e:  # pragma: no cover
        return f"psycopg not installed ({e})"
    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3) as conn:
            conn.execute("select 1")
        return None
    except Exception as e:  # noqa: BLE001
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


class OwnCluster:
    """initdb + pg_ctl start in a temporary folder; ``url`` once started; ``stop()`` removes it."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
        self.bindir = Path(bins[-1]).parent
        self.tmp = Path(tempfile.mkdtemp(prefix="openarena-pg-"))
        self.data = self.tmp / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root and runuser is missing")
            self.prefix = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.tmp, "postgres")
            os.chmod(self.tmp, 0o700)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        res = subprocess.run(self.prefix + list(args), capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {(res.stderr or res.stdout).strip()[-400:]}")

    def start(self) -> "OwnCluster":
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.tmp / "log"), "-w", "-t", "30", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=30)
        except Exception:  # noqa: BLE001
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def find_postgres() -> tuple[str | None, OwnCluster | None, str]:
    """(url, cluster we started or None, description or the reason for none)."""
    reasons = []
    env = os.environ.get("OPENARENA_TEST_POSTGRES_URL", "").strip()
    if env:
        why = _can_connect(env)
        if why is None:
            return env, None, "OPENARENA_TEST_POSTGRES_URL"
        reasons.append(f"OPENARENA_TEST_POSTGRES_URL does not answer: {why}")
    try:
        cluster = OwnCluster().start()
        deadline = time.monotonic() + 10
        while (why := _can_connect(cluster.url)) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if why is None:
            return cluster.url, cluster, f"own cluster on port {cluster.port}"
        cluster.stop()
        reasons.append(f"own cluster did not answer: {why}")
    except Exception as e:  # noqa: BLE001
        reasons.append(f"cannot start an own cluster: {e}")
    why = _can_connect(FALLBACK_URL)
    if why is None:
        return FALLBACK_URL, None, "127.0.0.1:5432/test"
    reasons.append(f"127.0.0.1:5432/test: {why}")
    return None, None, "; ".join(reasons)


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a reachable PostgreSQL (see the module docstring), or skip/fail with the reason."""
    yield from provide(find_postgres(), "PostgreSQL for the storage tests", "OPENARENA_REQUIRE_POSTGRES")


def schema_url(base: str, schema: str) -> str:
    """``base`` with ``search_path`` set to ``schema`` for every connection."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def create_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
