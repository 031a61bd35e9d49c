"""Repository functions: every read and write of battles and votes goes through here.

Each write is one short transaction whose first statement is a conditional ``UPDATE`` (a
compare-and-set on the battle's status, session, version and lease), so concurrent requests on
the same battle (two votes, a vote during a streaming turn, a regenerate racing a vote) cannot
both succeed, on SQLite and on PostgreSQL alike; the unique ``votes.battle_id`` is the last line
of defence against a second vote.

Reading back: :func:`read_battles` returns the voted battles as a
:class:`~openarena.data.battles.BattleTable` in the canonical schema, the same rows a clean_battle
file of them would give.
"""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pandas as pd
from sqlalchemy import JSON, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from openarena.data.battles import BattleTable, FilterStep
from openarena.data.schema import WINNERS
from openarena.errors import DataError, OpenArenaError
from openarena.storage.db import Database
from openarena.storage.integrity import REASON_DETAILS, reason_code
from openarena.storage.models import ARENAS, BATTLE_MODES, Battle, Vote

__all__ = [
    "BattleRecord",
    "VoteRefused",
    "VoteResult",
    "acquire_turn",
    "create_battle",
    "finish_turn",
    "get_battle",
    "new_battle_id",
    "read_battles",
    "record_vote",
    "release_turn",
    "VoteDecider",
    "renew_lease",
    "empty_answer",
    "VoteWriter",
    "record_vote_async",
    "vote_counts",
]

B = Battle.__table__
V = Vote.__table__


#: The vote-integrity hook: called inside the vote transaction with (connection, backend,
#: [(battle, vote time)]) for the votes about to be recorded, returns one reason not to count
#: each (None: counts). :class:`openarena.serving.vote_integrity.IntegrityPolicy` is one.
VoteDecider = Callable[[Any, str, Sequence[tuple["BattleRecord", float]]], list[str | None]]


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
class BattleRecord:
    """A snapshot of one battle row (see :mod:`openarena.storage.models` for the fields)."""

    id: str
    mode: str
    model_a: str
    model_b: str | None
    session_hash: str
    status: str
    sampling_policy: str | None
    sampling_prob: float | None
    created_at: float
    updated_at: float
    turns: int
    conversation_a: list[dict[str, Any]]
    conversation_b: list[dict[str, Any]] | None
    version: int
    lease_until: float | None
    error: str | None
    meta: dict[str, Any] | None = field(default=None)
    ip_hash: str | None = field(default=None)
    arena: str = field(default="text")

    @property
    def streaming(self) -> bool:
        """True while a turn holds the lease."""
        return self.lease_until is not None and self.lease_until > time.time()


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


def new_battle_id() -> str:
    """32 hex characters from 128 random bits: unguessable, so ids cannot be enumerated."""
    return secrets.token_hex(16)


def _record(row: Any) -> BattleRecord:
    m = row._mapping
    return BattleRecord(**{k: m[k] for k in BattleRecord.__dataclass_fields__})


def create_battle(
    db: Database,
    *,
    mode: str,
    model_a: str,
    model_b: str | None,
    session_hash: str,
    sampling_policy: str | None = None,
    sampling_prob: float | None = None,
    battle_id: str | None = None,
    now: float | None = None,
    ip_hash: str | None = None,
    arena: str = "text",
) -> str:
    """Insert a new open battle with empty conversations; returns its id.

    Parameters: mode, 'anony' | 'named' | 'direct' (model_b None only for 'direct');
    sampling_prob, probability in (0, 1] of the unordered pair under ``sampling_policy``;
    ip_hash, the hashed client address (the second voter key of :mod:`openarena.storage.integrity`);
    arena, 'text' | 'vision' | 'code' (the leaderboard its vote counts on).
    Raises: ValueError for an unknown mode or arena, or a missing/identical model_b.
    """
    if mode not in BATTLE_MODES:
        raise ValueError(f"unknown battle mode {mode!r}")
    if arena not in ARENAS:
        raise ValueError(f"unknown arena {arena!r}")
    if mode != "direct" and (not model_b or model_b == model_a):
        raise ValueError("a battle needs two different models")
    now = time.time() if now is None else now
    bid = battle_id or new_battle_id()
    with db.write() as conn:
        conn.execute(
            insert(B).values(
                id=bid, mode=mode, model_a=model_a, model_b=model_b if mode != "direct" else None,
                session_hash=session_hash, status="open", sampling_policy=sampling_policy,
                sampling_prob=sampling_prob, created_at=now, updated_at=now, turns=0,
                conversation_a=[], conversation_b=[] if mode != "direct" else None, version=0,
                lease_until=None, error=None, meta=None, ip_hash=ip_hash, arena=arena,
            )
        )
    return bid


