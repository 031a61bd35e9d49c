"""The leaderboard the web page shows: recomputed on a schedule and on demand, in a background
thread, and served from memory. A page view never fits anything.

One recomputation (:meth:`LeaderboardCache.refresh`) goes through the public pipeline
(:mod:`openarena.api`, as ``openarena leaderboard db`` does): it reads the counted anonymous
votes, tags the cheap rule categories (coding, math, multiturn) and adds the style features
(:func:`openarena.api.prepare`), and builds, for each category with enough votes, the
Bradley-Terry leaderboard with sandwich intervals with and without style control
(:func:`openarena.api.leaderboard`), plus its whisker plot of every model. Models without a
finite rating yet are listed as "not enough votes"; a board that cannot be fitted at all
carries a plain message for visitors (the details go to the server log, never to the page). The result also feeds the pair sampler (votes per model for
the new-model boost; pair counts and ratings for the active policy). With trust options (the
app passes them), the same refresh computes the Trust page's figures from the same votes
(:func:`openarena.serving.trust.compute_trust` through :func:`openarena.api.trust_report`;
about 10 s of CPU more per refresh for 10,000 votes of 55 models, mostly the drift fits).
Every arena (text, vision, code) has its own snapshot, computed in the same refresh.

Where it runs: by default in a child process (``spawn``, started on the first refresh and kept,
``nice`` 10), which opens the database itself and sends back the finished snapshot. A
recomputation is seconds of pure-Python work holding the GIL (23,000 votes: ~6 s of CPU, mostly
category tagging, style features and JSON decoding); run in a thread of the server it stalls
the event loop, so votes and battles wait behind it (measured: one refresh during 300 votes/s
raised the vote p99 from tens of milliseconds to 2 s). In the child it only competes for a CPU
core, at a lower priority than the server. ``process=False`` (or an in-memory SQLite database)
computes in the calling thread instead. The child costs the memory of one more Python process
with numpy/pandas/matplotlib loaded (320 MB of RSS measured with 23,000 votes). If the
child cannot start or dies, that refresh runs in the thread; if it never started (spawn cannot
re-import ``__main__``), every later one does too.

Several workers (``openarena serve --workers N --redis URL``): one worker recomputes, the others
read its result. Each worker's cache is given a :class:`SharedBoard` (Redis); the workers elect
a leader with a lease (``SET NX PX``, renewed by its holder; a killed leader's lease expires and
another worker takes over). Only the leader recomputes (on schedule, and when any worker was
asked for a refresh: that worker records the request in Redis) and publishes the snapshot there
as JSON (plots base64, no pickle: nothing read from Redis is executed); the followers poll one
small key about once a second and load a newer snapshot when there is one. So N workers cost one
recomputation per interval and one leaderboard process on the machine, not N, and a restarted
server shows the stored board at once instead of recomputing it in every worker.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from openarena.analysis.leaderboard import NOT_ENOUGH_VOTES
from openarena.errors import OpenArenaError

log = logging.getLogger("openarena.serving")

__all__ = ["ARENA_CATEGORIES", "ARENA_LABELS", "Board", "LeaderboardCache", "SharedBoard", "Snapshot", "CATEGORIES", "compute_snapshot", "compute_snapshots", "load_reference", "snapshots_from_json", "snapshots_to_json"]

#: Category key -> label shown on the page. 'full' is always computed.
CATEGORIES = {"full": "Overall", "coding": "Coding", "math": "Math", "multiturn": "Multi-turn", "no_tie": "Without ties"}
#: The arenas (battles.arena), each with its own leaderboard, and the label of its tab.
ARENA_LABELS = {"text": "Text", "vision": "Vision", "code": "Code"}
#: The categories of each arena's board (a prompt's category is tagged from its text: math and
#: coding rules read the text of a vision prompt as well, but the image carries most of it).
ARENA_CATEGORIES = {
    "text": tuple(CATEGORIES),
    "vision": ("full", "multiturn", "no_tie"),
    "code": ("full", "multiturn", "no_tie"),
}
MIN_VOTES = 3


@dataclass
class Board:
    """One leaderboard view. rows: list of dicts (rank_ub, model, rating, lower, upper, votes,
    win_rate, organization, license); unrated: the models that cannot be rated yet (model,
    votes, status 'not enough votes', organization, license); plot: PNG bytes or None; error:
    why there is no table, in plain words for visitors (the details go to the server log)."""

    category: str
    style: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    plot: bytes | None = None
    n_votes: int = 0
    error: str | None = None
    coefficients: list[dict[str, Any]] = field(default_factory=list)
    unrated: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Snapshot:
    """Everything the page shows; replaced as a whole by each refresh (readers never lock)."""

    created: float = 0.0
    n_votes: int = 0
    n_named: int = 0
    boards: dict[tuple[str, bool], Board] = field(default_factory=dict)
    categories: list[str] = field(default_factory=lambda: ["full"])
    votes_per_model: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    reference: dict[str, Any] | None = None
    #: anonymous votes stored but not counted, per reason code (identity_leak, selective_voting,
    #: abandon_ratio, daily_cap), from the provenance of the votes read
    excluded: dict[str, int] = field(default_factory=dict)
    #: the Trust page's payload (:func:`openarena.serving.trust.trust_payload`), None before
    #: the first votes or when the cache was built without trust options
    trust: dict[str, Any] | None = None
    #: which arena's battles ('text', 'vision', 'code')
    arena: str = "text"


class LeaderboardCache:
    """Holds the current :class:`Snapshot`; :meth:`start` runs refreshes every ``interval_s``.

    Parameters: db (a Database), registry (for organisation/licence columns), interval_s,
    min_refresh_s (on-demand refreshes closer than this to the last one are ignored),
    reference (path of a leaderboard JSON of public votes, shown as-is), on_refresh (called
    with the snapshot and the anonymous votes per unordered pair, ``{frozenset((a, b)): n}``,
    or None when there is no vote, e.g. to update the sampler), process (compute in a child
    process, see the module docstring).

    Raises: DataError when ``reference`` cannot be read or is not a leaderboard JSON
    (:func:`load_reference`).
    """

    def __init__(self, db, registry, interval_s: float = 300.0, min_refresh_s: float = 10.0, reference: str | None = None,
                 on_refresh: Callable[[Snapshot, dict[frozenset[str], float] | None], None] | None = None, process: bool = True,
                 shared: "SharedBoard | None" = None, poll_s: float = 1.0, trust: dict[str, Any] | None = None) -> None:
        self.db = db
        self.trust = trust
        self.shared = shared
        self.poll_s = poll_s
        self._requested = False
        self._shared_started = 0.0
        self.computed = 0  #: recomputations done by this cache (the leader's count; tests)
        self.registry = registry
        url = getattr(db, "engine", None) and db.engine.url
        in_memory = url is not None and url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        self.process = process and url is not None and not in_memory
        self._child: _Child | None = None
        self.interval_s = interval_s
        self.min_refresh_s = min_refresh_s
        self.reference_path = reference
        self.on_refresh = on_refresh
        self.snapshot = Snapshot(reference=self._load_reference())
        #: arena -> its snapshot; ``snapshot`` is the text arena's
        self.snapshots: dict[str, Snapshot] = {"text": self.snapshot}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_start = 0.0

    # -- scheduling ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread (first refresh at once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="leaderboard-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        child, self._child = self._child, None
        if child is not None:  # a refresh waiting for it gets an error at once
            child.close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        child, self._child = self._child, None
        if child is not None:  # started by a refresh that raced with this stop
            child.close()
        if self.shared is not None:
            self.shared.close()

    def request_refresh(self) -> bool:
        """Ask for a refresh soon; False when one started less than min_refresh_s ago (in any
        worker, as far as this one last saw: at most ``poll_s`` old). Never waits for Redis or
        the database (it is called on the event loop): the background thread passes the request
        on."""
        if time.time() - max(self._last_start, self._shared_started) < self.min_refresh_s:
            return False
        self._requested = True
        self._wake.set()
        return True

    def _loop(self) -> None:
        if self.shared is not None:
            return self._shared_loop()
        while not self._stop.is_set():
            self.refresh()
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def _shared_loop(self) -> None:
        """Several workers: lead (recompute and publish) or follow (load what the leader
        published), one small Redis read per ``poll_s``."""
        while not self._stop.is_set():
            try:
                self.shared_tick()
            except Exception:  # noqa: BLE001 - Redis down: keep the board shown, try again
                log.warning("shared leaderboard unavailable; keeping the current board", exc_info=True)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def shared_tick(self) -> str:
        """One step of :meth:`_shared_loop` (public for tests): returns 'computed' (this worker
        led and recomputed), 'loaded' (it loaded a newer snapshot published by the leader) or
        'idle'."""
        shared = self.shared
        if self._requested:
            self._requested = False
            shared.request(time.time())
        leader = shared.lead()
        published, requested, started = shared.times()
        self._shared_started = started
        now = time.time()
        if leader and (not published or now - published >= self.interval_s or requested > started):
            shared.mark_started(now)
            self._shared_started = now
            with shared.holding():  # keep the lease while computing (a dead worker's expires)
                snaps, pairs = self._compute()
                self._publish(snaps, pairs)
                shared.publish(snapshots_to_json(snaps, pairs), snaps["text"].created)
            return "computed"
        if not leader and self._child is not None:  # no longer the leader: free its process
            child, self._child = self._child, None
            child.close()
        if published > self.snapshot.created:
            data = shared.fetch()
            if data is not None:
                snaps, pairs = snapshots_from_json(data)
                if snaps["text"].created > self.snapshot.created:
                    self._publish(snaps, pairs)
                    return "loaded"
        return "idle"

    # -- computation ---------------------------------------------------------------------------
    def refresh(self) -> Snapshot:
        """Recompute every board now (in the calling thread) and publish the new snapshots;
        returns the text arena's."""
        snaps, pairs = self._compute()
        self._publish(snaps, pairs)
        return snaps["text"]

    def _compute(self) -> tuple[dict[str, Snapshot], dict[frozenset[str], float] | None]:
        with self._lock:
            self._last_start = time.time()
            self.computed += 1
            t0 = time.perf_counter()
            try:
                snaps, pairs = self._compute_isolated() if self.process else compute_snapshots(self.db, self._model_info(), self.trust)
            except Exception:  # noqa: BLE001 - the log has the details, the page a plain message
                log.exception("leaderboard refresh failed")
                snaps, pairs = {a: Snapshot(error=REFRESH_FAILED, arena=a) for a in ARENA_LABELS}, None
            now, seconds = time.time(), time.perf_counter() - t0
            for one in snaps.values():
                one.created = now
                one.seconds = seconds
        return snaps, pairs

    def _publish(self, snaps: dict[str, Snapshot], pairs: dict[frozenset[str], float] | None) -> None:
        snap = snaps["text"]
        snap.reference = self.snapshot.reference
        self.snapshot = snap
        self.snapshots = snaps
        if self.on_refresh is not None:
            try:
                self.on_refresh(snap, pairs)
            except Exception:  # noqa: BLE001
                log.exception("on_refresh failed")

    def _model_info(self) -> dict[str, tuple[str, str]]:
        return {m.name: (getattr(m, "organization", None) or "", getattr(m, "license", None) or "") for m in self.registry}

    def _compute_isolated(self):
        child = None
        try:
            if self._child is None or not self._child.alive():
                self._child = _Child()
            child = self._child
            return child.compute(self.db.url, self._model_info(), self.trust)
        except _ChildGone as e:
            # The page keeps a correct board: this refresh runs here. A child that never answered
            # cannot start at all (e.g. a __main__ that spawn cannot re-import, such as a script
            # read from stdin or one without the ``if __name__ == "__main__"`` guard): from now
            # on every refresh runs in this thread.
            if child is None or not child.answered:
                self.process = False
            log.warning("leaderboard process failed (%s); %s", e, "recomputing in a thread from now on" if not self.process else "recomputing in a thread this time")
            return compute_snapshots(self.db, self._model_info(), self.trust)

    def _load_reference(self) -> dict[str, Any] | None:
        if not self.reference_path:
            return None
        return load_reference(self.reference_path)


