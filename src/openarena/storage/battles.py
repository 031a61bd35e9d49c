"""The battle's lifecycle in the database: create a battle, take and renew the streaming lease
of a turn, store the conversations after it, read one battle back.

Each write is one short transaction whose first statement is a conditional ``UPDATE`` (a
compare-and-set on the battle's status, session, version and lease), so concurrent requests on
the same battle (two turns, a regenerate racing a vote) cannot both succeed, on SQLite and on
PostgreSQL alike. The vote that closes a battle is :mod:`openarena.storage.votes`; reading the
voted battles back is :mod:`openarena.storage.reading`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, or_, select, update

from openarena.storage.db import Database
from openarena.storage.models import ARENAS, BATTLE_MODES, Battle

__all__ = [
    "BattleRecord",
    "acquire_turn",
    "create_battle",
    "empty_answer",
    "finish_turn",
    "get_battle",
    "new_battle_id",
    "release_turn",
    "renew_lease",
]

B = Battle.__table__


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


def is_battle_id(battle_id: str) -> bool:
    """Whether ``battle_id`` could name a stored battle: no NUL character (PostgreSQL text
    cannot hold one, and a statement carrying it fails whole, with every other row in it)."""
    return "\x00" not in battle_id


def get_battle(db: Database, battle_id: str, session_hash: str | None = None) -> BattleRecord | None:
    """The battle ``battle_id`` (only if it belongs to ``session_hash`` when given), else None
    (also for an id no battle can have: one with a NUL, which PostgreSQL text cannot hold)."""
    if not is_battle_id(battle_id):
        return None
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