def get_battle(db: Database, battle_id: str, session_hash: str | None = None) -> BattleRecord | None:
    """The battle ``battle_id`` (only if it belongs to ``session_hash`` when given), else None."""
    cond = [B.c.id == battle_id]
    if session_hash is not None:
        cond.append(B.c.session_hash == session_hash)
    with db.read() as conn:
        row = conn.execute(select(B).where(*cond)).first()
    return _record(row) if row is not None else None


def acquire_turn(db: Database, battle_id: str, session_hash: str, lease_s: float = 300.0, now: float | None = None) -> BattleRecord | None:
    """Take the battle's streaming lease (one turn at a time), if it is open, belongs to the
    session and no other turn holds a live lease.

    Returns: the battle after taking the lease, or None if it could not be taken (look at
    :func:`get_battle` to tell why). A lease left by a killed process expires after lease_s.
    """
    now = time.time() if now is None else now
    with db.write() as conn:
        res = conn.execute(
            update(B)
            .where(
                B.c.id == battle_id,
                B.c.session_hash == session_hash,
                B.c.status == "open",
                or_(B.c.lease_until.is_(None), B.c.lease_until < now),
            )
            .values(lease_until=now + lease_s, version=B.c.version + 1, updated_at=now)
        )
        if res.rowcount != 1:
            return None
        row = conn.execute(select(B).where(B.c.id == battle_id)).first()
    return _record(row)


def finish_turn(
    db: Database,
    battle_id: str,
    *,
    conversation_a: list[dict[str, Any]],
    conversation_b: list[dict[str, Any]] | None,
    turns: int,
    error: str | None = None,
    meta: dict[str, Any] | None = None,
    now: float | None = None,
) -> None:
    """Store the conversations after a turn (complete, stopped or failed) and release the lease.

    ``error`` (internal detail) marks the battle 'failed': it can no longer be voted on.
    """
    now = time.time() if now is None else now
    values: dict[str, Any] = dict(
        conversation_a=conversation_a, conversation_b=conversation_b, turns=turns, lease_until=None,
        version=B.c.version + 1, updated_at=now,
    )
    if meta is not None:
        values["meta"] = meta
    if error is not None:
        values["status"] = "failed"
        values["error"] = error[:500]
    with db.write() as conn:
        conn.execute(update(B).where(B.c.id == battle_id, B.c.status == "open").values(**values))


def renew_lease(db: Database, battle_id: str, lease_s: float = 300.0, now: float | None = None) -> bool:
    """Extend the streaming lease of a turn that is still running to ``now + lease_s`` (called
    every lease_s / 3 seconds by the turn), so a turn that outlives ``lease_s`` keeps its
    battle: no vote and no other turn while it streams. Returns False when the battle is no
    longer open or holds no lease."""
    now = time.time() if now is None else now
    with db.write() as conn:
        res = conn.execute(
            update(B).where(B.c.id == battle_id, B.c.status == "open", B.c.lease_until.is_not(None)).values(lease_until=now + lease_s)
        )
    return res.rowcount == 1


def empty_answer(b: BattleRecord) -> bool:
    """True when the last answer of either side is empty (stopped or failed before any text, or
    an endpoint that sent nothing): there is nothing to compare, so no vote on it counts."""
    for conv in (b.conversation_a, b.conversation_b) if b.model_b is not None else (b.conversation_a,):
        last = next((m for m in reversed(conv or []) if isinstance(m, dict) and m.get("role") == "assistant"), None)
        content = last.get("content") if last is not None else None
        if not isinstance(content, str) or not content.strip():
            return True
    return False


