"""State the worker processes of one arena share: rate limits and counters.

:class:`SharedState` is the small protocol the routes use; two implementations:

- :class:`RedisState` (``openarena serve --redis URL`` / ``OPENARENA_REDIS_URL``): every worker
  (and every server behind the same proxy) sees the same buckets and counters. Each operation
  is one atomic round trip: rate limits are a Lua script (all buckets of a request checked and
  taken together, timed by the Redis server's clock ``TIME``, so workers on several hosts
  agree), counters are ``INCRBY`` + ``EXPIRE`` in a ``MULTI`` transaction. Redis needs no
  persistence: after a Redis restart the buckets start full and the sampler's vote counts are
  re-seeded from the database at the next leaderboard refresh.
- :class:`LocalState`: the same semantics in this process's memory; only valid with one worker
  (``openarena serve`` refuses ``--workers N > 1`` without Redis).

Rate limits are token buckets (:meth:`SharedState.hit`): a bucket holds at most ``limit``
tokens (a burst of one window's allowance) and refills continuously at ``limit / window_s``
tokens per second; a request takes one token from each of its buckets, or none if any is
empty. So "20 per minute" lets 20 requests through at once, then one every 3 s.

Counters (:meth:`SharedState.incr`, :meth:`get_many`, :meth:`raise_to`) are integers with an
optional time to live, e.g. per-voter daily vote counts (``voter:<hash>:votes:<day>``, a TTL of
two days) or the per-model vote counts the pair sampler balances on
(:class:`openarena.serving.sampling.SharedVoteCounts`).

Keys are namespaced with ``prefix`` (default ``openarena:``), so several arenas (or test runs)
can share one Redis. Failures of Redis raise :class:`SharedStateError` (the routes answer 503:
a request is refused rather than let through unlimited).

Source: the token bucket as in the previous in-process limiter (and e.g. redis-cell, Stripe's
"Scaling your API with rate limiters"); Redis scripting is atomic (EVAL/EVALSHA run alone).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Mapping, Protocol, Sequence

from openarena.errors import OpenArenaError

__all__ = ["LocalState", "RedisState", "SharedState", "SharedStateError", "check_redis", "open_shared_state", "redact_redis"]

ENV_REDIS_URL = "OPENARENA_REDIS_URL"
ENV_REDIS_PREFIX = "OPENARENA_REDIS_PREFIX"
DEFAULT_PREFIX = "openarena:"


class SharedStateError(OpenArenaError):
    """The shared state (Redis) cannot be reached or answered with an error."""


class SharedState(Protocol):
    """What the routes need from state shared by every worker.

    ``limits`` items are ``(key, limit, window_s)``: a bucket of at most ``limit`` tokens
    refilled at ``limit / window_s`` per second (``limit <= 0``: no limit).
    """

    kind: str  #: 'redis' or 'local'

    async def hit(self, limits: Sequence[tuple[str, float, float]]) -> float:
        """Take one token from every bucket of ``limits``, atomically (all or none).
        Returns: 0.0 if taken, else the seconds until every bucket holds a token again."""
        ...

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        """Add ``amount`` to counter ``key`` (created at 0), (re)set its time to live when
        ``ttl_s`` is given; returns the new value."""
        ...

    async def incr_many(self, keys: Sequence[str], amount: int = 1) -> None:
        """Add ``amount`` to each counter of ``keys`` (one round trip; no time to live)."""
        ...

    async def incr_each(self, amounts: Mapping[str, int]) -> None:
        """Add to each counter (key -> amount, ints) its amount (one round trip; no time to live).
        Raises: SharedStateError when the shared state cannot be reached (nothing is added)."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[int]:
        """The counters' values (0 for a missing key), in the order of ``keys``."""
        ...

    async def raise_to(self, values: Mapping[str, int]) -> None:
        """Set each counter to max(its value, the given value), atomically per call."""
        ...

    async def ping(self) -> bool:
        """True if the state answers (``/healthz``)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


# ---------------------------------------------------------------------------------------------
# In process


class LocalState:
    """:class:`SharedState` in this process's memory (one worker only). Thread-safe; ``clock``
    (seconds, monotonic) can be replaced in tests."""

    kind = "local"

    def __init__(self, prefix: str = DEFAULT_PREFIX, clock=time.monotonic) -> None:
        self.prefix = prefix
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._counters: dict[str, tuple[int, float | None]] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def hit_now(self, limits: Sequence[tuple[str, float, float]], now: float | None = None) -> float:
        """:meth:`hit`, synchronously (at time ``now``, default the clock)."""
        now = self.clock() if now is None else now
        active = [(k, float(n), float(w)) for k, n, w in limits if n > 0]
        with self._lock:
            state, wait = [], 0.0
            for key, cap, window in active:
                rate = cap / window
                tokens, last = self._buckets.get(key, (cap, now))
                tokens = min(cap, tokens + max(0.0, now - last) * rate)
                state.append((key, tokens))
                if tokens < 1.0:
                    wait = max(wait, (1.0 - tokens) / rate)
            for key, tokens in state:
                self._buckets[key] = (tokens - 1.0 if wait == 0 else tokens, now)
            if now - self._last_sweep > 300:
                self._sweep(now)
        return wait

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for k in [k for k, (_, last) in self._buckets.items() if now - last > 3600]:
            del self._buckets[k]
        for k in [k for k, (_, exp) in self._counters.items() if exp is not None and exp < now]:
            del self._counters[k]

    def _value(self, key: str, now: float) -> int:
        v, exp = self._counters.get(key, (0, None))
        return 0 if exp is not None and exp < now else v

    async def hit(self, limits: Sequence[tuple[str, float, float]]) -> float:
        return self.hit_now(limits)

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        now = self.clock()
        with self._lock:
            v = self._value(key, now) + int(amount)
            old_exp = self._counters.get(key, (0, None))[1]
            self._counters[key] = (v, now + ttl_s if ttl_s is not None else old_exp)
        return v

    async def incr_many(self, keys: Sequence[str], amount: int = 1) -> None:
        for k in keys:
            await self.incr(k, amount)

    async def incr_each(self, amounts: Mapping[str, int]) -> None:
        for k, n in amounts.items():
            await self.incr(k, n)

    async def get_many(self, keys: Sequence[str]) -> list[int]:
        now = self.clock()
        with self._lock:
            return [self._value(k, now) for k in keys]

    async def raise_to(self, values: Mapping[str, int]) -> None:
        now = self.clock()
        with self._lock:
            for k, v in values.items():
                if int(v) > self._value(k, now):
                    self._counters[k] = (int(v), self._counters.get(k, (0, None))[1])

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None

    def describe(self) -> str:
        return "in-process (one worker)"


# ---------------------------------------------------------------------------------------------
# Redis

# KEYS: the buckets; ARGV: limit_1, window_1, limit_2, window_2, ... Returns the wait in
# seconds as a string (a Lua number would be truncated to an integer in the reply).
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local tokens = {}
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[2 * i - 1])
  local rate = cap / tonumber(ARGV[2 * i])
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tk = tonumber(v[1]) or cap
  local ts = tonumber(v[2]) or now
  if now > ts then tk = math.min(cap, tk + (now - ts) * rate) end
  tokens[i] = tk
  if tk < 1 then wait = math.max(wait, (1 - tk) / rate) end
end
for i, key in ipairs(KEYS) do
  local tk = tokens[i]
  if wait == 0 then tk = tk - 1 end
  redis.call('HSET', key, 'tokens', tostring(tk), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2 * i]) * 1000) + 1000)
end
return tostring(wait)
"""

