"""The vote transaction: record a vote and close its battle, alone or in a group commit
(:class:`VoteWriter`), deciding in the same transaction whether it counts.

Each vote is one short transaction whose first write is a conditional ``UPDATE`` (a
compare-and-set on the battle's status and version), so concurrent requests on the same battle
(two votes, a vote during a streaming turn, a regenerate racing a vote) cannot both succeed, on
SQLite and on PostgreSQL alike; the unique ``votes.battle_id`` is the last line of defence
against a second vote. The battles themselves are :mod:`openarena.storage.battles`.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence

from sqlalchemy import JSON, bindparam, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from openarena.data.schema import WINNERS
from openarena.errors import OpenArenaError
from openarena.storage.battles import BattleRecord, empty_answer, get_battle, is_battle_id
from openarena.storage.db import LOCK_DEADLINE, Database, pg_pipeline
from openarena.storage.integrity import VoterKey, load_voter_keys, send_voter_key_reads, send_withdrawals, tally_voter_keys, withdraw_votes
from openarena.storage.models import Battle, Vote

__all__ = [
    "VoteDecider",
    "VoteRefused",
    "VoteResult",
    "VoteWriter",
    "record_vote",
    "record_vote_async",
]

B = Battle.__table__
V = Vote.__table__


class VoteDecider(Protocol):
    """The vote-integrity hook of the vote transaction
    (:class:`openarena.serving.vote_integrity.IntegrityPolicy` is one). The transaction reads
    (and on PostgreSQL locks) the voter keys of its votes over the last ``window_s`` seconds,
    then asks :meth:`decide`; it reads and writes nothing itself."""

    window_s: float

    @property
    def enabled(self) -> bool:
        """False when no vote is to be looked at (nothing is read)."""

    def decide(self, keys: dict[tuple[str, str], VoterKey], votes: Sequence[tuple[BattleRecord, float]],
               since: float) -> tuple[list[str | None], list[tuple[str, str, str]]]:
        """(one reason not to count each vote, None: counts; (kind, key, reason) of the keys
        whose earlier counted votes since ``since`` are to be marked not counted)."""


class VoteRefused(OpenArenaError):
    """A vote the server will not record. ``code`` is one of: ``not_found`` (no such battle in
    this session: forged, replayed from another session, or mistyped), ``already_voted``,
    ``failed`` (a model failed; the battle cannot be voted on), ``no_answer`` (nothing answered
    yet), ``empty_answer`` (the last answer of a side is empty: stopped before any text),
    ``busy`` (a turn is still streaming, its lease renewed while it runs, or the battle changed
    meanwhile), ``not_votable`` (a direct chat), ``bad_winner``. ``str(err)`` is the message for the voter."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class VoteResult:
    """What a recorded vote returns: the revealed names, whether it counts, and why not."""

    battle_id: str
    winner: str
    model_a: str
    model_b: str
    counted: bool
    reason: str | None
    tstamp: float

@dataclass
class _VoteRequest:
    battle_id: str
    session_hash: str
    winner: str
    expected_version: int | None
    counted: bool
    reason: str | None
    check: Callable[[BattleRecord], str | None] | None
    now: float
    ip_hash: str | None = None  # the voter's network hash now: the IP key the battle is expected to carry


# The statements of a vote as driver SQL, built once: a batch of votes runs these three
# whatever its size, with no SQLAlchemy compilation or result processing per call (on a one-vote
# batch this halves the CPU of the transaction); on SQLite with ``?`` placeholders and the JSON
# columns decoded here, on PostgreSQL with ``%s`` (psycopg decodes JSON), the rows locked in id
# order (two batches never wait on each other in a cycle) and the statements pipelined (one
# round trip for the read, one for the writes: :func:`~openarena.storage.db.pg_pipeline`).
_COLUMNS = tuple(c.name for c in B.columns)
_JSON_COLUMNS = tuple(i for i, c in enumerate(B.columns) if isinstance(c.type, JSON))
_SQLITE_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM battles WHERE id IN ({{}})"
_PG_SELECT_LOCKED = f"SELECT {', '.join(_COLUMNS)} FROM battles WHERE id IN ({{}}) ORDER BY id FOR UPDATE"
_CLOSE = "UPDATE battles SET status = 'voted', updated_at = {p}, version = version + 1 WHERE id = {p} AND status = 'open' AND version = {p}"
_INSERT = "INSERT INTO votes (battle_id, winner, tstamp, judge, counted, reason, ip_hash) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
_SQLITE_CLOSE, _SQLITE_INSERT = _CLOSE.format(p="?"), _INSERT.format(p="?")
_PG_CLOSE, _PG_INSERT = _CLOSE.format(p="%s"), _INSERT.format(p="%s")