def release_turn(db: Database, battle_id: str) -> None:
    """Drop the lease without changing the conversations (a turn that never started)."""
    with db.write() as conn:
        conn.execute(update(B).where(B.c.id == battle_id).values(lease_until=None, version=B.c.version + 1))


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


# The statements of a vote, built once: a batch of votes runs these four whatever its size.
# PostgreSQL: the rows are locked in id order (two batches never wait on each other in a cycle)
_SELECT_VOTABLE_LOCKED = select(B).where(B.c.id.in_(bindparam("ids", expanding=True))).order_by(B.c.id).with_for_update()
_CLOSE_BATTLE = (
    update(B).where(B.c.id == bindparam("b_id"), B.c.status == "open", B.c.version == bindparam("b_version"))
    .values(status="voted", updated_at=bindparam("b_now"), version=B.c.version + 1)
)
_INSERT_VOTE = insert(V)
# On SQLite the same three statements as driver SQL: no compilation or result processing per
# call (on a one-vote batch this halves the CPU of the transaction); JSON columns decoded here.
_COLUMNS = tuple(c.name for c in B.columns)
_JSON_COLUMNS = tuple(i for i, c in enumerate(B.columns) if isinstance(c.type, JSON))
_SQLITE_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM battles WHERE id IN ({{}})"
_SQLITE_CLOSE = "UPDATE battles SET status = 'voted', updated_at = ?, version = version + 1 WHERE id = ? AND status = 'open' AND version = ?"
_SQLITE_INSERT = "INSERT INTO votes (battle_id, winner, tstamp, judge, counted, reason, ip_hash) VALUES (?, ?, ?, ?, ?, ?, ?)"


def _sqlite_record(row: tuple) -> BattleRecord:
    values = list(row)
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


