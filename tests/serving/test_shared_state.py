"""The state workers share (:mod:`openarena.serving.shared_state`): the same semantics in Redis
(a real server, see tests/serving/redis_server.py) and in process; the sampler's shared vote
counts; what the arena does when Redis fails; the secret every worker agrees on."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from openarena.serving.config import SecretError, ServeSettings, load_secret
from openarena.serving.sampling import PairSampler, SharedVoteCounts
from openarena.serving.shared_state import LocalState, RedisState, SharedStateError, check_redis, open_shared_state
from tests.serving.helpers import open_session
from tests.serving.redis_server import fresh_prefix, redis_url  # noqa: F401


@pytest.fixture(params=["local", "redis"])
def shared(request):
    if request.param == "local":
        return LocalState(prefix=fresh_prefix())
    return RedisState(request.getfixturevalue("redis_url"), prefix=fresh_prefix())


def run(coro):
    return asyncio.run(coro)


def test_buckets_counters_and_floors(shared):
    async def go():
        lim = [("vote_ip:1.2.3.4", 3, 60.0), ("vote_session:s", 10, 60.0)]
        got = [await shared.hit(lim) for _ in range(4)]
        assert got[:3] == [0.0, 0.0, 0.0] and 19.0 < got[3] <= 20.0  # one token per 20 s
        # all or nothing: the refused request took no token from the session's bucket
        assert [await shared.hit([("vote_session:s", 10, 60.0)]) for _ in range(7)] == [0.0] * 7
        assert await shared.hit([("vote_session:s", 10, 60.0)]) > 0
        assert await shared.hit([("off", 0, 60.0)]) == 0.0
        assert await shared.incr("c") == 1 and await shared.incr("c", 5, ttl_s=60) == 6
        await shared.raise_to({"c": 4, "d": 9})
        assert await shared.get_many(["c", "d", "missing"]) == [6, 9, 0]
        assert await shared.ping()
        await shared.aclose()

    run(go())


def test_the_start_up_line_names_redis_without_its_password_and_with_the_key_prefix():
    state = RedisState("redis://:hunter2@127.0.0.1:6379/3", prefix="arena-a:")
    assert state.describe() == "Redis at redis://:***@127.0.0.1:6379/3, key prefix 'arena-a:'"
    assert LocalState(prefix="p:").describe() == "in-process (one worker)"
    from openarena.serving.shared_state import redact_redis

    # redis-py also reads a password from the query string; an IPv6 host keeps its brackets
    assert redact_redis("redis://127.0.0.1:6379/0?password=hunter2&db=1") == "redis://127.0.0.1:6379/0?password=***&db=1"
    assert redact_redis("redis://user:hunter2@[::1]:6379/0") == "redis://user:***@[::1]:6379/0"
    assert redact_redis("redis://[::1]:6379/0") == "redis://[::1]:6379/0"
    assert redact_redis("redis://:pw@h:99999999/0") == "redis://:***@h:99999999/0"  # a bad port is the caller's error to report


def test_a_counter_expires(shared):
    async def go():
        await shared.incr("short", ttl_s=0.05)
        await asyncio.sleep(0.3)
        assert await shared.get_many(["short"]) == [0]
        await shared.aclose()

    if isinstance(shared, LocalState):  # the local clock is ours to move
        t = [0.0]
        shared.clock = lambda: t[0]
        run(shared.incr("short", ttl_s=10))
        t[0] = 11
        assert run(shared.get_many(["short"])) == [0]
    else:
        run(go())


def test_concurrent_hits_take_exactly_the_limit(redis_url):  # noqa: F811
    """Eight threads, each with its own event loop and connection (like workers), 80 requests
    against a bucket of 20: exactly 20 pass (the refill in these milliseconds is < 1 token)."""
    state = RedisState(redis_url, prefix=fresh_prefix())

    def worker(_):
        async def go():
            out = [await state.hit([("battle_session:x", 20, 3600.0)]) == 0.0 for _ in range(10)]
            await state.aclose()
            return out

        return asyncio.run(go())

    with ThreadPoolExecutor(8) as pool:
        results = [ok for chunk in pool.map(worker, range(8)) for ok in chunk]
    assert sum(results) == 20


def test_vote_counts_are_shared_between_workers(redis_url):  # noqa: F811
    prefix = fresh_prefix()
    models = ["a", "b", "c"]
    w1 = SharedVoteCounts(RedisState(redis_url, prefix=prefix), models)
    w2 = SharedVoteCounts(RedisState(redis_url, prefix=prefix), models)

    async def go():
        w1.seed({"a": 10, "b": 3, "zzz": 5})  # the database's counts at a refresh of worker 1
        assert await w1.read() == {"a": 10, "b": 3, "c": 0}
        await w2.add_vote("a", "c")  # a vote recorded by worker 2
        assert await w1.read() == {"a": 11, "b": 3, "c": 1}
        w2.seed({"a": 9, "b": 4})  # an older refresh never lowers a count
        assert await w2.read() == {"a": 11, "b": 4, "c": 1}
        for w in (w1, w2):
            await w.shared.aclose()

    run(go())


def test_vote_counts_added_soon_are_sent_together(redis_url):  # noqa: F811
    prefix = fresh_prefix()
    w = SharedVoteCounts(RedisState(redis_url, prefix=prefix), ["a", "b", "c"])

    async def go():
        w.add_vote_soon("a", "b")
        w.add_vote_soon("a", "zzz")  # a model the sampler does not know: not counted
        assert await w.read() == {"a": 0, "b": 0, "c": 0}  # not sent yet
        await w._flusher  # the one task that sends them
        assert await w.read() == {"a": 2, "b": 1, "c": 0}
        w.add_vote_soon("c", "b")
        await w.flush()  # sent at once
        assert await w.read() == {"a": 2, "b": 2, "c": 1}
        await w._flusher  # nothing left to send
        assert await w.read() == {"a": 2, "b": 2, "c": 1}
        await w.shared.aclose()

    run(go())


def test_the_sampler_boost_follows_shared_counts():
    s = PairSampler([("a", 1.0, 5), ("b", 1.0, None), ("c", 1.0, None)])
    boosted = s.pair_matrix()
    assert boosted[0, 1] > boosted[1, 2]  # a is below its target of 5 votes: boosted
    s.observe({"a": 5})
    even = s.pair_matrix()
    assert even[0, 1] == pytest.approx(even[1, 2])
    s.observe({"a": 1})  # lower counts from elsewhere never undo a count
    assert s.votes["a"] == 5


def _dead_redis() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_without_redis_requests_are_refused_plainly_and_healthz_fails(arena_factory):
    live = arena_factory(redis_url=_dead_redis())
    with live.client() as c:
        assert c.get("/healthz").status_code == 503
        h = open_session(c)
        r = c.post("/api/battles", json={"mode": "anony"}, headers=h)
        assert r.status_code == 503 and r.json()["code"] == "unavailable"
        assert "try again" in r.json()["error"] and "redis" not in r.text.lower()


def test_configuration_errors():
    with pytest.raises(SharedStateError, match="--redis"):
        open_shared_state(None, workers=2)
    assert isinstance(open_shared_state(None, workers=1), LocalState)
    with pytest.raises(SharedStateError, match="cannot reach Redis"):
        check_redis(_dead_redis(), timeout_s=1)
    with pytest.raises(SharedStateError, match="invalid Redis URL"):
        check_redis("http://nope")


def test_the_secret(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("OPENARENA_SECRET", raising=False)
    monkeypatch.delenv("OPENARENA_SECRET_KEY", raising=False)
    with pytest.raises(SecretError, match="at least 32"):
        load_secret(ServeSettings(secret_key="short"), None)
    f = tmp_path / "secret"
    f.write_text("x" * 40 + "\n")
    f.chmod(0o600)
    with caplog.at_level("WARNING", logger="openarena.serving"):
        assert load_secret(ServeSettings(secret_file=str(f)), None) == b"x" * 40
        assert not caplog.records
        f.chmod(0o644)  # readable by others: still used, with a warning saying why and what to do
        assert load_secret(ServeSettings(secret_file=str(f)), None) == b"x" * 40
    assert [r.getMessage() for r in caplog.records] == [f"--secret-file {f} can be read by other users (mode 644): whoever reads it can forge sessions; chmod 600 it"]
    with pytest.raises(SecretError, match="cannot read"):
        load_secret(ServeSettings(secret_file=str(tmp_path / "missing")), None)
    monkeypatch.setenv("OPENARENA_SECRET", "y" * 32)
    assert load_secret(ServeSettings(secret_file=str(f)), None) == b"y" * 32


def test_a_vote_on_one_worker_moves_the_counts_another_samples_on(arena_factory, redis_url):  # noqa: F811
    """Two app processes' states (two workers) on one Redis: a counted anonymous vote recorded
    by the first is in the vote counts the second's sampler balances on before its next draw."""
    from tests.serving.helpers import new_battle, play

    prefix = fresh_prefix()
    w1 = arena_factory(redis_url=redis_url, redis_prefix=prefix)
    w2 = arena_factory(redis_url=redis_url, redis_prefix=prefix)
    with w1.client() as c:
        res = play(c, open_session(c), winner="model_a")
    assert res["counted"] is True
    assert w2.state.sampler.votes.get(res["model_a"], 0) == 0
    with w2.client() as c:
        new_battle(c, open_session(c))
    assert w2.state.sampler.votes[res["model_a"]] == 1 and w2.state.sampler.votes[res["model_b"]] == 1