# what a vote in doubt (its COMMIT sent, the answer lost) looks like if it was stored
_STORED_VOTES = (
    select(V.c.battle_id, V.c.judge, V.c.tstamp, V.c.winner, V.c.counted, V.c.reason, B.c.model_a, B.c.model_b)
    .select_from(V.join(B, V.c.battle_id == B.c.id)).where(V.c.battle_id.in_(bindparam("ids", expanding=True)))
)


def _driver_record(row: tuple, json_text: bool) -> BattleRecord:
    values = list(row)
    if json_text:
        for i in _JSON_COLUMNS:
            if values[i] is not None:
                values[i] = json.loads(values[i])
    m = dict(zip(_COLUMNS, values))
    return BattleRecord(**{k: m[k] for k in BattleRecord.__dataclass_fields__})


class _BatchConflict(Exception):
    """A battle changed between the batch's read and its update (cannot happen while the write
    lock is held; the batch is then redone vote by vote)."""


def _votable(b: BattleRecord | None, r: _VoteRequest) -> bool:
    return (
        b is not None and b.session_hash == r.session_hash and b.status == "open" and b.mode in ("anony", "named")
        and b.turns >= 1 and (b.lease_until is None or b.lease_until < r.now)
        and (r.expected_version is None or b.version == r.expected_version)
        and not empty_answer(b)
    )