def _votes_in(conn: Any, db: Database, reqs: Sequence[_VoteRequest], integrity: VoteDecider | None = None) -> list[VoteResult | None | Exception]:
    """The votes of ``reqs`` inside one open write transaction, in four statements whatever
    their number: read the battles (locked on PostgreSQL; SQLite's write lock is already held),
    decide each vote in Python, close the battles (compare-and-set on status and version) and
    insert the votes. Returns one entry per request: its VoteResult, None when the battle is not
    votable (also for a second vote on the same battle in the batch), or the exception its
    ``check`` raised. With an ``integrity`` hook (:data:`VoteDecider`), the votes that pass are
    then decided by it (counted or not, with the reason; a vote
    already not counted for an identity leak keeps that reason). Raises: _BatchConflict or
    IntegrityError (the caller rolls back and redoes the batch one vote per savepoint, where
    each vote fails alone).
    """
    ids = tuple(dict.fromkeys(r.battle_id for r in reqs))
    sqlite = db.backend == "sqlite"
    if sqlite:
        rows = conn.exec_driver_sql(_SQLITE_SELECT.format(", ".join("?" * len(ids))), ids).all()
        battles = {row[0]: _sqlite_record(row) for row in rows}
    else:
        battles = {row.id: _record(row) for row in conn.execute(_SELECT_VOTABLE_LOCKED, {"ids": list(ids)})}
    out: list[VoteResult | None | Exception] = []
    closes: list[dict[str, Any]] = []
    votes: list[dict[str, Any]] = []
    taken: set[str] = set()
    accepted: list[tuple[int, _VoteRequest, BattleRecord, bool, str | None]] = []
    for r in reqs:
        b = battles.get(r.battle_id)
        if r.battle_id in taken or not _votable(b, r):
            out.append(None)
            continue
        counted, reason = r.counted, r.reason
        if r.check is not None:
            try:
                reason = r.check(b)
            except Exception as e:  # noqa: BLE001 - this caller's error only
                out.append(e)
                continue
            counted = reason is None
        taken.add(r.battle_id)
        accepted.append((len(out), r, b, counted, reason))
        out.append(None)
    withheld = integrity(conn, db.backend, [(b, r.now) for _, r, b, _, _ in accepted]) if integrity is not None and accepted else [None] * len(accepted)
    for (i, r, b, counted, reason), why in zip(accepted, withheld):
        if counted and why is not None:
            counted, reason = False, why
        closes.append({"b_id": r.battle_id, "b_version": b.version, "b_now": r.now})
        votes.append({"battle_id": r.battle_id, "winner": r.winner, "tstamp": r.now, "judge": r.session_hash, "counted": counted, "reason": reason, "ip_hash": b.ip_hash})
        out[i] = VoteResult(r.battle_id, r.winner, b.model_a, b.model_b, counted, reason, r.now)
    if closes and sqlite:
        if conn.exec_driver_sql(_SQLITE_CLOSE, [(c["b_now"], c["b_id"], c["b_version"]) for c in closes]).rowcount != len(closes):
            raise _BatchConflict()
        conn.exec_driver_sql(_SQLITE_INSERT, [(v["battle_id"], v["winner"], v["tstamp"], v["judge"], int(v["counted"]), v["reason"], v["ip_hash"]) for v in votes])
    elif closes:
        if conn.execute(_CLOSE_BATTLE, closes).rowcount != len(closes):
            raise _BatchConflict()
        conn.execute(_INSERT_VOTE, votes)
    return out


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
    the function returns only after the commit is durable.
    Returns: VoteResult with both model names (the reveal).
    Raises: VoteRefused with a code and a message for the voter (see the class).
    Source: FastChat gradio_block_arena_anony.py ``vote_last_response`` (one vote per battle,
    names revealed only afterwards); here the database enforces it.
    """
    if winner not in WINNERS:
        raise VoteRefused("bad_winner", f"unknown vote {winner!r}; expected one of {', '.join(WINNERS)}")
    req = _VoteRequest(battle_id, session_hash, winner, expected_version, counted, reason, check, time.time() if now is None else now)
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
) -> VoteResult:
    """:func:`record_vote` through a started :class:`VoteWriter`, awaited without holding a
    thread. Raises: VoteRefused."""
    if winner not in WINNERS:
        raise VoteRefused("bad_winner", f"unknown vote {winner!r}; expected one of {', '.join(WINNERS)}")
    req = _VoteRequest(battle_id, session_hash, winner, None, True, None, check, time.time())
    res = await writer.submit_async(req)
    if res is None:
        raise await asyncio.to_thread(_why_refused, db, battle_id, session_hash, None, req.now)
    return res


class VoteWriter:
    """Group commit of votes: one thread takes the votes waiting in its queue (up to
    ``max_batch``), records them in one durable transaction of four statements whatever their
    number (:func:`_votes_in`: one read of the battles, the decisions in Python, one executemany
    each to close the battles and insert the votes), commits once (one fsync on SQLite) and only
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
        """One durable transaction for the batch (four statements, see :func:`_votes_in`); if a
        vote conflicts (a vote row already there), the batch is rolled back and redone with each
        vote in its own savepoint, so only that vote is refused."""
        reqs = [req for req, _ in batch]
        try:
            with self.db.write(durable=True) as conn:
                return _votes_in(conn, self.db, reqs, self.integrity)
        except (_BatchConflict, IntegrityError):
            pass
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

    def _loop(self) -> None:
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


def vote_counts(db: Database, counted_only: bool = True) -> dict[str, int]:
    """Votes per model (both sides), over anonymous and named battles: {model: count}."""
    out: dict[str, int] = {}
    with db.read() as conn:
        for col in (B.c.model_a, B.c.model_b):
            q = select(col, func.count()).select_from(V.join(B, V.c.battle_id == B.c.id))
            if counted_only:
                q = q.where(V.c.counted.is_(True))
            for name, n in conn.execute(q.group_by(col)):
                if name is not None:
                    out[name] = out.get(name, 0) + int(n)
    return out