# Lua: take the lease if free, renew it if ours; 1 when held by ``token`` afterwards.
_LEAD = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# Lua: delete the lease only if ours.
_RESIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SharedBoard:
    """The leaderboard's coordination between the workers of one arena, in Redis (a
    synchronous redis-py client, used only by the cache's background thread).

    Keys (``<prefix>leaderboard:<hash of the database URL>:``): ``leader`` (the lease: a random
    token per worker, ``lease_s`` to live, renewed at every poll and while computing),
    ``snapshot`` (the last snapshot as JSON, :func:`snapshot_to_json`), ``published`` /
    ``started`` / ``requested`` (Unix seconds: when that snapshot was made, when the last
    recomputation started, when a worker was last asked for one).

    Parameters: url (``redis://...``), prefix (the arena's key prefix), database (its URL: two
    arenas on one Redis and prefix but different databases never mix boards), lease_s.
    Raises (from every method): redis-py's errors when Redis fails (the cache logs them).
    """

    def __init__(self, url: str, prefix: str, database: str, lease_s: float = 15.0) -> None:
        import redis

        self._r = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.key = f"{prefix}leaderboard:{hashlib.sha256(database.encode()).hexdigest()[:12]}:"
        self.token = uuid.uuid4().hex
        self.lease_ms = max(1000, int(lease_s * 1000))
        self._lead = self._r.register_script(_LEAD)
        self._resign = self._r.register_script(_RESIGN)

    def lead(self) -> bool:
        """Take the leader lease if it is free, renew it if this worker holds it; True if held."""
        return bool(self._lead(keys=[self.key + "leader"], args=[self.token, self.lease_ms]))

    def times(self) -> tuple[float, float, float]:
        """(published, requested, started), Unix seconds (0.0 when never)."""
        vals = self._r.mget([self.key + k for k in ("published", "requested", "started")])
        return tuple(float(v) if v is not None else 0.0 for v in vals)  # type: ignore[return-value]

    def request(self, now: float) -> None:
        """Record that a refresh was asked for (the leader starts one at its next poll)."""
        self._r.set(self.key + "requested", repr(now))

    def mark_started(self, now: float) -> None:
        self._r.set(self.key + "started", repr(now))

    def publish(self, data: bytes, created: float) -> None:
        """Store a snapshot (JSON bytes) made at ``created``; followers load it at their next poll."""
        with self._r.pipeline(transaction=True) as p:
            p.set(self.key + "snapshot", data)
            p.set(self.key + "published", repr(created))
            p.execute()

    def fetch(self) -> bytes | None:
        return self._r.get(self.key + "snapshot")

    @contextlib.contextmanager
    def holding(self):
        """Renew the lease every third of its life while the body runs (a long recomputation
        keeps its leader; a killed leader's lease still expires)."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.lease_ms / 3000):
                try:
                    self.lead()
                except Exception:  # noqa: BLE001 - the next renewal tries again
                    pass

        t = threading.Thread(target=renew, name="leaderboard-lease", daemon=True)
        t.start()
        try:
            yield
        finally:
            done.set()
            t.join(timeout=5)

    def close(self) -> None:
        """Give up the lease (another worker leads at once) and close the client."""
        try:
            self._resign(keys=[self.key + "leader"], args=[self.token])
        except Exception:  # noqa: BLE001 - Redis gone: the lease expires by itself
            pass
        self._r.close()


def _snapshot_doc(snap: Snapshot, pairs: dict[frozenset[str], float] | None) -> dict[str, Any]:
    """A snapshot and its pair counts as a JSON-ready dict (plots base64; the reference board,
    which each worker reads from its own file, is left out)."""
    return {
        "created": snap.created, "n_votes": snap.n_votes, "n_named": snap.n_named, "categories": snap.categories,
        "votes_per_model": snap.votes_per_model, "seconds": snap.seconds, "error": snap.error, "excluded": snap.excluded,
        "trust": snap.trust, "arena": snap.arena,
        "boards": [
            {"category": b.category, "style": b.style, "rows": b.rows, "n_votes": b.n_votes, "error": b.error,
             "coefficients": b.coefficients, "unrated": b.unrated, "plot": base64.b64encode(b.plot).decode() if b.plot else None}
            for b in snap.boards.values()
        ],
        "pairs": None if pairs is None else [[*sorted(k), n] for k, n in pairs.items()],
    }


def _snapshot_from_doc(doc: dict[str, Any]) -> tuple[Snapshot, dict[frozenset[str], float] | None]:
    """Inverse of :func:`_snapshot_doc`. Raises: KeyError / ValueError / TypeError for anything else."""
    snap = Snapshot(created=float(doc["created"]), n_votes=int(doc["n_votes"]), n_named=int(doc["n_named"]),
                    categories=list(doc["categories"]), votes_per_model=dict(doc["votes_per_model"]), seconds=float(doc["seconds"]),
                    error=doc["error"], excluded=dict(doc["excluded"]), trust=doc.get("trust"), arena=str(doc.get("arena", "text")))
    for b in doc["boards"]:
        board = Board(b["category"], bool(b["style"]), rows=b["rows"], n_votes=int(b["n_votes"]), error=b["error"],
                      coefficients=b["coefficients"], unrated=b["unrated"], plot=base64.b64decode(b["plot"]) if b["plot"] else None)
        snap.boards[(board.category, board.style)] = board
    pairs = None if doc["pairs"] is None else {frozenset((a, b)): float(n) for a, b, n in doc["pairs"]}
    return snap, pairs


def snapshot_to_json(snap: Snapshot, pairs: dict[frozenset[str], float] | None) -> bytes:
    """A snapshot and its pair counts as JSON bytes (:func:`_snapshot_doc`). Inverse:
    :func:`snapshot_from_json`."""
    return json.dumps(_snapshot_doc(snap, pairs), separators=(",", ":")).encode()


def snapshot_from_json(data: bytes) -> tuple[Snapshot, dict[frozenset[str], float] | None]:
    """(snapshot, pairs) from :func:`snapshot_to_json`. Raises: ValueError / KeyError for
    anything else."""
    return _snapshot_from_doc(json.loads(data))


def snapshots_to_json(snaps: dict[str, Snapshot], pairs: dict[frozenset[str], float] | None) -> bytes:
    """Every arena's snapshot as one JSON document ``{"arenas": {arena: snapshot}}`` (the text
    arena's with the pair counts), encoded once. Inverse: :func:`snapshots_from_json`."""
    parts = {a: _snapshot_doc(snap, pairs if a == "text" else None) for a, snap in snaps.items()}
    return json.dumps({"arenas": parts}, separators=(",", ":")).encode()