def _votes_in(conn: Any, db: Database, reqs: Sequence[_VoteRequest], integrity: VoteDecider | None = None,
              transaction: bool = False, more_ips: tuple[str, ...] = (), checked: dict[int, Any] | None = None) -> list[VoteResult | None | Exception]:
    """The votes of ``reqs`` in one write transaction, in a fixed number of statements whatever
    their number: read the battles (locked on PostgreSQL; SQLite's write lock is already held)
    and, with an ``integrity`` hook (:data:`VoteDecider`), lock and read their voter keys;
    decide each vote in Python; close the battles (compare-and-set on status and version),
    withdraw the votes of voters newly flagged, and insert the votes.

    On PostgreSQL the statements are pipelined (:func:`~openarena.storage.db.pg_pipeline`):
    with ``transaction`` (the writer's connection, in autocommit mode) this function runs the
    transaction itself in two round trips: BEGIN, the read of the battles, the voters' locks and
    their read; then the writes with the COMMIT (ROLLBACK when nothing is written). The voter
    keys are locked before the battles are seen, so they are those the battles should carry:
    each request's session and its ``ip_hash`` (the voter's address now, normally the one the
    battle was created from; plus ``more_ips``); when an accepted battle carries another IP
    key, the transaction is rolled back and run again with it (two more round trips), so the
    locks are always taken in one statement, in sorted order. The battles' rows and the voters'
    locks are held from the first round trip to the second: one round trip and the decisions
    in Python (were four round trips, and seven before them; counted from the protocol trace
    in ``tests/storage/test_integrity.py``). Without ``transaction`` the keys are locked and
    read once the battles are known, in a round trip of their own. Each lock wait is bounded by what is
    left of the batch's oldest vote's ``lock_timeout_s`` (all of them together end by then,
    at least :data:`~openarena.storage.db.MIN_LOCK_WAIT_MS` each): when a lock is held too
    long, batches queued behind each other in several workers are all refused within about
    ``lock_timeout_s`` of their votes, not one ``lock_timeout_s`` after another. Without
    ``transaction``, the statements run in the caller's open transaction (``conn`` a SQLAlchemy
    connection, or a savepoint of it), which the caller commits.

    Returns one entry per request: its VoteResult, None when the battle is not votable (also
    for a second vote on the same battle in the batch), or the exception its ``check`` raised.
    With an ``integrity`` hook, the votes that pass are then decided by it (counted or not,
    with the reason; a vote already not counted for an identity leak keeps that reason).
    Raises: _BatchConflict or IntegrityError (the caller rolls back and redoes the batch one
    vote per savepoint, where each vote fails alone); the database's errors (with
    ``transaction``, the transaction is then left to the caller to roll back).
    """
    ids = _lookup_ids(reqs)
    if not ids:
        return [None] * len(reqs)
    sqlite = db.backend == "sqlite"
    checks = integrity is not None and integrity.enabled
    oldest = min(r.now for r in reqs)
    since = oldest - integrity.window_s if checks else 0.0
    guess = keys_read = None
    if sqlite:
        rows = conn.exec_driver_sql(_SQLITE_SELECT.format(", ".join("?" * len(ids))), ids).all()
    else:
        if transaction:  # the writer's batch: all its lock waits end when its oldest vote's would have (VoteWriter._votes_pg forgets it)
            conn.info[LOCK_DEADLINE] = oldest + db.lock_timeout_s
            if checks:  # the voter keys the battles should carry: locked and read in the same round trip
                guess = (sorted({r.session_hash for r in reqs}), sorted({r.ip_hash for r in reqs if r.ip_hash} | set(more_ips)))
        with pg_pipeline(conn, begin=transaction) as raw:
            read = raw.cursor()
            read.execute(_PG_SELECT_LOCKED.format(", ".join(["%s"] * len(ids))), ids)
            if guess is not None:
                keys_read = send_voter_key_reads(conn, raw, *guess, since)
        rows = read.fetchall()  # read once the pipeline is synced (a fetch inside it costs one more round trip)
    battles = {row[0]: _driver_record(row, json_text=sqlite) for row in rows}
    out: list[VoteResult | None | Exception] = []
    closes: list[tuple[float, str, int]] = []  # (now, battle id, version)
    votes: list[tuple[str, str, float, str, bool, str | None, str | None]] = []  # the columns of _INSERT
    taken: set[str] = set()
    accepted: list[tuple[int, _VoteRequest, BattleRecord, bool, str | None]] = []
    checked = {} if checked is None else checked  # each request's check runs once, also when the batch runs again
    for i, r in enumerate(reqs):
        b = battles.get(r.battle_id)
        if r.battle_id in taken or not _votable(b, r):
            out.append(None)
            continue
        counted, reason = r.counted, r.reason
        if r.check is not None:
            if i not in checked:
                try:
                    checked[i] = r.check(b)
                except Exception as e:  # noqa: BLE001 - this caller's error only
                    checked[i] = e
            if isinstance(checked[i], Exception):
                out.append(checked[i])
                continue
            reason = checked[i]
            counted = reason is None
        taken.add(r.battle_id)
        accepted.append((len(out), r, b, counted, reason))
        out.append(None)
    withheld: list[str | None] = [None] * len(accepted)
    withdrawals: list[tuple[str, str, str]] = []
    if checks and accepted:
        sessions = {b.session_hash for _, _, b, _, _ in accepted}  # (a votable battle's session is its request's)
        ips = {b.ip_hash for _, _, b, _, _ in accepted if b.ip_hash}
        if guess is None:
            keys = load_voter_keys(conn, db.backend, sessions, ips, since)
        elif ips <= set(guess[1]):
            keys = tally_voter_keys(keys_read.fetchall(), *guess)
        else:  # a battle created from another address: its IP key was not locked; again, with it
            _rollback(conn)
            return _votes_in(conn, db, reqs, integrity, transaction=True, more_ips=tuple(ips | set(more_ips)), checked=checked)
        withheld, withdrawals = integrity.decide(keys, [(b, r.now) for _, r, b, _, _ in accepted], since)
    for (i, r, b, counted, reason), why in zip(accepted, withheld):
        if counted and why is not None:
            counted, reason = False, why
        closes.append((r.now, r.battle_id, b.version))
        votes.append((r.battle_id, r.winner, r.now, r.session_hash, counted, reason, b.ip_hash))
        out[i] = VoteResult(r.battle_id, r.winner, b.model_a, b.model_b, counted, reason, r.now)
    if sqlite:
        for kind, key, why in withdrawals:
            withdraw_votes(conn, kind, key, since, why)
        if closes:
            if conn.exec_driver_sql(_SQLITE_CLOSE, closes).rowcount != len(closes):
                raise _BatchConflict()
            conn.exec_driver_sql(_SQLITE_INSERT, [(*v[:4], int(v[4]), *v[5:]) for v in votes])
    elif closes:
        # the battles' rows are locked since the read, so nothing can wait for a lock here but
        # a withdrawal (other votes' rows): only then is the lock deadline sent
        with pg_pipeline(conn, budget=bool(withdrawals)) as raw:  # the writes (and the COMMIT) in one round trip
            send_withdrawals(raw, withdrawals, since)
            close = raw.cursor()
            close.executemany(_PG_CLOSE, closes)
            raw.cursor().executemany(_PG_INSERT, votes)
            if transaction:
                raw.cursor().execute("COMMIT")
        if close.rowcount != len(closes):  # the rows are locked since the read: cannot happen
            if transaction:
                raise RuntimeError(f"vote batch committed with {close.rowcount} of its {len(closes)} battles closed")
            raise _BatchConflict()
    elif transaction:  # nothing to write: end the transaction (its locks)
        _rollback(conn)
    return out