def test_redis_never_holds_a_client_address_in_clear(arena_factory, redis_url):  # noqa: F811
    """The rate-limit buckets in Redis are keyed by a keyed hash of the client's address (the
    About page promises the address is never stored in clear)."""
    import redis

    from tests.serving.helpers import play

    prefix = fresh_prefix()
    live = arena_factory(redis_url=redis_url, redis_prefix=prefix)
    with live.client() as c:
        play(c, open_session(c), winner="model_a")
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(match=prefix + "*")]
    assert any("vote_ip" in k for k in keys) and any("battle_ip" in k for k in keys), keys
    assert not [k for k in keys if "127.0.0.1" in k], keys


class _SlowIncr:
    """A shared state whose incr_each waits for ``release`` (a flush in flight)."""

    def __init__(self, inner):
        self.inner = inner
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def incr_each(self, amounts):
        self.started.set()
        await self.release.wait()
        await self.inner.incr_each(amounts)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_votes_added_while_a_flush_is_in_flight_are_sent_too():
    async def go():
        slow = _SlowIncr(LocalState(prefix=fresh_prefix()))
        w = SharedVoteCounts(slow, ["a", "b", "c"])
        w.add_vote_soon("a", "b")
        await slow.started.wait()  # the flusher is sending a and b
        w.add_vote_soon("c", "b")  # no second task: the first is still running
        slow.release.set()
        await w._flusher  # goes round again for c's vote (was: left unsent until the next vote)
        assert await w.read() == {"a": 1, "b": 2, "c": 1}

        # shutdown: flush() waits for the flush in flight, then sends the rest
        slow.release.clear()
        slow.started.clear()
        w.add_vote_soon("a")
        await slow.started.wait()
        w.add_vote_soon("c")
        asyncio.get_running_loop().call_later(0.01, slow.release.set)
        await w.flush()
        assert await w.read() == {"a": 2, "b": 2, "c": 2}

    run(go())