#: Columns of :func:`read_battles`, in order.
READ_COLUMNS = (
    "battle_id", "model_a", "model_b", "winner", "tstamp", "judge", "anony", "turn",
    "conversation_a", "conversation_b", "sampling_prob", "sampling_policy", "counted", "reason", "arena",
)


def read_battles(
    db: Database,
    *,
    modes: Sequence[str] = ("anony", "named"),
    counted_only: bool = True,
    conversations: bool = True,
    since: float | None = None,
    arenas: Sequence[str] | None = None,
) -> BattleTable:
    """The voted battles as a BattleTable, ordered by vote time.

    Parameters: modes, which battles ('anony', 'named'); counted_only, drop the votes marked not
    counted and record one FilterStep per reason code ('identity_leak', 'selective_voting',
    'abandon_ratio', 'daily_cap'; :func:`~openarena.storage.integrity.reason_code`) saying how
    many, so the leaderboard's provenance shows what was excluded and why;
    conversations, include conversation_a/b (lists of {"role", "content"[, "images"]}); since,
    Unix seconds, votes at or after it; arenas, only battles of these arenas ('text',
    'vision', 'code'; None = all).
    Returns: BattleTable whose frame has :data:`READ_COLUMNS` (conversation columns only when
    asked): battle_id (str), model_a, model_b, winner, tstamp (vote time, Unix s), judge (hashed
    voter id), anony (bool), turn (int, user turns), sampling_prob (float or NaN),
    sampling_policy, counted (bool), reason, arena; source is the database URL without password.
    Raises: DataError when there is no vote to read.
    """
    cols = [
        B.c.id.label("battle_id"), B.c.model_a, B.c.model_b, V.c.winner, V.c.tstamp, V.c.judge,
        B.c.mode, B.c.turns.label("turn"), B.c.sampling_prob, B.c.sampling_policy, V.c.counted, V.c.reason, B.c.arena,
    ]
    if conversations:
        cols += [B.c.conversation_a, B.c.conversation_b]
    q = select(*cols).select_from(V.join(B, V.c.battle_id == B.c.id)).where(B.c.mode.in_(tuple(modes)))
    if since is not None:
        q = q.where(V.c.tstamp >= since)
    if arenas is not None:
        q = q.where(B.c.arena.in_(tuple(arenas)))
    q = q.order_by(V.c.tstamp, V.c.id)
    with db.read() as conn:
        rows = conn.execute(q).all()
    source = f"db:{db.describe()}"
    if not rows:
        where = f" of the {', '.join(arenas)} arena" if arenas is not None else ""
        raise DataError(f"no votes{where} in the database yet", source, expected="at least one voted battle")
    frame = pd.DataFrame([r._mapping for r in rows])
    frame["anony"] = frame.pop("mode") == "anony"
    frame["counted"] = frame["counted"].astype(bool)
    frame["turn"] = frame["turn"].astype("int64")
    frame["sampling_prob"] = frame["sampling_prob"].astype(float)
    order = [c for c in READ_COLUMNS if c in frame.columns]
    frame = frame[order]
    table = BattleTable(frame, source)
    if counted_only:
        keep = frame["counted"].to_numpy()
        kept = frame.loc[keep].reset_index(drop=True)
        codes = frame.loc[~keep, "reason"].map(lambda r: reason_code(r) or "other").value_counts()
        if len(kept) == 0:
            why = ", ".join(f"{k} {n}" for k, n in codes.items())
            raise DataError(f"all {len(frame)} votes are marked not counted ({why})", source, expected="at least one counted vote")
        if not len(codes):  # provenance says the check ran and removed nothing
            codes = pd.Series({"identity_leak": 0})
        remaining = len(frame)
        for code, n in sorted(codes.items(), key=lambda kv: (kv[0] != "identity_leak", kv[0])):
            remaining -= int(n)
            detail = REASON_DETAILS.get(code, "votes marked not counted")
            table = table.with_frame(kept, FilterStep(code, int(n), remaining, f"{detail} (stored, not counted)"))
    return table