def _rollback(conn: Any) -> None:
    """End the PostgreSQL transaction that :func:`_votes_in` began on ``conn`` (autocommit mode,
    explicit BEGIN) without writing: one round trip, its locks released."""
    with pg_pipeline(conn, budget=False) as raw:
        raw.cursor().execute("ROLLBACK")


def _lookup_ids(reqs: Sequence[_VoteRequest]) -> tuple[str, ...]:
    """The distinct battle ids of ``reqs`` worth looking up: an id no battle can have
    (:func:`~openarena.storage.battles.is_battle_id`) would fail the statement of the whole
    batch, other voters' votes too; it is left out, so that vote alone is refused."""
    return tuple(dict.fromkeys(r.battle_id for r in reqs if is_battle_id(r.battle_id)))


def _vote_in(conn: Any, db: Database, r: _VoteRequest, integrity: VoteDecider | None = None) -> VoteResult | None:
    """The vote of ``r`` inside an open write transaction; None if the battle is not votable.
    Raises: what ``r.check`` raises; IntegrityError (a vote row already there)."""
    try:
        (res,) = _votes_in(conn, db, [r], integrity)
    except _BatchConflict:
        return None
    if isinstance(res, Exception):
        raise res
    return res


def record_vote(
    db: Database,
    battle_id: str,
    session_hash: str,
    winner: str,
    *,
    expected_version: int | None = None,
    counted: bool = True,
    reason: str | None = None,
    check: Callable[[BattleRecord], str | None] | None = None,
    now: float | None = None,
    writer: "VoteWriter | None" = None,
    integrity: VoteDecider | None = None,
    ip_hash: str | None = None,
) -> VoteResult:
    """Record the vote on a battle and close it, in one durable write transaction.

    The battle must belong to ``session_hash``, be open, anonymous or named, have at least one
    complete turn whose answers are not empty (:func:`empty_answer`), hold no streaming lease and (when ``expected_version`` is given) not have
    changed since the caller looked at it. ``check(battle)``, if given, runs inside the
    transaction on the locked row and returns a reason not to count the vote (e.g. an identity
    leak) or None; it overrides ``counted``/``reason``. ``integrity``: the vote-integrity policy
    (caps, abandon ratio, selective voting, :mod:`openarena.storage.integrity`) deciding in the
    same transaction whether the vote counts; a :class:`VoteWriter` applies its own. With a :class:`VoteWriter` the vote is
    committed together with the votes arriving at the same moment (group commit); either way
    the function returns only after the commit is durable. ``ip_hash``: the voter's network hash
    now (see :func:`record_vote_async`).
    Returns: VoteResult with both model names (the reveal).
    Raises: VoteRefused with a code and a message for the voter (see the class).
    Source: FastChat gradio_block_arena_anony.py ``vote_last_response`` (one vote per battle,
    names revealed only afterwards); here the database enforces it.
    """
    if winner not in WINNERS:
        raise VoteRefused("bad_winner", f"unknown vote {winner!r}; expected one of {', '.join(WINNERS)}")
    req = _VoteRequest(battle_id, session_hash, winner, expected_version, counted, reason, check, time.time() if now is None else now, ip_hash)
    if writer is not None:
        res = writer.submit(req).result()
    else:
        try:
            with db.write(durable=True) as conn:
                res = _vote_in(conn, db, req, integrity)
        except IntegrityError:
            res = None
    if res is None:
        raise _why_refused(db, battle_id, session_hash, expected_version, req.now)
    return res


async def record_vote_async(
    db: Database,
    writer: "VoteWriter",
    battle_id: str,
    session_hash: str,
    winner: str,
    *,
    check: Callable[[BattleRecord], str | None] | None = None,
    ip_hash: str | None = None,
) -> VoteResult:
    """:func:`record_vote` through a started :class:`VoteWriter`, awaited without holding a
    thread. ``ip_hash``: the voter's network hash now, the IP key the battle is expected to
    carry (it was created from the same address): the transaction locks and reads it with the
    battle, in one round trip on PostgreSQL; a battle created from another address costs the
    transaction two more. Raises: VoteRefused."""
    if winner not in WINNERS:
        raise VoteRefused("bad_winner", f"unknown vote {winner!r}; expected one of {', '.join(WINNERS)}")
    req = _VoteRequest(battle_id, session_hash, winner, None, True, None, check, time.time(), ip_hash)
    res = await writer.submit_async(req)
    if res is None:
        raise await asyncio.to_thread(_why_refused, db, battle_id, session_hash, None, req.now)
    return res