# KEYS: counters; ARGV: their floors. SET key max(GET key, floor), keeping any TTL.
_RAISE = """
for i, key in ipairs(KEYS) do
  local v = tonumber(redis.call('GET', key)) or 0
  local floor = tonumber(ARGV[i])
  if floor > v then redis.call('SET', key, floor, 'KEEPTTL') end
end
return 0
"""


class RedisState:
    """:class:`SharedState` in Redis (redis-py's asyncio client, one connection pool per
    process and event loop).

    Parameters: url (``redis://[:password@]host:port/db``, ``rediss://`` for TLS,
    ``unix:///path``); prefix of every key; timeout_s for connecting, for each command and for
    a free connection of the pool; max_connections per process and event loop (a request
    holds one for one round trip, ~0.1 ms, so 32 serve thousands of requests a second).
    """

    kind = "redis"

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX, timeout_s: float = 2.0, max_connections: int = 32) -> None:
        self.url = url
        self.max_connections = max_connections
        self.prefix = prefix
        self.timeout_s = timeout_s
        # per event loop (a redis.asyncio connection belongs to one loop): (client, hit, raise_to)
        self._clients: dict[int, tuple] = {}
        self._lock = threading.Lock()

    def _conn(self) -> tuple:
        """(client, hit script, raise_to script) of the running event loop, created on first use."""
        import asyncio

        import redis.asyncio as aioredis

        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.get(id(loop))
            if entry is None:
                # a bounded pool that waits for a free connection (up to timeout_s) rather than
                # failing at once when a burst of requests wants more (redis-py's default pool
                # raises MaxConnectionsError past 100)
                pool = aioredis.BlockingConnectionPool.from_url(self.url, max_connections=self.max_connections, timeout=self.timeout_s,
                                                                socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s,
                                                                health_check_interval=30, decode_responses=True)
                c = aioredis.Redis(connection_pool=pool)
                entry = self._clients[id(loop)] = (c, c.register_script(_HIT), c.register_script(_RAISE))
        return entry

    def _client(self):
        return self._conn()[0]

    def _error(self, e: Exception) -> SharedStateError:
        return SharedStateError(f"Redis at {redact_redis(self.url)} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))

    async def hit(self, limits: Sequence[tuple[str, float, float]]) -> float:
        active = [(k, float(n), float(w)) for k, n, w in limits if n > 0]
        if not active:
            return 0.0
        args: list[str] = []
        for _, n, w in active:
            args += [repr(n), repr(w)]
        try:
            _, script, _ = self._conn()
            res = await script(keys=[self.prefix + "rl:" + k for k, _, _ in active], args=args)
        except Exception as e:  # noqa: BLE001 - any failure of Redis: the caller refuses the request
            raise self._error(e) from None
        wait = float(res)
        return wait if math.isfinite(wait) else 0.0

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        try:
            c = self._client()
            async with c.pipeline(transaction=True) as pipe:
                pipe.incrby(self.prefix + key, int(amount))
                if ttl_s is not None:
                    pipe.pexpire(self.prefix + key, max(1, int(ttl_s * 1000)))
                res = await pipe.execute()
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None
        return int(res[0])

    async def incr_many(self, keys: Sequence[str], amount: int = 1) -> None:
        if not keys:
            return
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                for k in keys:
                    pipe.incrby(self.prefix + k, int(amount))
                await pipe.execute()
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None

    async def incr_each(self, amounts: Mapping[str, int]) -> None:
        if not amounts:
            return
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                for k, n in amounts.items():
                    pipe.incrby(self.prefix + k, int(n))
                await pipe.execute()
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None

    async def get_many(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        try:
            res = await self._client().mget([self.prefix + k for k in keys])
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None
        return [int(v) if v is not None else 0 for v in res]

    async def raise_to(self, values: Mapping[str, int]) -> None:
        if not values:
            return
        try:
            _, _, script = self._conn()
            await script(keys=[self.prefix + k for k in values], args=[int(v) for v in values.values()])
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None

    async def ping(self) -> bool:
        try:
            return bool(await self._client().ping())
        except Exception:  # noqa: BLE001
            return False

    async def aclose(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.pop(id(loop), None)
        if entry is not None:
            await entry[0].aclose()
            await entry[0].connection_pool.disconnect()  # a pool we made: the client does not close it

    def describe(self) -> str:
        """Where the shared state lives, for the start-up line: the URL without its password
        and the key prefix (two arenas on one Redis must not share it)."""
        return f"Redis at {redact_redis(self.url)}, key prefix {self.prefix!r}"


def redact_redis(url: str) -> str:
    """``url`` without its password, whether in the address (``redis://:***@host:6379/0``) or
    in the query string (``?password=***``, which redis-py also reads); an IPv6 host keeps its
    brackets."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "redis://?"
    if parts.password is not None:
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k.lower() == "password" for k, _ in query):
        parts = parts._replace(query=urlencode([(k, "***" if k.lower() == "password" else v) for k, v in query], safe="*"))
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def check_redis(url: str, timeout_s: float = 3.0) -> None:
    """Connect to ``url`` and PING it, synchronously (before the server starts).

    Raises: SharedStateError with one line (bad URL, unreachable, authentication refused, or
    redis-py missing).
    """
    try:
        import redis
    except ImportError:  # pragma: no cover - a dependency
        raise SharedStateError("the Redis client is not installed: pip install redis") from None
    try:
        c = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    except ValueError as e:
        raise SharedStateError(f"invalid Redis URL {redact_redis(url)!r}: {e} (expected redis://HOST:PORT/DB)") from None
    try:
        c.ping()
    except Exception as e:  # noqa: BLE001
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SharedStateError(f"cannot reach Redis at {redact_redis(url)}: {first}") from None
    finally:
        c.close()


def open_shared_state(url: str | None, *, workers: int = 1, prefix: str = DEFAULT_PREFIX) -> LocalState | RedisState:
    """The shared state of a server: Redis at ``url`` if given, else in-process memory.

    Raises: SharedStateError when ``workers > 1`` and no URL is given (each worker would then
    enforce its own limits: N workers would allow N times each limit).
    """
    if url:
        return RedisState(url, prefix=prefix)
    if workers > 1:
        raise SharedStateError(
            f"--workers {workers} needs Redis for the rate limits and counters the workers share: "
            "pass --redis redis://HOST:6379/0 (or set OPENARENA_REDIS_URL), or run one worker"
        )
    return LocalState(prefix=prefix)
