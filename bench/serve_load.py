"""Load test of the web arena, run by hand (bounded in time, loopback only):

    .venv/bin/python bench/serve_load.py [--voters 100] [--duration 60] [--workers 1] [--db sqlite|URL]

What it does:

1. starts the mock OpenAI server (a subprocess, ``python -m openarena.providers.mock_server``)
   with four fast models (short answers streamed in 6 chunks) and the arena
   (``openarena serve --no-rate-limits``, its own process group) on 127.0.0.1;
2. runs ``--voters`` simulated voters for ``--duration`` seconds: each opens the page once
   (session cookie + CSRF token), then loops: new battle -> one streamed turn -> vote;
3. at half time SIGKILLs the whole server (every worker) and restarts it; voters retry with
   their cookies (the secret key is kept in the data folder) until it answers again;
4. the vote endpoint alone (the figure the >= 300 votes/s target is about): battles ready for
   a vote are written into the database for each voter's session, then (a) a closed-loop burst,
   every voter voting as fast as it can (the most votes/s), and (b) an open loop, votes sent at
   ``--vote-rate`` per second (latency at that rate);
5. checks the database: every vote acknowledged to a voter (HTTP 200) is there with the same
   winner, and no battle has two votes.

Prints battles/s, votes/s, p50/p99 latency per request kind, and lost/duplicated counts.
Targets: >= 300 votes/s on SQLite, p99 < 100 ms for the vote request, 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
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

import httpx

from openarena.serving.sessions import COOKIE, SessionManager, voter_hash
from openarena.storage import Database
from openarena.storage.battles import acquire_turn, create_battle, finish_turn

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
WINNERS = ["model_a", "model_b", "tie", "tie (bothbad)"]

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


class Stats:
    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.acked: dict[str, str] = {}  # battle_id -> winner acknowledged
        self.double_acks = 0
        self.battles = 0

    def add(self, kind: str, seconds: float) -> None:
        self.lat[kind].append(seconds)


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


class Voter:
    def __init__(self, url: str, stats: Stats, seed: int) -> None:
        self.url, self.stats = url, stats
        self.rng = random.Random(seed)
        self.client = httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, connect=5), limits=httpx.Limits(max_connections=2))
        self.headers: dict[str, str] = {}

    async def open(self) -> None:
        while True:
            try:
                r = await self.client.get("/")
                self.headers = {"x-csrf-token": re.search(r'name="csrf-token" content="([0-9a-f]+)"', r.text).group(1)}
                return
            except (httpx.HTTPError, AttributeError):
                await asyncio.sleep(0.2)

    async def _post(self, kind: str, path: str, body: dict, stream: bool = False):
        """POST with retries while the server is down; returns the response (read) or None."""
        for _ in range(200):
            t0 = time.perf_counter()
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
        return bid

    async def vote(self, bid: str) -> None:
        winner = self.rng.choice(WINNERS)
        r = await self._post("vote", f"/api/battles/{bid}/vote", {"winner": winner})
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
    def __init__(self, args, registry: Path, data: Path, port: int) -> None:
        self.cmd = [str(BIN / "openarena"), "serve", "--registry", str(registry), "--port", str(port), "--host", HOST,
                    "--no-rate-limits", "--leaderboard-interval", "3600", "--workers", str(args.workers), "--data-dir", str(data)]
        if args.db != "sqlite":
            self.cmd += ["--db", args.db]
        self.url = f"http://{HOST}:{port}"
        self.proc: subprocess.Popen | None = None
        self.log = open(data / "server.log", "ab")

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=self.log, start_new_session=True, cwd=ROOT)
        wait_http(self.url + "/healthz")

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


async def main_async(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="openarena-bench-"))
    (tmp / "behaviours.yaml").write_text(BEHAVIOURS)
    mport, aport = free_port(), free_port()
    mock = subprocess.Popen([sys.executable, "-m", "openarena.providers.mock_server", "--host", HOST, "--port", str(mport), "--config", str(tmp / "behaviours.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reg = tmp / "models.yaml"
    reg.write_text("defaults: {base_url: 'http://%s:%d/v1', timeout_s: 10}\nmodels:\n" % (HOST, mport)
                   + "".join(f"  - {{name: bench-model-{k}, model_id: bench-{k}}}\n" for k in "abcd"))
    server = Server(args, reg, tmp, aport)
    stats = Stats()
    try:
        wait_http(f"http://{HOST}:{mport}/v1/models")
        server.start()
        voters = [Voter(server.url, stats, i) for i in range(args.voters)]
        t0 = time.monotonic()
        deadline = t0 + args.duration
        tasks = [asyncio.create_task(v.run(deadline)) for v in voters]
        kill_at = t0 + args.duration / 2
        killed_at = restarted_at = None
        if not args.no_kill:
            await asyncio.sleep(max(0.0, kill_at - time.monotonic()))
            acked_before = len(stats.acked)
            server.kill()
            killed_at = time.monotonic() - t0
            await asyncio.sleep(1.0)
            await asyncio.to_thread(server.start)
            restarted_at = time.monotonic() - t0
        await asyncio.gather(*tasks)
        flow_s = time.monotonic() - t0
        flow_battles, flow_votes = stats.battles, len(stats.acked)
        flow_vote_lat = list(stats.lat["vote"])

        # The vote endpoint alone. Battles ready for a vote are written straight into the
        # database for each voter's session (the streamed turns of the flow phase would take
        # minutes to prepare thousands); the votes then go through HTTP like any other.
        db = Database.open(None if args.db == "sqlite" else args.db, tmp, run_migrations=False)
        secret = (tmp / "secret.key").read_text().strip().encode()
        sessions = SessionManager(secret)
        judges = {}
        for v in voters:
            raw = v.client.cookies.get(COOKIE)
            sid = sessions._signer.loads(raw)
            judges[v] = voter_hash(secret, sid)
        conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "The answer is forty-two."}]

        def prepare_in_db(n_per_voter: int) -> list[tuple[Voter, str]]:
            out = []
            for _ in range(n_per_voter):
                for v in voters:
                    bid = create_battle(db, mode="anony", model_a="bench-model-a", model_b="bench-model-b", session_hash=judges[v], sampling_policy="fastchat", sampling_prob=1 / 6)
                    acquire_turn(db, bid, judges[v])
                    finish_turn(db, bid, conversation_a=conv, conversation_b=conv, turns=1)
                    out.append((v, bid))
            return out

        # (a) closed loop: every voter votes as fast as it can -> the most votes/s
        prepared = await asyncio.to_thread(prepare_in_db, args.burst_per_voter)
        n_before = len(stats.acked)
        stats.lat["vote"] = []
        by_voter: dict[Voter, list[str]] = defaultdict(list)
        for v, bid in prepared:
            by_voter[v].append(bid)

        async def vote_all(v: Voter, bids: list[str]) -> None:
            for bid in bids:
                await v.vote(bid)

        tb = time.perf_counter()
        await asyncio.gather(*[vote_all(v, b) for v, b in by_voter.items()])
        burst_s = time.perf_counter() - tb
        burst_votes = len(stats.acked) - n_before
        burst_lat = list(stats.lat["vote"])

        # (b) open loop: votes arrive at --vote-rate per second, whatever the answers take
        n_rate = int(args.vote_rate * args.rate_seconds)
        prepared = await asyncio.to_thread(prepare_in_db, -(-n_rate // len(voters)))
        prepared = prepared[:n_rate]
        n_before = len(stats.acked)
        stats.lat["vote"] = []
        tr = time.perf_counter()
        pending = []
        for i, (v, bid) in enumerate(prepared):
            delay = tr + i / args.vote_rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(v.vote(bid)))
        await asyncio.gather(*pending)
        rate_s = time.perf_counter() - tr
        rate_votes = len(stats.acked) - n_before
        rate_lat = list(stats.lat["vote"])
        db.dispose()
        for v in voters:
            await v.client.aclose()
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

    print()
    print(f"arena bench: {args.voters} voters, {args.duration:.0f} s flow, workers={args.workers}, db={db.describe()}")
    if killed_at is not None:
        print(f"server SIGKILLed at t={killed_at:.1f} s (votes acknowledged before: {acked_before}), back at t={restarted_at:.1f} s")
    print(f"{'phase':<12}{'battles/s':>11}{'votes/s':>10}{'vote p50 ms':>13}{'vote p99 ms':>13}{'votes':>8}")
    print(f"{'flow':<12}{flow_battles / flow_s:>11.1f}{flow_votes / flow_s:>10.1f}{pct(flow_vote_lat, .5):>13.1f}{pct(flow_vote_lat, .99):>13.1f}{flow_votes:>8}")
    print(f"{'vote burst':<12}{'':>11}{burst_votes / burst_s:>10.1f}{pct(burst_lat, .5):>13.1f}{pct(burst_lat, .99):>13.1f}{burst_votes:>8}")
    print(f"{'vote @' + format(args.vote_rate, 'g') + '/s':<12}{'':>11}{rate_votes / rate_s:>10.1f}{pct(rate_lat, .5):>13.1f}{pct(rate_lat, .99):>13.1f}{rate_votes:>8}")
    print(f"{'request':<12}{'p50 ms':>11}{'p99 ms':>10}{'n':>13}")
    for kind in ("create", "turn"):
        xs = stats.lat[kind]
        print(f"{kind:<12}{pct(xs, .5):>11.1f}{pct(xs, .99):>10.1f}{len(xs):>13}")
    print(f"acknowledged votes: {len(stats.acked)}; rows in votes: {n_rows}; lost: {len(lost)}; duplicated: {dup}")
    if stats.errors:
        print("client-side errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(stats.errors.items())))
    print(f"data folder: {tmp}")
    return 1 if lost or dup else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--voters", type=int, default=100)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of the flow phase (at most 600)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--db", default="sqlite", help="sqlite (default, in a temporary folder) or a PostgreSQL URL")
    p.add_argument("--burst-per-voter", type=int, default=10, help="battles per voter for the closed-loop vote burst")
    p.add_argument("--vote-rate", type=float, default=300.0, help="votes per second of the open-loop phase")
    p.add_argument("--rate-seconds", type=float, default=10.0, help="length of the open-loop phase (at most 120)")
    p.add_argument("--no-kill", action="store_true", help="do not SIGKILL the server mid-run")
    args = p.parse_args()
    if not (1 <= args.voters <= 1000 and 1 <= args.duration <= 600 and 0 < args.rate_seconds <= 120 and 0 < args.vote_rate <= 5000):
        p.error("--voters in 1..1000, --duration in 1..600, --rate-seconds in (0, 120], --vote-rate in (0, 5000]")
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