class VoteWriter:
    """Group commit of votes: one thread takes the votes waiting in its queue (up to
    ``max_batch``), records them in one durable transaction of a fixed number of statements
    whatever their number (:func:`_votes_in`: one read of the battles, one lock and one read of
    their voter keys, the decisions in Python, one executemany each to close the battles and
    insert the votes; on PostgreSQL two round trips), commits once (one fsync) and only
    then answers every caller; the asyncio callers of a batch are woken with one call into their
    event loop. Under load this turns N fsyncs into one; alone, a vote waits for nothing. A vote
    whose row conflicts sends its batch through one savepoint per vote, so it fails alone.
    Start with :meth:`start`, stop with :meth:`stop`. ``integrity``: the vote-integrity hook
    (:data:`VoteDecider`) applied to every batch, or None.

    Why batches of statements rather than one savepoint per vote: the statements are Python
    work holding the GIL, shared with the event loop serving the requests; with five statements
    and a savepoint per vote, this thread took ~1.8 ms of CPU per vote at 300 votes/s, as much
    as the HTTP handling itself, and each statement is a GIL hand-off with the event loop.
    """

    def __init__(self, db: Database, max_batch: int = 256, integrity: VoteDecider | None = None) -> None:
        self.db = db
        self.max_batch = max_batch
        self.integrity = integrity
        # items: (request, concurrent Future) or (request, (event loop, asyncio Future)); None stops
        self._q: "queue.Queue[tuple[_VoteRequest, Any] | None]" = queue.Queue()
        self._thread: threading.Thread | None = None
        self._conn: Any = None  # PostgreSQL: the writer thread's own connection (see _votes_pg)

    def start(self) -> "VoteWriter":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="vote-writer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout=10)
            self._thread = None
        else:
            self._close_conn()  # _commit called without the thread (tests)

    def submit(self, req: _VoteRequest) -> Future:
        """Queue a vote; the returned future gets its VoteResult (None: not votable) once committed."""
        fut: Future = Future()
        if self._thread is None:
            fut.set_exception(RuntimeError("VoteWriter is not started"))
        else:
            self._q.put((req, fut))
        return fut

    def submit_async(self, req: _VoteRequest) -> "asyncio.Future":
        """:meth:`submit` for a coroutine: an asyncio future of the running loop. The writer
        settles all the asyncio futures of a batch with one call into each loop (one wake-up of
        the event loop per batch, not one per vote)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self._thread is None:
            fut.set_exception(RuntimeError("VoteWriter is not started"))
        else:
            self._q.put((req, (loop, fut)))
        return fut

    def _commit(self, batch: list[tuple[_VoteRequest, Any]]) -> list[VoteResult | None | BaseException]:
        """One durable transaction for the batch (:func:`_votes_in`; on PostgreSQL two round
        trips on this thread's own connection); if a vote conflicts (a vote row already there),
        the batch is rolled back and redone with each vote in its own savepoint, so only that
        vote is refused."""
        reqs = [req for req, _ in batch]
        try:
            if self.db.backend == "sqlite":
                with self.db.write(durable=True) as conn:
                    return _votes_in(conn, self.db, reqs, self.integrity)
            return self._votes_pg(reqs)
        except (_BatchConflict, IntegrityError):
            pass
        except DBAPIError as e:
            if not (self.db.backend == "postgresql" and e.connection_invalidated):  # rolled back for sure: not saved
                raise
            return self._in_doubt(reqs, e)
        results: list[VoteResult | None | BaseException] = []
        with self.db.write(durable=True) as conn:
            for req in reqs:
                try:
                    with conn.begin_nested():
                        results.append(_vote_in(conn, self.db, req, self.integrity))
                except IntegrityError:
                    results.append(None)
                except Exception as e:  # noqa: BLE001 - this caller's error only
                    results.append(e)
        return results

    def _votes_pg(self, reqs: Sequence[_VoteRequest]) -> list[VoteResult | None | Exception]:
        """The batch on PostgreSQL, on this thread's own connection, kept between batches (no
        pool checkout and no pre-ping round trip per batch) in autocommit mode, so that
        :func:`_votes_in` sends BEGIN with its first round trip. A batch that fails leaves its
        transaction open or aborted: the connection is then thrown away (the transaction with
        it) and the next batch takes a fresh one from the pool (checked by its pre-ping)."""
        conn = self._connection()
        try:
            out = _votes_in(conn, self.db, reqs, self.integrity, transaction=True)
        except BaseException:
            self._close_conn(invalidate=True)
            raise
        conn.info.pop(LOCK_DEADLINE, None)  # the batch's lock deadline (set by _votes_in) ends with its transaction
        return out

    def _connection(self) -> Any:
        """PostgreSQL: this thread's connection, in autocommit mode (opened at the first batch,
        or after a batch failed)."""
        if self._conn is None:
            self._conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _in_doubt(self, reqs: Sequence[_VoteRequest], error: DBAPIError) -> list[VoteResult | BaseException]:
        """The batch's connection to PostgreSQL was lost, possibly after its COMMIT reached the
        server (while the answer was on its way): look on a fresh connection for each
        vote (its battle, session and time) and answer the ones there as recorded, the others
        with ``error`` (not saved). Raises ``error`` when the database cannot be read either."""
        ids = _lookup_ids(reqs)
        try:
            with self.db.read() as conn:
                rows = conn.execute(_STORED_VOTES, {"ids": list(ids)}).all() if ids else []
        except DBAPIError:
            raise error from None
        stored = {row.battle_id: row for row in rows}
        out: list[VoteResult | BaseException] = []
        for r in reqs:
            row = stored.get(r.battle_id)
            if row is not None and row.judge == r.session_hash and row.tstamp == r.now:
                out.append(VoteResult(r.battle_id, row.winner, row.model_a, row.model_b, bool(row.counted), row.reason, row.tstamp))
            else:
                out.append(error)
        return out

    def _close_conn(self, invalidate: bool = False) -> None:
        """Give this thread's connection back to the pool, or with ``invalidate`` throw it away
        (a batch failed on it: its transaction may still be open)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if invalidate:
                    conn.invalidate()
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection: nothing more to release
                pass

    def _loop(self) -> None:
        try:
            self._serve()
        finally:
            self._close_conn()

    def _serve(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)
                    break
                batch.append(nxt)
            try:
                results: list[Any] = self._commit(batch)
            except BaseException as e:  # noqa: BLE001 - the commit failed: nobody's vote is in
                results = [e] * len(batch)
            self._settle(batch, results)

    @staticmethod
    def _settle(batch: list[tuple[_VoteRequest, Any]], results: list[Any]) -> None:
        by_loop: dict[Any, list[tuple["asyncio.Future", Any]]] = {}
        for (_, fut), res in zip(batch, results):
            if isinstance(fut, tuple):
                by_loop.setdefault(fut[0], []).append((fut[1], res))
            elif isinstance(res, BaseException):
                fut.set_exception(res)
            else:
                fut.set_result(res)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_async, items)
            except RuntimeError:  # that event loop is closed: nobody is waiting any more
                pass