def snapshots_from_json(data: bytes) -> tuple[dict[str, Snapshot], dict[frozenset[str], float] | None]:
    """({arena: snapshot}, the text arena's pairs) from :func:`snapshots_to_json`, decoded once.
    Raises: ValueError / KeyError for anything else (a document without a text arena included)."""
    out, pairs = {}, None
    for arena, part in json.loads(data)["arenas"].items():
        out[arena], p = _snapshot_from_doc(part)
        if arena == "text":
            pairs = p
    if "text" not in out:
        raise KeyError("text")
    return out, pairs


REFERENCE_EXPECTED = "a leaderboard.json written by openarena leaderboard --out-dir"
_NUMBER = (int, float)


def load_reference(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The reference leaderboard shown beside the arena's own: ``path`` is a leaderboard JSON of
    ``openarena leaderboard --out-dir`` (``{"leaderboard": [rows], "provenance": {...}}``), with
    its whisker plot ``<stem>_ci.png`` when present.

    Returns: {"rows", "provenance", "plot" (PNG bytes or None), "path", "label" (the source's
    file name, what the page shows: never a server path)}.
    Raises: DataError naming the file (and the row and field) when it cannot be read, is not
    JSON, or lacks what the page shows: a non-empty ``leaderboard`` list of objects with a string
    ``model``, numbers ``rating`` and ``num_battles`` (``rating_q025`` / ``rating_q975``: numbers
    or null), and ``provenance`` an object.
    """
    from openarena.errors import DataError

    p = Path(path)
    source = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("file not found", source, expected=REFERENCE_EXPECTED) from None
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text file", source, expected=REFERENCE_EXPECTED) from None
    except OSError as e:
        raise DataError(f"cannot read the file: {e.strerror or type(e).__name__}", source) from None
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise DataError(f"invalid JSON: {e}", source, expected=REFERENCE_EXPECTED) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("leaderboard"), list):
        raise DataError("no 'leaderboard' list of rows", source, None, "leaderboard", REFERENCE_EXPECTED)
    rows = doc["leaderboard"]
    if not rows:
        raise DataError("the leaderboard has no rows", source, None, "leaderboard", REFERENCE_EXPECTED)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"row is {type(row).__name__}, not an object", source, i, None, "an object with model, rating, num_battles")
        for key, kinds, what, optional in (
            ("model", (str,), "a model name", False),
            ("rating", _NUMBER, "a number", False),
            ("num_battles", _NUMBER, "a number", False),
            ("rating_q025", _NUMBER, "a number or null", True),
            ("rating_q975", _NUMBER, "a number or null", True),
        ):
            value = row.get(key)
            if value is None and optional:
                continue
            if not isinstance(value, kinds) or isinstance(value, bool):
                problem = "missing" if key not in row else f"invalid value {value!r}"
                raise DataError(problem, source, i, key, what)
    provenance = doc.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise DataError("provenance is not an object", source, None, "provenance", REFERENCE_EXPECTED)
    n_battles = provenance.get("n_battles")
    if n_battles is not None and (not isinstance(n_battles, _NUMBER) or isinstance(n_battles, bool)):
        raise DataError(f"invalid value {n_battles!r}", source, None, "provenance.n_battles", "a number")
    plot = p.with_name(p.stem + "_ci.png")
    # what visitors see of the source: a file name, never the server's folders
    label = Path(str(provenance.get("source") or source)).name or "a leaderboard file"
    return {"rows": rows, "provenance": provenance, "plot": plot.read_bytes() if plot.is_file() else None, "path": source, "label": label}


#: what a visitor reads when a board cannot be shown (never an exception, a flag or a path);
#: NOT_ENOUGH_VOTES (from openarena.analysis.leaderboard) when no two models can be rated yet
BOARD_FAILED = "This board could not be computed this time; it will be retried at the next refresh."
REFRESH_FAILED = "The leaderboard could not be recomputed just now; it will be retried shortly."


def compute_snapshots(db, models: dict[str, tuple[str, str]], trust: dict[str, Any] | None = None) -> tuple[dict[str, Snapshot], dict[frozenset[str], float] | None]:
    """Every arena's snapshot (:func:`compute_snapshot`), ``{arena: Snapshot}``, and the text
    arena's anonymous votes per unordered pair (what the pair sampler balances on).
    ``trust``: options of the Trust page (:func:`openarena.serving.trust.trust_options`); the
    text arena's snapshot then carries the Trust page's payload (``snap.trust``)."""
    snap, pairs = compute_snapshot(db, models, trust)
    out = {"text": snap}
    for arena in ARENA_LABELS:
        if arena != "text":
            try:
                out[arena] = compute_snapshot(db, models, arena=arena)[0]
            except Exception:  # noqa: BLE001 - one arena's failure leaves the others
                log.exception("leaderboard refresh of the %s arena failed", arena)
                out[arena] = Snapshot(error=REFRESH_FAILED, arena=arena)
    return out, pairs


def compute_snapshot(db, models: dict[str, tuple[str, str]], trust: dict[str, Any] | None = None, arena: str = "text") -> tuple[Snapshot, dict[frozenset[str], float] | None]:
    """One recomputation of one arena's boards (see the module docstring): the snapshot and
    the anonymous votes per unordered pair (None when there is no vote). ``models``: name ->
    (organization, license) for the table's columns; ``arena``: 'text', 'vision' or 'code'
    (the categories of :data:`ARENA_CATEGORIES`). The boards come from
    :func:`openarena.api.leaderboard` on the counted anonymous votes of that arena, the same
    data and defaults as ``openarena leaderboard db --arena ARENA``. ``trust``: options of the
    Trust page (:func:`openarena.serving.trust.trust_options`); when given, ``snap.trust`` is
    computed from the same votes (:func:`openarena.serving.trust.compute_trust`)."""
    import numpy as np

    from openarena import api
    from openarena.data.battles import aggregate
    from openarena.data.categories import category_mask
    from openarena.errors import DataError

    snap = Snapshot(arena=arena)
    where = "" if arena == "text" else f" in the {ARENA_LABELS.get(arena, arena)} arena"
    try:
        allv = api.read(db, named=True, conversations=False, arena=arena)
    except DataError:
        snap.error = f"No votes yet{where}: battle in the Arena tab, and the leaderboard appears here."
        return snap, None
    f = allv.frame
    snap.n_named = int((~f["anony"]).sum())
    try:
        table = api.read(db, arena=arena)  # counted anonymous votes, as `openarena leaderboard db --arena ARENA`
    except DataError:
        snap.error = f"No anonymous votes yet{where}: only anonymous battles count for the leaderboard."
        return snap, None
    snap.n_votes = len(table)
    snap.excluded = {s.name: int(s.removed) for s in table.steps if s.removed and s.name != "arena"}
    counts = aggregate(table)
    votes = dict(zip(counts.models, counts.num_battles().round().astype(int).tolist()))
    snap.votes_per_model = dict(sorted(votes.items(), key=lambda kv: -kv[1]))
    if trust is not None:
        from openarena.serving.trust import compute_trust

        snap.trust = compute_trust(table, trust)
    try:
        table = api.prepare(table, categories=("coding", "math_rule", "multiturn"))
    except Exception:  # noqa: BLE001
        log.exception("category tagging failed")
    try:
        styled = api.prepare(table, control="style")
    except Exception:  # noqa: BLE001
        log.exception("style features failed")
        styled = None
    for cat in ARENA_CATEGORIES.get(arena, tuple(CATEGORIES)):
        try:
            mask = category_mask(table, cat)
        except DataError:
            continue
        if mask.sum() < MIN_VOTES:
            if cat == "full":  # the first votes: say why there is no board yet, and list the models
                for style in (False, True):
                    snap.boards[(cat, style)] = _not_enough(Board(cat, style, n_votes=int(np.sum(mask))), counts, models)
            continue
        if cat != "full":
            snap.categories.append(cat)
        sub = table.with_frame(table.frame.loc[mask]) if cat != "full" else table
        for style in (False, True):
            src = sub
            if style:
                if styled is None:
                    snap.boards[(cat, True)] = Board(cat, True, error="Style control is not available for this board right now.")
                    continue
                src = styled.with_frame(styled.frame.loc[mask]) if cat != "full" else styled
            snap.boards[(cat, style)] = _board(src, cat, style, int(np.sum(mask)), models)
    per_pair = counts.counts.sum(axis=1)
    pairs = {frozenset((counts.models[i], counts.models[j])): float(n) for (i, j), n in zip(counts.pairs.tolist(), per_pair)}
    return snap, pairs


def _board(data, cat: str, style: bool, n: int, models: dict[str, tuple[str, str]]) -> Board:
    from openarena import api
    from openarena.analysis.plots import whisker_plot
    from openarena.data.battles import aggregate

    board = Board(cat, style, n_votes=n)
    try:
        # models without a finite rating yet (e.g. undefeated) are left out of the fit and listed
        # as "not enough votes"
        lb = api.leaderboard(data, ci="sandwich", control="style" if style else None, anchor="mean", drop_unrated=True)
    except OpenArenaError as e:  # too few votes, disconnected graph, no finite MLE...
        log.info("leaderboard board %s (style=%s) cannot be fitted yet: %s", cat, style, e)
        return _not_enough(board, aggregate(data), models)
    except Exception:  # noqa: BLE001 - a bug: logged with its traceback, the page stays up
        log.exception("leaderboard board %s (style=%s) failed", cat, style)
        board.error = BOARD_FAILED
        return board
    for r in lb.table.itertuples(index=False):
        org, lic = models.get(r.model, ("", ""))
        board.rows.append(
            {
                "rank_ub": int(r.rank_ub), "model": r.model, "rating": float(r.rating),
                "lower": float(r.rating_q025), "upper": float(r.rating_q975), "votes": int(r.num_battles),
                "win_rate": float(r.win_rate), "organization": org, "license": lic,
            }
        )
    _list_unrated(board, aggregate(data), set(lb.models), models)
    if lb.coefficients is not None:
        board.coefficients = [{"name": c.name, "coef": float(c.coef), "lower": float(c.coef_q025), "upper": float(c.coef_q975)} for c in lb.coefficients.itertuples(index=False)]
    try:
        board.plot = whisker_plot(lb.table, title=f"{CATEGORIES.get(cat, cat)}{' (style control)' if style else ''}", top=None)
    except Exception:  # noqa: BLE001
        log.exception("whisker plot failed")
    return board


def _not_enough(board: Board, counts, models: dict[str, tuple[str, str]]) -> Board:
    """``board`` saying that its votes cannot rate the models yet, each model of ``counts``
    listed as 'not enough votes'; returns it."""
    board.error = NOT_ENOUGH_VOTES
    _list_unrated(board, counts, set(), models)
    return board


def _list_unrated(board: Board, counts, rated: set[str], models: dict[str, tuple[str, str]]) -> None:
    """Append the models of ``counts`` that are not in ``rated`` as rows without a rating
    (``rating`` None, ``status`` 'not enough votes'), most votes first."""
    votes = dict(zip(counts.models, counts.num_battles().round().astype(int).tolist()))
    for m in sorted(set(votes) - rated, key=lambda m: (-votes[m], m)):
        org, lic = models.get(m, ("", ""))
        board.unrated.append({"model": m, "votes": votes[m], "status": "not enough votes", "organization": org, "license": lic})


class _ChildGone(RuntimeError):
    """The leaderboard process died or could not start."""


class _Child:
    """The process computing snapshots: ``spawn`` (no fork of a threaded server), niced, one
    request at a time over a pipe; it opens the database once and keeps it."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, theirs = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(theirs,), name="openarena-leaderboard", daemon=True)
        self.answered = False
        try:
            self._proc.start()
        except Exception as e:  # noqa: BLE001 - e.g. spawn refused while __main__ is importing
            self._conn.close()
            raise _ChildGone(f"the leaderboard process could not start ({type(e).__name__})") from None
        finally:
            theirs.close()  # the child's end lives in the child only: its exit is EOF here

    def alive(self) -> bool:
        return self._proc.is_alive()

    def compute(self, url: str, models: dict[str, tuple[str, str]], trust: dict[str, Any] | None = None):
        try:
            self._conn.send((url, models, trust))
            kind, value = self._conn.recv()
        except (EOFError, OSError) as e:
            self.close()
            raise _ChildGone(f"the leaderboard process stopped ({type(e).__name__})") from None
        self.answered = True
        if kind == "error":
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        try:
            self._conn.close()
        except OSError:
            pass
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=5)


def _child_main(conn) -> None:  # pragma: no cover - runs in the child process
    try:
        os.nice(10)
    except OSError:
        pass
    # the fits' UserWarnings are conditions of the data (a style covariate constant in a
    # category, a zero sandwich variance), not of the server: kept out of the operator's log
    warnings.filterwarnings("ignore", category=UserWarning)
    from openarena.storage.db import Database

    dbs: dict[str, Any] = {}
    while True:
        try:
            url, models, trust = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):  # the server is gone
            return
        try:
            db = dbs.get(url)
            if db is None:
                db = dbs[url] = Database.open(url, run_migrations=False, checkpoints=False)
            reply = ("ok", compute_snapshots(db, models, trust))
        except Exception as e:  # noqa: BLE001 - reported by the server
            reply = ("error", f"{type(e).__name__}: {e}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return
