"""Load test of the web arena, run by hand (bounded in time, loopback only):

    .venv/bin/python bench/serve_load.py [--voters 100] [--duration 60] [--workers 1] [--db sqlite|URL] [--redis URL]
    .venv/bin/python bench/serve_load.py --workers 4 --db postgresql://postgres@127.0.0.1/test --redis redis://127.0.0.1:6379/0 \
        --baseline-workers 1

What it does:

1. starts the mock OpenAI server (a subprocess, ``python -m openarena.demo.mock_server``)
   with four fast models (short answers streamed in 6 chunks) and the arena
   (``openarena serve --no-rate-limits``, its own process group) on 127.0.0.1;
2. runs ``--voters`` simulated voters for ``--duration`` seconds: each opens the page once
   (session cookie + CSRF token), then loops: new battle -> one streamed turn -> vote (httpx,
   in this process);
3. at a third of the flow SIGKILLs one worker process (with ``--workers`` > 1: uvicorn's
   supervisor starts a new one; the voters whose connections it held retry), at two thirds the
   whole server (every worker) and restarts it; voters retry with their cookies (the secret
   is kept in the database, so the sessions survive) until it answers again. With
   ``--baseline-workers K`` the same flow first runs on K workers without kills, for the
   ratio of battles/s (the full battle flow with several workers against one);
4. the vote endpoint alone (the figure the >= 300 votes/s target is about): battles ready for
   a vote are written into the database for each voter's session, then (a) a closed-loop burst,
   every voter voting as fast as it can (the most votes/s), and (b) an open loop, votes sent at
   ``--vote-rate`` per second (latency at that rate). With ``--refresh-every S`` a voter also
   presses the leaderboard's refresh button every S seconds during (a) and (b), and
   ``--leaderboard-votes N`` first writes N voted battles, so that each refresh has real work;
5. checks the database: every vote acknowledged to a voter (HTTP 200) is there with the same
   winner, and no battle has two votes;
6. rate limits across workers: the server restarts with ``--limit battle_session=20`` and one
   session sends 80 new-battle requests, 8 at a time, each on a new connection (spread over the
   workers): 20 must pass (21 if a token came back meanwhile).

Several workers need Redis (``--redis URL``; each run uses its own key prefix).

Each voter connects from a loopback address of its own (127.1.0.1, 127.1.0.2, ...:
:func:`voter_address`), so the server sees a hundred voters at a hundred addresses, as a public
arena sees its voters (the vote-integrity checks count and lock per address as well as per
session); the battles prepared for step 4 carry their voter's address.

The load generator of step 4 (``--vote-client raw``, the default) is a separate process with
its own event loop and a minimal HTTP/1.1 keep-alive client (two connections per voter, like
the browser's), so that the client's own CPU does not compete with the server inside one
Python process: httpx spends about 2 ms of CPU per request, the server about 1.5 ms per vote,
on a 2-core machine. ``--vote-client httpx`` runs step 4 from this process with the voters'
httpx clients, as before. In the open loop the latency of a vote is counted from the moment it
was due to be sent, not from when the client got round to sending it (no coordinated
omission); "late p99" is how late the client itself was.

During each phase the bench records the CPU the server used per vote and the CPUs used by
other processes of the machine (it is shared: a run where others use a core or more has
inflated latencies and says so). For the open loop it also says what the machine did:

- what used the CPUs (every 0.1 s: the workers, their child processes, PostgreSQL's backends,
  its autovacuum workers and other processes, Redis and the mock models, the load generator,
  steal time, the rest; and how many threads were runnable), over the slowest 0.5 s of sends
  and over the whole phase; PostgreSQL's autovacuum and autoanalyze of the run's tables;
- a stall probe: a separate process that shares nothing with the arena times the same 0.1-0.2 ms
  of Python work every 2 ms during the vote phases and then alone on the quiet machine. Runs
  that take over 10x their median mean the machine itself was slow then (a virtual machine
  whose CPUs are taken away or slowed now and then, which its steal time may not show); the
  table gives how often, in how many stretches, how far apart, and how many of the votes over
  50 ms were in flight during one (against the share of the faster votes, what chance gives);
- the machine's floor: the same client sends the same votes at the same rate to as many null
  HTTP server processes as the arena has workers (no framework, no database, an answer at
  once): the latency this machine gives a server that does no work; and the web stack's floor:
  the same against a FastAPI route that only validates the vote's body (``floor_app``, as many
  uvicorn workers): what the framework alone costs, without sessions, database or vote writer.

``--no-floor`` skips the probe and the floor. The vote latencies of the open loop (sent at,
seconds; latency; battle id) are written to ``vote_latencies.json`` in the data folder.

Durability: the vote answer is sent after the commit. By default votes are committed with
SQLite ``synchronous=FULL`` (WAL fsynced at commit): an acknowledged vote survives SIGKILL of
the server and a power loss or kernel crash (on a disk that honours fsync). ``OPENARENA_SQLITE_VOTE_SYNCHRONOUS=NORMAL``
commits without fsync: the vote survives SIGKILL (what this bench checks: the commit is in
the WAL file, in the OS page cache) but not a power loss. The output names the level used.

Prints one table: votes/s offered, sent and achieved, vote p50/p99, the burst, battles/s of
the flow on the baseline and on ``--workers`` and their ratio (the first third of each flow,
timed once the server is idle after its start, so N workers' start-up is not counted against
them), CPU per vote and per battle of the server, the client and the services (PostgreSQL,
Redis, the mock models), lost/duplicated after the kills, the rate limit, and the machine's load
average at start and end.
Targets: >= 300 votes/s on SQLite, p99 < 100 ms for the vote request, 0 lost, 0 duplicated;
with ``--workers 4`` on PostgreSQL and Redis: the rate limit holds within one request across the
workers, vote p99 < 50 ms at 300 votes/s, the full battle flow faster than on one worker
(``--baseline-workers 1``), 0 lost and 0 duplicated through both kills.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from openarena.serving.sessions import COOKIE, SessionManager, network_hash, voter_hash
from openarena.storage import Database
from openarena.storage.settings import shared_secret
from openarena.storage.battles import acquire_turn, create_battle, finish_turn
from openarena.storage.db import vote_synchronous

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def voter_address(i: int) -> str:
    """The loopback address voter ``i`` connects from (127.1.0.1, 127.1.0.2, ...: every 127.x
    address is this machine's), so that the server sees each voter at an address of its own, as
    a public arena sees its voters: the vote-integrity checks lock and count per voter address
    as well as per session; voters all at 127.0.0.1 would share one IP key."""
    return f"127.1.{i // 250}.{i % 250 + 1}"


WINNERS = ["model_a", "model_b", "tie", "tie (bothbad)"]
WARMUP_S = 3.0  # after a server starts (its workers' first leaderboard refresh), before a flow is timed

BEHAVIOURS = """models:
  bench-a: {chunks: ["The ", "answer ", "is ", "forty", "-two", "."]}
  bench-b: {chunks: ["Here ", "is ", "a ", "short ", "reply", "."]}
  bench-c: {chunks: ["**Bold** ", "and ", "`code` ", "in ", "six ", "chunks."]}
  bench-d: {chunks: ["- one\\n", "- two\\n", "- three\\n", "- four\\n", "- five\\n", "- six\\n"]}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


# -- CPU accounting (Linux /proc) ---------------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the process ``pid`` alone (0 when it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (of every thread of it)."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            out += [int(c) for c in open(f"/proc/{pid}/task/{tid}/children").read().split()]
    except (OSError, ValueError):
        pass
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants (children of every thread)."""
    return _proc_cpu(pid) + sum(tree_cpu(c) for c in _children(pid))


def proc_stat() -> tuple[float, float, int]:
    """From ``/proc/stat``: CPU seconds the machine has used so far, all cores (steal time
    included: the hypervisor's, counted as used), of which steal time, and how many threads
    are runnable now (``procs_running``)."""
    lines = open("/proc/stat").read().splitlines()
    v = [int(x) for x in lines[0].split()[1:]]
    running = next(int(line.split()[1]) for line in lines if line.startswith("procs_running"))
    return (sum(v) - v[3] - v[4]) / TICK, v[7] / TICK, running


def machine_cpu() -> float:
    """CPU seconds used by everything on the machine so far (all cores)."""
    return proc_stat()[0]


#: pids whose process trees are the services the arena uses (PostgreSQL's postmaster, the Redis
#: server, the mock model server), when they run on this machine; set by main_async
SERVICES: list[int] = []


def service_pids(db_url: str, redis_url: str | None, mock_pid: int) -> list[int]:
    """The local PostgreSQL postmaster (from its data directory's postmaster.pid), the Redis
    server (``INFO server``) and the mock server: their CPU is the services' share, not
    "other" load of the machine. Whatever cannot be found (a remote server) is left out."""
    pids = [mock_pid]
    if db_url != "sqlite":
        try:
            import psycopg

            base = db_url.split("?", 1)[0].replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(base, autocommit=True) as conn:
                data_dir = conn.execute("SHOW data_directory").fetchone()[0]
            pids.append(int(open(os.path.join(data_dir, "postmaster.pid")).readline()))
        except Exception:  # noqa: BLE001 - remote or unreadable: not counted
            pass
    if redis_url:
        try:
            import redis

            pids.append(int(redis.Redis.from_url(redis_url).info("server")["process_id"]))
        except Exception:  # noqa: BLE001
            pass
    return pids


def wait_idle(pid: int, limit_s: float = 60.0, below: float = 0.2) -> float:
    """Wait until the server tree of ``pid`` uses less than ``below`` CPUs over half a second
    (its workers have started, imported and warmed up: a flow timed before that would count
    the start of N workers against N workers), at most ``limit_s``; returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        c0, w0 = tree_cpu(pid), time.monotonic()
        time.sleep(0.5)
        if (tree_cpu(pid) - c0) / (time.monotonic() - w0) < below:
            break
    return time.monotonic() - t0


def load_average() -> str:
    """The machine's 1/5/15-minute load averages (runnable processes; this machine has os.cpu_count() cores)."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class CpuMeter:
    """Over one phase: CPU seconds of the server (with its children: workers, leaderboard
    process), of the load generator (``client_cpu``: ``client_pid``'s tree, default this
    process), of the services (PostgreSQL, Redis, the mock models: :data:`SERVICES`), and how
    many CPUs everything else on the machine used on average (``other_cpus``: other users)."""

    def __init__(self, server_pid: int, client_pid: int | None = None) -> None:
        self.server_pid, self.client_pid = server_pid, client_pid
        self.t0 = time.perf_counter()
        self.server0, self.all0, self.client0, self.services0 = tree_cpu(server_pid), machine_cpu(), self._client(), self._services()

    def _client(self) -> float:
        return tree_cpu(self.client_pid) if self.client_pid else time.process_time()

    @staticmethod
    def _services() -> float:
        return sum(tree_cpu(p) for p in SERVICES)

    def stop(self) -> dict[str, float]:
        wall, client = time.perf_counter() - self.t0, self._client() - self.client0
        server, allc, services = tree_cpu(self.server_pid) - self.server0, machine_cpu() - self.all0, self._services() - self.services0
        return {"wall": wall, "server_cpu": server, "client_cpu": client, "services_cpu": services,
                "other_cpus": max(0.0, allc - server - client - services) / wall}


# -- what ran during the vote phase (Linux /proc), to explain its slowest moments ---------------
def _pg_kind(pid: int) -> str:
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return "pg other"
    if b"autovacuum worker" in cmd:
        return "autovacuum"
    if any(k in cmd for k in (b"checkpointer", b"background writer", b"walwriter", b"autovacuum launcher", b"logical replication",
                               b"stats collector", b"archiver", b"walsender")):
        return "pg other"
    return "pg backends"


#: the columns of a :class:`Timeline` sample, in CPUs (seconds of CPU per second) except "runnable"
TIMELINE_KINDS = ("workers", "server children", "pg backends", "autovacuum", "pg other", "redis + mock", "client", "steal", "other", "runnable")


class Timeline:
    """Samples every ``step`` seconds (a thread) what used the machine's CPUs: the server's
    workers (the supervisor's children), their own children (the leaderboard and render
    processes), PostgreSQL's client backends, its autovacuum workers and its other processes,
    Redis and the mock models, the load generator (this process), the hypervisor's steal time
    (``/proc/stat``), everything else, and how many threads were runnable (``procs_running``).
    :meth:`window` averages the samples over a span of time (``time.perf_counter`` clock)."""

    def __init__(self, server_pid: int, step: float = 0.1) -> None:
        import threading

        self.server_pid, self.step = server_pid, step
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._prev = self._machine()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _machine() -> tuple[float, float, float, int]:
        used, steal, running = proc_stat()
        return time.perf_counter(), used - steal, steal, running

    def _delta(self, pid: int) -> float:
        now = _proc_cpu(pid)
        d = now - self._last.get(pid, now)
        self._last[pid] = now
        return d

    def _sample(self) -> None:
        got = dict.fromkeys(TIMELINE_KINDS, 0.0)
        for w in _children(self.server_pid):
            got["workers"] += self._delta(w)
            stack = _children(w)
            while stack:
                c = stack.pop()
                got["server children"] += self._delta(c)
                stack += _children(c)
        got["workers"] += self._delta(self.server_pid)
        for s in SERVICES:
            kids = _children(s)
            if kids and any(_pg_kind(k) != "pg backends" for k in kids):  # PostgreSQL's postmaster
                got["pg other"] += self._delta(s)
                for k in kids:
                    got[_pg_kind(k)] += self._delta(k)
            else:
                got["redis + mock"] += self._delta(s)
        got["client"] = self._delta(os.getpid())
        t, busy, steal, running = self._machine()
        t0, busy0, steal0, _ = self._prev
        self._prev = (t, busy, steal, running)
        dt = max(t - t0, 1e-6)
        for k in TIMELINE_KINDS[:-3]:
            got[k] /= dt
        got["steal"] = (steal - steal0) / dt
        got["other"] = max(0.0, (busy - busy0) / dt - sum(got[k] for k in TIMELINE_KINDS[:-3]))
        got["runnable"] = float(running)
        self.samples.append((t, got))

    def _run(self) -> None:
        self._sample()
        self.samples.clear()  # the first one only primed the per-process counters
        while not self._stop.wait(self.step):
            self._sample()

    def start(self) -> "Timeline":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def window(self, t0: float, t1: float) -> dict[str, float]:
        """Mean of each column over the samples that end in ``(t0, t1]`` (empty: zeros)."""
        inside = [g for t, g in self.samples if t0 < t <= t1]
        return {k: sum(g[k] for g in inside) / max(len(inside), 1) for k in TIMELINE_KINDS}


def slowest_window(due_lat: list[tuple[float, float]], width: float = 0.5) -> tuple[float, float, int]:
    """The ``width``-second window of send times (``due``) whose votes took longest: returns its
    start, its slowest vote's latency (s) and how many of its votes took over 50 ms."""
    if not due_lat:
        return 0.0, 0.0, 0
    bins: dict[int, list[float]] = defaultdict(list)
    t0 = min(d for d, *_ in due_lat)
    for d, lat, *_ in due_lat:
        bins[int((d - t0) / width)].append(lat)
    k = max(bins, key=lambda b: max(bins[b]))
    return t0 + k * width, max(bins[k]), sum(1 for x in bins[k] if x > 0.05)


# -- the vote load generator of step 4 (a separate process) -------------------------------------
class RawConn:
    """One HTTP/1.1 keep-alive connection: POST a JSON body, read status and body
    (Content-Length framed, as the arena's JSON answers are). Reconnects when the server closed it."""

    def __init__(self, port: int, cookie: str, csrf: str, local: str | None = None) -> None:
        self.local = local
        self.port, self.head = port, (
            f"host: {HOST}:{port}\r\ncontent-type: application/json\r\ncookie: {COOKIE}={cookie}\r\n"
            f"x-csrf-token: {csrf}\r\n"
        ).encode()
        self.reader = self.writer = None
        self.busy = False

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(HOST, self.port, local_addr=(self.local, 0) if self.local else None)
                self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\n" + self.head + b"content-length: %d\r\n\r\n" % len(body) + body)
                head = await self.reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                m = re.search(rb"(?i)content-length: *(\d+)", head)
                data = await self.reader.readexactly(int(m.group(1))) if m else b""
                if re.search(rb"(?i)connection: *close", head):
                    self.close()
                return status, data
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _vote_phases(server_pid: int, port: int, voters: list[tuple[str, str]], burst: list[tuple[int, str, str]],
                       rate_jobs: list[tuple[int, str, str]], rate: float, refresh_every: float) -> dict:
    pools = [[RawConn(port, ck, cs, voter_address(v)) for _ in range(2)] for v, (ck, cs) in enumerate(voters)]
    out: dict = {}

    async def vote(v: int, bid: str, winner: str, due: float | None, res: dict) -> None:
        conn = next((c for c in pools[v] if not c.busy), None) or RawConn(port, *voters[v], voter_address(v))
        conn.busy = True
        t0 = time.perf_counter()
        try:
            status, data = await conn.post(f"/api/battles/{bid}/vote", json.dumps({"winner": winner}).encode())
        except (OSError, asyncio.IncompleteReadError):
            res["errors"]["vote: connection"] = res["errors"].get("vote: connection", 0) + 1
            return
        finally:
            conn.busy = False
        t1 = time.perf_counter()
        res["lat"].append(t1 - (due if due is not None else t0))
        if due is not None:
            res["due_lat"].append((due, t1 - due, bid))
        if status == 200:
            res["acked"].append((bid, winner))
        else:
            key = f"vote: {status} {json.loads(data).get('code', '') if data[:1] == b'{' else ''}".strip()
            res["errors"][key] = res["errors"].get(key, 0) + 1

    async def refresher() -> None:
        conn = RawConn(port, *voters[0])
        while True:
            await asyncio.sleep(refresh_every)
            try:
                status, data = await conn.post("/leaderboard/refresh", b"{}")
            except (OSError, asyncio.IncompleteReadError):
                continue
            if status == 202 and json.loads(data).get("refreshing"):
                out["refreshes"] = out.get("refreshes", 0) + 1

    poke = asyncio.create_task(refresher()) if refresh_every > 0 else None
    # (a) closed loop: every voter votes as fast as it can, one vote after the other
    res = out["burst"] = {"lat": [], "acked": [], "errors": {}}
    by_voter: dict[int, list[tuple[str, str]]] = {}
    for v, bid, w in burst:
        by_voter.setdefault(v, []).append((bid, w))

    async def vote_all(v: int, items: list[tuple[str, str]]) -> None:
        for bid, w in items:
            await vote(v, bid, w, None, res)

    meter = CpuMeter(server_pid)
    await asyncio.gather(*[vote_all(v, items) for v, items in by_voter.items()])
    res.update(meter.stop())
    # (b) open loop: votes due at rate per second, whatever the answers take
    res = out["rate"] = {"lat": [], "acked": [], "errors": {}, "late": [], "due_lat": []}
    timeline = Timeline(server_pid).start()
    res["wall_start"] = time.time()
    meter, t0 = CpuMeter(server_pid), time.perf_counter()
    pending = []
    for i, (v, bid, w) in enumerate(rate_jobs):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        res["late"].append(time.perf_counter() - due)
        pending.append(asyncio.create_task(vote(v, bid, w, due, res)))
    res["send_s"] = time.perf_counter() - t0  # how long the client took to send them all
    await asyncio.gather(*pending)
    res.update(meter.stop())
    timeline.stop()
    res["wall_end"] = time.time()
    start, worst, n_slow = slowest_window(res["due_lat"])
    res["worst"] = {"start": start - t0, "max": worst, "n_slow": n_slow,
                    "cpus": timeline.window(start, start + 0.5 + worst), "all": timeline.window(t0, time.perf_counter())}
    if poke is not None:
        poke.cancel()
    for pool in pools:
        for c in pool:
            c.close()
    return out


def vote_process(conn, services: list[int], *args) -> None:
    """Entry point of the load generator process: runs both vote phases, sends the results."""
    SERVICES[:] = services
    try:
        conn.send(asyncio.run(_vote_phases(*args)))
    finally:
        conn.close()


def run_vote_process(*args) -> dict:
    """Run :func:`_vote_phases` (``args``: server pid, port, voters, burst, rate jobs, rate,
    refresh_every) in a load generator process of its own (spawned: its own interpreter and
    event loop) and return its results."""
    ctx = multiprocessing.get_context("spawn")
    mine, theirs = ctx.Pipe()
    worker = ctx.Process(target=vote_process, args=(theirs, SERVICES, *args))
    worker.start()
    theirs.close()
    try:
        return mine.recv()
    finally:
        worker.join()


# -- the machine's floor: what the same client measures against a server that does nothing ------
def _null_server_main(port: int) -> None:
    """Entry point of one null-server process: HTTP/1.1 keep-alive on ``port`` (SO_REUSEPORT,
    so several such processes share it as the arena's workers share theirs), answering every
    request ``200 {}`` at once: no framework, no session, no database."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length: *(\d+)", head)
                if m:
                    await reader.readexactly(int(m.group(1)))
                writer.write(answer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, HOST, port, reuse_port=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def floor_app():
    """The framework's floor (``uvicorn serve_load:floor_app --factory``): a FastAPI app whose
    only route takes the vote request's path and JSON body (validated by pydantic) and answers
    at once: the arena's web stack without its sessions, database or vote writer."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel

    class Ballot(BaseModel):
        winner: str

    app = FastAPI()

    @app.post("/api/battles/{battle_id}/vote")
    async def vote(battle_id: str, body: Ballot):
        return JSONResponse({"battle_id": battle_id, "winner": body.winner})

    return app


def floor_phase(kind: str, workers: int, cookies: list[tuple[str, str]], rate_jobs: list[tuple[int, str, str]], rate: float) -> dict:
    """The open-loop phase of step 4 again, same client, same votes, same rate, against
    ``workers`` processes of a server that does (almost) no work: kind 'null', raw asyncio
    (:func:`_null_server_main`: what the machine gives, its scheduler, network stack and stalls),
    or 'fastapi', uvicorn with :func:`floor_app` (what the web stack alone costs). Returns the
    phase's result (its "server_cpu" is that server's CPU)."""
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    if kind == "null":
        procs = [ctx.Process(target=_null_server_main, args=(port,), daemon=True) for _ in range(workers)]
        for p in procs:
            p.start()
        pid = os.getpid()
    else:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")])}
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "serve_load:floor_app", "--factory", "--host", HOST, "--port", str(port),
                                   "--workers", str(workers), "--log-level", "warning"], cwd=ROOT / "bench", env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = server.pid
    try:
        wait_http(f"http://{HOST}:{port}/healthz", timeout=60)  # any answer: the null server's 200, FastAPI's 404
        if kind == "null":
            time.sleep(1.0)  # every process listening
        else:
            wait_idle(pid)  # every worker started
        return run_vote_process(pid, port, cookies, [], rate_jobs, rate, 0.0)["rate"]
    finally:
        if kind == "null":
            for p in procs:
                p.kill()
                p.join()
        else:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

def _probe_chunk() -> int:
    """A fixed piece of ordinary Python work (small objects made and dropped), about 0.1-0.2 ms."""
    return len([{"i": i, "s": str(i)} for i in range(300)])


def _probe_main(conn, seconds: float) -> None:
    """Entry point of the stall probe process: :func:`_probe_chunk` over and over, 2 ms apart,
    until ``seconds`` have passed or the pipe says stop; sends [(start, duration)] (seconds,
    ``time.perf_counter``: one clock for every process of the machine)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rec = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and not conn.poll():
        t = time.perf_counter()
        _probe_chunk()
        rec.append((t, time.perf_counter() - t))
        time.sleep(0.002)
    conn.send(rec)
    conn.close()


class StallProbe:
    """A separate process timing the same small piece of work again and again (:func:`_probe_main`).
    It shares nothing with the arena: when its work takes many times its median, the whole
    machine was slow then (a virtual machine's CPUs taken away or slowed, which its steal time
    may not show), not the arena. :meth:`stop` returns its [(start, duration)]."""

    def __init__(self, seconds: float = 600.0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._mine, theirs = ctx.Pipe()
        self._proc = ctx.Process(target=_probe_main, args=(theirs, seconds), daemon=True)
        self._proc.start()
        theirs.close()

    def stop(self) -> list[tuple[float, float]]:
        try:
            self._mine.send(None)
        except OSError:  # its time is up: it has sent its record and closed its end already
            pass
        rec = self._mine.recv()
        self._proc.join()
        return rec


def stall_summary(rec: list[tuple[float, float]], t0: float | None = None, t1: float | None = None, factor: float = 10.0) -> dict[str, Any]:
    """The probe's chunks between t0 and t1: median (ms), the share over ``factor`` x the median,
    the stretches of such chunks (starts, 0.3 s apart at least) and their median spacing (s)."""
    rec = [(t, d) for t, d in rec if (t0 is None or t >= t0) and (t1 is None or t <= t1)]
    if not rec:
        return {"p50_ms": float("nan"), "slow_share": 0.0, "stretches": [], "period_s": 0.0, "worst": 0.0}
    s = sorted(d for _, d in rec)
    med = s[len(s) // 2]
    slow = [(t, d) for t, d in rec if d > factor * med]
    starts = [t for i, (t, _) in enumerate(slow) if i == 0 or t - slow[i - 1][0] > 0.3]
    gaps = sorted(b - a for a, b in zip(starts, starts[1:]))
    return {"p50_ms": med * 1000, "slow_share": len(slow) / len(rec), "slow": slow, "stretches": starts,
            "period_s": gaps[len(gaps) // 2] if gaps else 0.0, "worst": max(d for _, d in rec) / med}


def slow_votes_in_stalls(due_lat: list, slow: list[tuple[float, float]], over: float = 0.05) -> tuple[int, int, float]:
    """Votes over ``over`` seconds, how many of them were in flight while a probe chunk was slow
    (one began from 0.2 s before the vote was due until it was answered), and the same share for
    the other votes (what chance alone gives)."""
    import bisect

    starts = [t for t, _ in slow]
    counts = {True: [0, 0], False: [0, 0]}
    for due, lat, *_ in due_lat:
        i = bisect.bisect_left(starts, due - 0.2)
        c = counts[lat > over]
        c[0] += 1
        c[1] += i < len(starts) and starts[i] <= due + lat
    fast = counts[False]
    return counts[True][0], counts[True][1], fast[1] / max(fast[0], 1)

class Stats:
    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.acked: dict[str, str] = {}  # battle_id -> winner acknowledged
        self.double_acks = 0
        self.battles = 0
        self.battle_t: list[float] = []  # time.monotonic() of every battle answered (votable)

    def add(self, kind: str, seconds: float) -> None:
        self.lat[kind].append(seconds)


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


class Voter:
    def __init__(self, url: str, stats: Stats, seed: int, address: str | None = None) -> None:
        self.url, self.stats, self.address = url, stats, address
        self.rng = random.Random(seed)
        transport = httpx.AsyncHTTPTransport(local_address=address, limits=httpx.Limits(max_connections=2))  # the client's limits live here
        self.client = httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, connect=5), transport=transport)
        self.headers: dict[str, str] = {}

    async def open(self) -> None:
        while True:
            try:
                r = await self.client.get("/")
                self.headers = {"x-csrf-token": re.search(r'name="csrf-token" content="([0-9a-f]+)"', r.text).group(1)}
                return
            except (httpx.HTTPError, AttributeError):
                await asyncio.sleep(0.2)

    async def _post(self, kind: str, path: str, body: dict, stream: bool = False, due: float | None = None):
        """POST with retries while the server is down; returns the response (read) or None.
        The latency counts from ``due`` when given (open loop), else from the send."""
        for _ in range(200):
            t0 = time.perf_counter() if due is None else due
            try:
                r = await self.client.post(path, json=body, headers=self.headers)
                self.stats.add(kind, time.perf_counter() - t0)
                return r
            except httpx.HTTPError:
                self.stats.errors[f"{kind}: connection"] += 1
                await asyncio.sleep(0.2)
        return None

    async def prepare(self) -> str | None:
        r = await self._post("create", "/api/battles", {"mode": "anony"})
        if r is None or r.status_code != 200:
            self.stats.errors[f"create: {getattr(r, 'status_code', 'none')}"] += 1
            return None
        bid = r.json()["battle_id"]
        r = await self._post("turn", f"/api/battles/{bid}/turns", {"prompt": f"question {self.rng.random()}"})
        if r is None or r.status_code != 200 or "event: end" not in r.text or '"votable":true' not in r.text:
            self.stats.errors[f"turn: {getattr(r, 'status_code', 'none')}"] += 1
            return None
        self.stats.battles += 1
        self.stats.battle_t.append(time.monotonic())
        return bid

    async def vote(self, bid: str, winner: str | None = None, due: float | None = None) -> None:
        winner = winner or self.rng.choice(WINNERS)
        r = await self._post("vote", f"/api/battles/{bid}/vote", {"winner": winner}, due=due)
        if r is None:
            return
        if r.status_code == 200:
            if bid in self.stats.acked:
                self.stats.double_acks += 1
            self.stats.acked[bid] = winner
        elif r.status_code == 409 and r.json().get("code") == "already_voted":
            self.stats.errors["vote: already voted (retry after a kill)"] += 1
        else:
            self.stats.errors[f"vote: {r.status_code}"] += 1

    async def run(self, deadline: float) -> None:
        await self.open()
        while time.monotonic() < deadline:
            bid = await self.prepare()
            if bid is None:
                await asyncio.sleep(0.1)
                continue
            await self.vote(bid)


class Server:
    def __init__(self, args, registry: Path, data: Path, port: int, workers: int | None = None, extra: tuple[str, ...] = ("--no-rate-limits",)) -> None:
        self.workers = workers or args.workers
        self.cmd = [str(BIN / "openarena"), "serve", "--registry", str(registry), "--port", str(port), "--host", HOST,
                    *extra, "--leaderboard-interval", "3600", "--workers", str(self.workers), "--data-dir", str(data)]
        if args.db != "sqlite":
            self.cmd += ["--db", args.db]
        if args.redis:
            self.cmd += ["--redis", args.redis]
        self.env = {**os.environ, "OPENARENA_REDIS_PREFIX": f"bench{os.getpid()}:"}
        self.url = f"http://{HOST}:{port}"
        self.proc: subprocess.Popen | None = None
        self.log = open(data / "server.log", "ab")

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=self.log, start_new_session=True, cwd=ROOT, env=self.env)
        wait_http(self.url + "/healthz", timeout=120)

    def worker_pids(self) -> list[int]:
        """The worker processes (children of uvicorn's supervisor that serve requests)."""
        out = []
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            for child in open(f"/proc/{self.proc.pid}/task/{tid}/children").read().split():
                try:
                    cmd = open(f"/proc/{child}/cmdline", "rb").read()
                except OSError:
                    continue
                if b"multiprocessing" in cmd and b"spawn_main" in cmd and b"resource_tracker" not in cmd:
                    out.append(int(child))
        return out

    def kill_one_worker(self) -> int | None:
        """SIGKILL one worker (several workers only); returns its pid."""
        pids = self.worker_pids() if self.workers > 1 else []
        if not pids:
            return None
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def autovacuum_events(url: str, t0: float | None) -> str:
    """PostgreSQL's autovacuum and autoanalyze of this run's tables (``pg_stat_user_tables`` of
    the schema in ``url``'s search_path): each table's counts and the time of the last one, in
    seconds from ``t0`` (the open-loop vote phase's start, ``time.time()``)."""
    import psycopg

    base = url.split("?", 1)[0].replace("postgresql+psycopg://", "postgresql://")
    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(base, autocommit=True) as conn:
        rows = conn.execute("select relname, autovacuum_count, autoanalyze_count, extract(epoch from last_autovacuum), extract(epoch from last_autoanalyze) "
                            "from pg_stat_user_tables where schemaname = %s and (autovacuum_count > 0 or autoanalyze_count > 0) order by relname", (schema,)).fetchall()

    def at(x) -> str:
        return f" (last at t={float(x) - t0:+.1f} s)" if x is not None and t0 is not None else ""

    return "; ".join(f"{r[0]}: vacuum x{r[1]}{at(r[3])}, analyze x{r[2]}{at(r[4])}" for r in rows)


def pg_schema(url: str, drop: str | None = None) -> str:
    """A fresh schema for this run in the PostgreSQL of ``url`` (the URL with its search_path),
    or, with ``drop``, drop that schema."""
    import psycopg

    base = url.replace("postgresql+psycopg://", "postgresql://").replace("postgres://", "postgresql://")
    name = drop or f"bench_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE' if drop else f'CREATE SCHEMA "{name}"')
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}"


async def main_async(args) -> int:
    schema = None
    if args.db != "sqlite":
        base_db = args.db
        args.db = pg_schema(base_db)
        schema = args.db.rsplit("%3D", 1)[1]
    try:
        return await _main_async(args)
    finally:
        if schema is not None:
            pg_schema(base_db, drop=schema)


async def _main_async(args) -> int:
    load_start = load_average()
    tmp = Path(tempfile.mkdtemp(prefix="openarena-bench-"))
    (tmp / "behaviours.yaml").write_text(BEHAVIOURS)
    mport, aport = free_port(), free_port()
    mock = subprocess.Popen([sys.executable, "-m", "openarena.demo.mock_server", "--host", HOST, "--port", str(mport), "--config", str(tmp / "behaviours.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    SERVICES[:] = service_pids(args.db, args.redis, mock.pid)
    reg = tmp / "models.yaml"
    reg.write_text("defaults: {base_url: 'http://%s:%d/v1', timeout_s: 10}\nmodels:\n" % (HOST, mport)
                   + "".join(f"  - {{name: bench-model-{k}, model_id: bench-{k}}}\n" for k in "abcd"))
    server = Server(args, reg, tmp, aport)
    stats = Stats()
    baseline = None
    limit_result = None
    floor = floor_web = stalls = probe_rec = None
    try:
        wait_http(f"http://{HOST}:{mport}/v1/models")
        if args.baseline_workers:
            base = Server(args, reg, tmp, aport, workers=args.baseline_workers)
            await asyncio.to_thread(base.start)
            await asyncio.sleep(WARMUP_S)
            await asyncio.to_thread(wait_idle, base.proc.pid)
            bstats = Stats()
            bvoters = [Voter(base.url, bstats, 10_000 + i, voter_address(i)) for i in range(args.voters)]
            b0 = time.monotonic()
            span = args.duration / 3 if not args.no_kill else args.duration
            btasks = [asyncio.create_task(v.run(b0 + args.duration)) for v in bvoters]
            bmeter = CpuMeter(base.proc.pid)
            await asyncio.sleep(max(0.0, b0 + span - time.monotonic()))
            bcpu = bmeter.stop()
            await asyncio.gather(*btasks)
            bflow = time.monotonic() - b0
            baseline = {"workers": args.baseline_workers, "battles_s": bstats.battles / bflow, "votes_s": len(bstats.acked) / bflow,
                        "early_s": sum(1 for t in bstats.battle_t if t - b0 <= span) / span,
                        "vote": list(bstats.lat["vote"]), "create": list(bstats.lat["create"]), "turn": list(bstats.lat["turn"]),
                        "errors": dict(bstats.errors), "cpu": bcpu, "early_n": sum(1 for t in bstats.battle_t if t - b0 <= span)}
            for v in bvoters:
                await v.client.aclose()
            base.stop()
        server.start()
        await asyncio.sleep(WARMUP_S)
        await asyncio.to_thread(wait_idle, server.proc.pid)
        voters = [Voter(server.url, stats, i, voter_address(i)) for i in range(args.voters)]
        t0 = time.monotonic()
        deadline = t0 + args.duration
        tasks = [asyncio.create_task(v.run(deadline)) for v in voters]
        killed_at = restarted_at = worker_killed = None
        fmeter = CpuMeter(server.proc.pid)
        if not args.no_kill:
            await asyncio.sleep(max(0.0, t0 + args.duration / 3 - time.monotonic()))
            flow_cpu = fmeter.stop()
            worker_killed = (server.kill_one_worker(), time.monotonic() - t0)
            await asyncio.sleep(max(0.0, t0 + 2 * args.duration / 3 - time.monotonic()))
            server.kill()
            killed_at = time.monotonic() - t0
            await asyncio.sleep(1.0)
            await asyncio.to_thread(server.start)
            restarted_at = time.monotonic() - t0
        await asyncio.gather(*tasks)
        if args.no_kill:
            flow_cpu = fmeter.stop()
        flow_vote_lat = list(stats.lat["vote"])

        # The vote endpoint alone. Battles ready for a vote are written straight into the
        # database for each voter's session (the streamed turns of the flow phase would take
        # minutes to prepare thousands); the votes then go through HTTP like any other.
        db = Database.open(None if args.db == "sqlite" else args.db, tmp, run_migrations=False)
        secret = (os.environ.get("OPENARENA_SECRET") or shared_secret(db)).encode()
        sessions = SessionManager(secret)
        judges = {}
        for v in voters:
            raw = v.client.cookies.get(COOKIE)
            sid = sessions._signer.loads(raw)
            judges[v] = voter_hash(secret, sid)
        conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "The answer is forty-two."}]

        def prefill_votes(db: Database, n: int) -> None:
            """n voted anonymous battles (for the leaderboard refreshes of --refresh-every)."""
            from sqlalchemy import insert

            from openarena.storage.models import Battle, Vote

            now, rng, models = time.time(), random.Random(1), [f"bench-model-{k}" for k in "abcd"]
            rows, votes = [], []
            for i in range(n):
                a, b = rng.sample(models, 2)
                bid = f"{i:032x}"
                rows.append(dict(id=bid, mode="anony", model_a=a, model_b=b, session_hash="bench", status="voted", sampling_policy="fastchat",
                                 sampling_prob=1 / 6, created_at=now, updated_at=now, turns=1, conversation_a=conv, conversation_b=conv, version=3))
                votes.append(dict(battle_id=bid, winner=rng.choice(WINNERS), tstamp=now - n + i, judge="bench", counted=True))
            with db.write() as conn:
                conn.execute(insert(Battle.__table__), rows)
                conn.execute(insert(Vote.__table__), votes)

        def prepare_in_db(n_per_voter: int) -> list[tuple[Voter, str]]:
            out = []
            for _ in range(n_per_voter):
                for v in voters:
                    bid = create_battle(db, mode="anony", model_a="bench-model-a", model_b="bench-model-b", session_hash=judges[v], sampling_policy="fastchat",
                                        sampling_prob=1 / 6, ip_hash=network_hash(secret, v.address))
                    acquire_turn(db, bid, judges[v])
                    finish_turn(db, bid, conversation_a=conv, conversation_b=conv, turns=1)
                    out.append((v, bid))
            return out

        if args.leaderboard_votes:
            await asyncio.to_thread(prefill_votes, db, args.leaderboard_votes)
        n_rate = int(args.vote_rate * args.rate_seconds)
        prepared_burst = await asyncio.to_thread(prepare_in_db, args.burst_per_voter)
        prepared_rate = (await asyncio.to_thread(prepare_in_db, -(-n_rate // len(voters))))[:n_rate]
        index = {v: i for i, v in enumerate(voters)}
        burst_jobs = [(index[v], bid, v.rng.choice(WINNERS)) for v, bid in prepared_burst]
        rate_jobs = [(index[v], bid, v.rng.choice(WINNERS)) for v, bid in prepared_rate]
        cookies = [(v.client.cookies.get(COOKIE), v.headers["x-csrf-token"]) for v in voters]
        if args.vote_client == "raw":
            probe = None if args.no_floor else StallProbe()
            result = await asyncio.to_thread(run_vote_process, server.proc.pid, int(server.url.rsplit(":", 1)[1]), cookies, burst_jobs, rate_jobs,
                                             args.vote_rate, args.refresh_every)
            phases = {name: result[name] for name in ("burst", "rate")}
            if probe is not None:
                probe_rec = probe.stop()
            (tmp / "vote_latencies.json").write_text(json.dumps(phases["rate"].get("due_lat", [])))
            for r in phases.values():
                for bid, w in r["acked"]:
                    if bid in stats.acked:
                        stats.double_acks += 1
                    stats.acked[bid] = w
                for k, n in r["errors"].items():
                    stats.errors[k] += n
            refreshes = result.get("refreshes", 0)
        else:
            phases, refreshes = {}, 0
            if args.refresh_every:
                print("--refresh-every is only done by --vote-client raw", file=sys.stderr)
            by_voter: dict[Voter, list[tuple[str, str]]] = defaultdict(list)
            for vi, bid, w in burst_jobs:
                by_voter[voters[vi]].append((bid, w))

            async def vote_all(v: Voter, items: list[tuple[str, str]]) -> None:
                for bid, w in items:
                    await v.vote(bid, w)

            n_before, stats.lat["vote"] = len(stats.acked), []
            meter = CpuMeter(server.proc.pid)
            await asyncio.gather(*[vote_all(v, b) for v, b in by_voter.items()])
            phases["burst"] = {"lat": list(stats.lat["vote"]), "acked": [None] * (len(stats.acked) - n_before), **meter.stop()}
            n_before, stats.lat["vote"] = len(stats.acked), []
            meter, tr = CpuMeter(server.proc.pid), time.perf_counter()
            pending, late = [], []
            for i, (vi, bid, w) in enumerate(rate_jobs):
                due = tr + i / args.vote_rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                late.append(time.perf_counter() - due)
                pending.append(asyncio.create_task(voters[vi].vote(bid, w, due=due)))
            send_s = time.perf_counter() - tr
            await asyncio.gather(*pending)
            phases["rate"] = {"lat": list(stats.lat["vote"]), "acked": [None] * (len(stats.acked) - n_before), "late": late, "send_s": send_s, **meter.stop()}
        db.dispose()
        for v in voters:
            await v.client.aclose()
        server.stop()
        if args.vote_client == "raw" and not args.no_floor:
            floor = await asyncio.to_thread(floor_phase, "null", args.workers, cookies, rate_jobs, args.vote_rate)
            floor_web = await asyncio.to_thread(floor_phase, "fastapi", args.workers, cookies, rate_jobs, args.vote_rate)
        limit_result = await asyncio.to_thread(limit_phase, args, reg, tmp, aport)
        if not args.no_floor:  # the machine alone, quiet: 10 s of the probe
            quiet = StallProbe(seconds=10.0)
            await asyncio.sleep(10.5)
            stalls = stall_summary(await asyncio.to_thread(quiet.stop))
    finally:
        server.stop()
        mock.terminate()

    # the database check
    from sqlalchemy import text

    db = Database.open(None if args.db == "sqlite" else args.db, tmp, run_migrations=False)
    with db.read() as conn:
        rows = conn.execute(text("select battle_id, winner from votes")).all()
        n_rows = len(rows)
        n_distinct = conn.execute(text("select count(distinct battle_id) from votes")).scalar()
    stored = {r.battle_id: r.winner for r in rows}
    lost = [b for b, w in stats.acked.items() if stored.get(b) != w]
    dup = (n_rows - n_distinct) + stats.double_acks

    load_end = load_average()
    vacuums = autovacuum_events(args.db, phases["rate"].get("wall_start")) if args.db != "sqlite" and args.vote_client == "raw" else None
    early_n = sum(1 for t in stats.battle_t if t - t0 <= (args.duration / 3 if not args.no_kill else args.duration))
    span = args.duration / 3 if not args.no_kill else args.duration
    rows: list[tuple[str, str, str]] = []  # (measure, value, target)

    def cpu_note(c: dict, n: int, what: str) -> str:
        return (f"server {c['server_cpu'] / max(n, 1) * 1000:.1f} ms CPU/{what}, client {c['client_cpu'] / max(n, 1) * 1000:.1f}, "
                f"services {c['services_cpu'] / max(n, 1) * 1000:.1f}; other users {c['other_cpus']:.2f} CPUs")

    rate = phases["rate"]
    n_rate = len(rate["acked"])
    rows.append(("votes/s offered (open loop)", f"{args.vote_rate:g}", ""))
    rows.append(("votes/s sent by the client", f"{len(rate['lat']) / max(rate.get('send_s') or rate['wall'], 1e-9):.0f} (late p99 {pct(rate['late'], .99):.0f} ms)", "= offered"))
    rows.append(("votes/s achieved (answered 200)", f"{n_rate / rate['wall']:.0f}", "= offered"))
    rows.append((f"vote p50 / p99 at {args.vote_rate:g}/s", f"{pct(rate['lat'], .5):.1f} / {pct(rate['lat'], .99):.1f} ms",
                 "p99 < 100 ms" if db.backend == "sqlite" else "p99 < 50 ms"))
    rows.append(("  CPU per vote at that rate", cpu_note(rate, n_rate, "vote"), ""))
    if "worst" in rate:
        w = rate["worst"]

        def cpus(c: dict) -> str:
            return (", ".join(f"{k} {c[k]:.2f}" for k in TIMELINE_KINDS[:-1]) + f"; runnable threads {c['runnable']:.1f}")

        rows.append(("  slowest 0.5 s of sends", f"from t={w['start']:.1f} s: slowest vote {w['max'] * 1000:.0f} ms, {w['n_slow']} over 50 ms", ""))
        rows.append(("  CPUs used then", cpus(w["cpus"]), ""))
        rows.append(("  CPUs used, whole phase", cpus(w["all"]), ""))
    if floor is not None:
        rows.append((f"  the machine's floor at {args.vote_rate:g}/s", f"{pct(floor['lat'], .5):.1f} / {pct(floor['lat'], .99):.1f} ms: the same client and votes "
                     f"against {args.workers} null HTTP server process(es) (no framework, no database)", ""))
    if floor_web is not None:
        rows.append((f"  the web stack's floor at {args.vote_rate:g}/s", f"{pct(floor_web['lat'], .5):.1f} / {pct(floor_web['lat'], .99):.1f} ms, "
                     f"{floor_web['server_cpu'] / max(len(floor_web['lat']), 1) * 1000:.2f} ms CPU/vote: the same against a FastAPI route that only validates "
                     f"the vote's body ({args.workers} uvicorn worker(s))", ""))
    if probe_rec is not None and rate.get("due_lat"):
        first = min(d for d, *_ in rate["due_lat"])
        during = stall_summary(probe_rec, first, max(d + lat for d, lat, *_ in rate["due_lat"]))
        n_slow, in_stalls, chance = slow_votes_in_stalls(rate["due_lat"], during.get("slow", []))
        rows.append(("  the machine during that phase", f"a probe process (0.1-0.2 ms of Python work every 2 ms, nothing shared with the arena): {during['slow_share'] * 100:.1f}% "
                     f"of its runs over 10x their median ({during['p50_ms']:.2f} ms), worst {during['worst']:.0f}x, in {len(during['stretches'])} stretches"
                     + (f" every {during['period_s']:.1f} s (median)" if during["period_s"] else ""), ""))
        rows.append(("  votes over 50 ms in those stretches", f"{in_stalls} of {n_slow} (of the faster votes: {chance * 100:.0f}%)", ""))
    if stalls is not None:
        rows.append(("  the machine alone (quiet, 10 s)", f"the same probe: {stalls['slow_share'] * 100:.1f}% of runs over 10x their median ({stalls['p50_ms']:.2f} ms), "
                     f"worst {stalls['worst']:.0f}x, in {len(stalls['stretches'])} stretches" + (f" every {stalls['period_s']:.1f} s (median)" if stalls["period_s"] else ""), ""))
    if vacuums is not None:
        rows.append(("  autovacuum / autoanalyze", vacuums or "none in this run's schema", ""))
    burst = phases["burst"]
    rows.append(("votes/s, closed-loop burst", f"{len(burst['acked']) / burst['wall']:.0f} (p50 {pct(burst['lat'], .5):.0f} / p99 {pct(burst['lat'], .99):.0f} ms)", ""))
    rows.append(("  CPU per vote in the burst", cpu_note(burst, len(burst["acked"]), "vote"), ""))
    this_flow = early_n / span
    if baseline is not None:
        rows.append((f"battle flow, {baseline['workers']} worker(s)", f"{baseline['early_s']:.1f} battles/s", ""))
        rows.append(("  CPU per battle", cpu_note(baseline["cpu"], baseline["early_n"], "battle"), ""))
    rows.append((f"battle flow, {args.workers} worker(s)", f"{this_flow:.1f} battles/s", ""))
    rows.append(("  CPU per battle", cpu_note(flow_cpu, early_n, "battle"), ""))
    if baseline is not None:
        rows.append((f"flow ratio {args.workers}w / {baseline['workers']}w", f"{this_flow / max(baseline['early_s'], 1e-9):.2f}x", "> 1"))
    rows.append(("vote p50 / p99 in the flow", f"{pct(flow_vote_lat, .5):.0f} / {pct(flow_vote_lat, .99):.0f} ms (create {pct(stats.lat['create'], .5):.0f} / "
                 f"{pct(stats.lat['create'], .99):.0f}, turn {pct(stats.lat['turn'], .5):.0f} / {pct(stats.lat['turn'], .99):.0f})", ""))
    kills = []
    if worker_killed is not None and worker_killed[0]:
        kills.append(f"one worker at t={worker_killed[1]:.0f} s")
    if killed_at is not None:
        kills.append(f"the whole server at t={killed_at:.0f} s (back at t={restarted_at:.0f} s)")
    rows.append(("SIGKILLs", ", ".join(kills) or "none (--no-kill)", ""))
    rows.append(("votes acknowledged / stored", f"{len(stats.acked)} / {n_rows}", ""))
    rows.append(("lost / duplicated", f"{len(lost)} / {dup}", "0 / 0"))
    if limit_result is not None:
        passed, total, secs = limit_result
        rows.append((f"rate limit 20/min, {args.workers} worker(s)", f"{passed} of {total} passed in {secs:.1f} s", "20 (21)"))
    rows.append(("load average 1/5/15 min, start -> end", f"{load_start} -> {load_end} ({os.cpu_count()} cores)", ""))

    print()
    print(f"arena bench: {args.voters} voters, {args.duration:.0f} s flow, workers={args.workers}, db={db.describe()}, "
          f"shared state: {'Redis ' + args.redis if args.redis else 'in-process (one worker)'}")
    print(f"vote commits: SQLite synchronous={vote_synchronous()}" if db.backend == "sqlite" else "vote commits: PostgreSQL (synchronous commit)",
          f"; vote load generator: {'a separate process (raw HTTP/1.1 keep-alive)' if args.vote_client == 'raw' else 'httpx in this process'}"
          + (f"; leaderboard refreshes during the vote phases: {refreshes} (on {args.leaderboard_votes} extra votes)" if args.refresh_every else ""), sep="")
    print("flow rates: the first third of each flow (before any kill), after the same warm-up; CPU per request counts every thread and child "
          "process; services = PostgreSQL + Redis + mock models; other users = the rest of the machine")
    w1, w2 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"| {'measure':<{w1}} | {'value':<{w2}} | target |")
    print(f"|{'-' * (w1 + 2)}|{'-' * (w2 + 2)}|--------|")
    for m, v, t in rows:
        print(f"| {m:<{w1}} | {v:<{w2}} | {t} |")
    if baseline is not None and baseline["errors"]:
        print("baseline client-side errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(baseline["errors"].items())))
    if stats.errors:
        print("client-side errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(stats.errors.items())))
    print(f"data folder: {tmp}")
    return 1 if lost or dup else 0


def limit_phase(args, reg: Path, tmp: Path, port: int) -> tuple[int, int, float]:
    """Step 6: (passed, sent, seconds) for 80 new-battle requests of one session against
    ``--limit battle_session=20``, 8 concurrent, each on a new connection."""
    from concurrent.futures import ThreadPoolExecutor

    srv = Server(args, reg, tmp, port, extra=("--limit", "battle_session=20", "--limit", "battle_ip=0"))
    srv.env["OPENARENA_REDIS_PREFIX"] = f"benchlimit{os.getpid()}:"
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as c:
            r = c.get("/")
            h = {"x-csrf-token": re.search(r'name="csrf-token" content="([0-9a-f]+)"', r.text).group(1)}
            t0 = time.perf_counter()

            def one(_):
                return c.post("/api/battles", json={"mode": "named", "model_a": "bench-model-a", "model_b": "bench-model-b"}, headers=h).status_code

            with ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(one, range(80)))
            secs = time.perf_counter() - t0
    finally:
        srv.stop()
    return codes.count(200), len(codes), secs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--voters", type=int, default=100)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of the flow phase (at most 600)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--db", default="sqlite", help="sqlite (default, in a temporary folder) or a PostgreSQL URL")
    p.add_argument("--redis", default=None, help="Redis URL shared by the workers (required with --workers > 1)")
    p.add_argument("--baseline-workers", type=int, default=0, help="first run the flow phase on this many workers, without kills, for the ratio (0: no baseline)")
    p.add_argument("--burst-per-voter", type=int, default=10, help="battles per voter for the closed-loop vote burst")
    p.add_argument("--vote-rate", type=float, default=300.0, help="votes per second of the open-loop phase")
    p.add_argument("--rate-seconds", type=float, default=10.0, help="length of the open-loop phase (at most 120)")
    p.add_argument("--no-kill", action="store_true", help="do not SIGKILL the server mid-run")
    p.add_argument("--vote-client", choices=("raw", "httpx"), default="raw",
                   help="load generator of the vote phases: raw = a separate process with a minimal HTTP/1.1 client (default); httpx = this process")
    p.add_argument("--no-floor", action="store_true", help="skip the machine's floor (the open loop against null servers) and stall probe")
    p.add_argument("--refresh-every", type=float, default=0.0, help="seconds between two leaderboard refresh requests during the vote phases (0: none)")
    p.add_argument("--leaderboard-votes", type=int, default=0, help="voted battles written before the vote phases, for the leaderboard to work on")
    args = p.parse_args()
    if not (1 <= args.voters <= 1000 and 1 <= args.duration <= 600 and 0 < args.rate_seconds <= 120 and 0 < args.vote_rate <= 5000
            and 0 <= args.leaderboard_votes <= 1_000_000 and (args.refresh_every == 0 or args.refresh_every >= 1)):
        p.error("--voters in 1..1000, --duration in 1..600, --rate-seconds in (0, 120], --vote-rate in (0, 5000], "
                "--leaderboard-votes in 0..1000000, --refresh-every 0 or >= 1")
    if max(args.workers, args.baseline_workers) > 1 and not args.redis:
        p.error("--workers > 1 needs --redis URL (the workers share their rate limits and counters there)")
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