def _settle_async(items: list[tuple["asyncio.Future", Any]]) -> None:
    for fut, res in items:
        if fut.done():  # the request was cancelled (client gone); its vote is committed anyway
            continue
        if isinstance(res, BaseException):
            fut.set_exception(res)
        else:
            fut.set_result(res)


def _why_refused(db: Database, battle_id: str, session_hash: str, expected_version: int | None, now: float) -> VoteRefused:
    b = get_battle(db, battle_id, session_hash)
    if b is None:
        return VoteRefused("not_found", "No such battle in this session: the vote was refused (start a new battle to vote).")
    if b.status == "voted":
        return VoteRefused("already_voted", "This battle has already been voted on; each battle takes one vote.")
    if b.status == "failed":
        return VoteRefused("failed", "A model failed to answer in this battle, so it cannot be voted on. Start a new round.")
    if b.mode == "direct":
        return VoteRefused("not_votable", "A direct chat has nothing to vote on.")
    if b.turns < 1:
        return VoteRefused("no_answer", "Nothing to vote on yet: send a prompt and wait for both answers.")
    if not b.streaming and empty_answer(b):
        return VoteRefused("empty_answer", "An answer is empty (stopped before any text), so there is nothing to compare: "
                           "the vote was not recorded. Send another prompt, or start a new round.")
    return VoteRefused("busy", "The answers are still being written (or changed meanwhile); vote when they are done.")
