"""Repository functions of the red-team game: every read and write of ``redteam_rounds``.

As for battles, each write is one short transaction whose first statement is a conditional
``UPDATE`` (compare-and-set on the round's status, player and lease), so a round cannot take two
turns at once, cannot go on after it ended (no replay), and cannot be ended twice.

Reading back: :func:`read_rounds` returns the ended rounds as a
:class:`~openarena.data.rounds.RoundTable` (player = handle, outcome win/loss for the player, a
forfeit is a loss; rounds whose model failed are left out), the input of the extended
Bradley-Terry fit.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from openarena.data.rounds import RoundTable
from openarena.storage.db import Database
from openarena.storage.models import RedTeamHandle, RedTeamRound

__all__ = ["RoundRecord", "abandon_open_rounds", "begin_round_turn", "claim_handle", "create_round", "end_round", "finish_round_turn", "get_round", "handle_owner", "read_rounds", "round_rows"]

R = RedTeamRound.__table__
H = RedTeamHandle.__table__
ENDED = ("won", "lost", "forfeit")
#: an open round untouched this long counts as a loss for the player (walking away is a forfeit)
STALE_S = 3600.0


@dataclass(frozen=True)
class RoundRecord:
    """A snapshot of one round row (see :class:`~openarena.storage.models.RedTeamRound`)."""

    id: str
    player_hash: str
    handle: str
    model: str
    target: str
    target_kind: str
    secret: str | None
    status: str
    turns: int
    conversation: list[dict[str, Any]]
    created_at: float
    ended_at: float | None
    lease_until: float | None
    version: int


def _record(row: Any) -> RoundRecord:
    m = row._mapping
    return RoundRecord(**{k: m[k] for k in RoundRecord.__dataclass_fields__})


def handle_owner(db: Database, handle: str) -> str | None:
    """The player_hash of the session that claimed ``handle``, or None."""
    with db.read() as conn:
        row = conn.execute(select(H.c.player_hash).where(H.c.handle == handle)).first()
    return row[0] if row else None


def claim_handle(db: Database, handle: str, player_hash: str, now: float | None = None) -> bool:
    """Claim ``handle`` for ``player_hash`` (or confirm it is already theirs). Returns False when
    another player owns it. Atomic: the handle is the table's primary key, so of two sessions
    racing for a new handle exactly one wins."""
    owner = handle_owner(db, handle)
    if owner is not None:
        return owner == player_hash
    try:
        with db.write() as conn:
            conn.execute(insert(H).values(handle=handle, player_hash=player_hash, created_at=time.time() if now is None else now))
        return True
    except IntegrityError:
        return handle_owner(db, handle) == player_hash


def abandon_open_rounds(db: Database, player_hash: str, now: float | None = None) -> int:
    """End this player's open rounds that have no running turn as forfeits (a loss): starting a
    new round abandons the old one, so a player cannot keep only the rounds they win. Returns
    the number ended."""
    now = time.time() if now is None else now
    with db.write() as conn:
        res = conn.execute(
            update(R)
            .where(R.c.player_hash == player_hash, R.c.status == "open", or_(R.c.lease_until.is_(None), R.c.lease_until < now))
            .values(status="forfeit", ended_at=now, version=R.c.version + 1)
        )
    return int(res.rowcount or 0)


def create_round(db: Database, *, player_hash: str, handle: str, model: str, target: str, target_kind: str, secret: str | None, now: float | None = None) -> str:
    """Insert a new open round; returns its id (128 random bits, unguessable)."""
    now = time.time() if now is None else now
    rid = secrets.token_hex(16)
    with db.write() as conn:
        conn.execute(insert(R).values(
            id=rid, player_hash=player_hash, handle=handle, model=model, target=target, target_kind=target_kind,
            secret=secret, status="open", turns=0, conversation=[], created_at=now, ended_at=None, lease_until=None, version=0,
        ))
    return rid


def get_round(db: Database, round_id: str, player_hash: str | None = None) -> RoundRecord | None:
    """The round (only if it belongs to ``player_hash`` when given), else None."""
    cond = [R.c.id == round_id]
    if player_hash is not None:
        cond.append(R.c.player_hash == player_hash)
    with db.read() as conn:
        row = conn.execute(select(R).where(*cond)).first()
    return _record(row) if row is not None else None


def begin_round_turn(db: Database, round_id: str, player_hash: str, lease_s: float = 120.0, now: float | None = None) -> RoundRecord | None:
    """Take the round's lease for one turn if it is open, the player's, and no turn is running.
    Returns the round, or None (look at :func:`get_round` to tell why)."""
    now = time.time() if now is None else now
    with db.write() as conn:
        res = conn.execute(
            update(R)
            .where(R.c.id == round_id, R.c.player_hash == player_hash, R.c.status == "open", or_(R.c.lease_until.is_(None), R.c.lease_until < now))
            .values(lease_until=now + lease_s, version=R.c.version + 1)
        )
        if res.rowcount != 1:
            return None
        row = conn.execute(select(R).where(R.c.id == round_id)).first()
    return _record(row)


def finish_round_turn(db: Database, round_id: str, *, conversation: list[dict[str, Any]], turns: int, status: str, now: float | None = None) -> None:
    """Store the conversation after a turn, set the status ('open' to go on, or 'won', 'lost',
    'failed') and release the lease. Only an open round changes."""
    now = time.time() if now is None else now
    values: dict[str, Any] = dict(conversation=conversation, turns=turns, status=status, lease_until=None, version=R.c.version + 1)
    if status != "open":
        values["ended_at"] = now
    with db.write() as conn:
        conn.execute(update(R).where(R.c.id == round_id, R.c.status == "open").values(**values))


def end_round(db: Database, round_id: str, player_hash: str, status: str = "forfeit", now: float | None = None) -> RoundRecord | None:
    """End an open round of this player that has no running turn (a forfeit). Returns the
    ended round, or None when it was not open, not the player's, or busy."""
    now = time.time() if now is None else now
    with db.write() as conn:
        res = conn.execute(
            update(R)
            .where(R.c.id == round_id, R.c.player_hash == player_hash, R.c.status == "open", or_(R.c.lease_until.is_(None), R.c.lease_until < now))
            .values(status=status, ended_at=now, version=R.c.version + 1)
        )
        if res.rowcount != 1:
            return None
        row = conn.execute(select(R).where(R.c.id == round_id)).first()
    return _record(row)


def round_rows(db: Database, *, ended_only: bool = True, stale_s: float = STALE_S, now: float | None = None) -> pd.DataFrame:
    """Rounds as a DataFrame (every column but the secret and the conversation), oldest first.
    With ``ended_only``: the ended rounds, plus open rounds untouched for ``stale_s`` seconds
    (walked away from: reported with status 'forfeit', a loss, ended at created_at + stale_s)."""
    cols = [c for c in R.columns if c.name not in ("secret", "conversation")]
    q = select(*cols).order_by(R.c.created_at, R.c.id)
    now = time.time() if now is None else now
    if ended_only:
        stale = (R.c.status == "open") & (R.c.created_at < now - stale_s) & or_(R.c.lease_until.is_(None), R.c.lease_until < now)
        q = q.where(R.c.status.in_(ENDED) | stale)
    from sqlalchemy.exc import ProgrammingError, OperationalError

    from openarena.errors import DataError

    try:
        with db.read() as conn:
            rows = conn.execute(q).all()
    except (ProgrammingError, OperationalError):  # an arena database from before the red-team game
        raise DataError("this database has no red-team rounds table", db.describe(), expected="an arena database migrated by `openarena serve` (version 0003 or later)") from None
    frame = pd.DataFrame(rows, columns=[c.name for c in cols])
    if ended_only and len(frame):
        walked = frame["status"] == "open"
        frame.loc[walked, "ended_at"] = frame.loc[walked, "created_at"] + stale_s
        frame.loc[walked, "status"] = "forfeit"
    return frame


def read_rounds(db: Database) -> RoundTable:
    """Ended rounds as a RoundTable: player (the handle), model, target, won, tstamp (end time),
    round_id. Forfeits (and rounds walked away from, see :func:`round_rows`) are losses; failed
    rounds are left out. Names are taken exactly as stored (handles were validated on entry).
    Raises: DataError when there are no ended rounds."""
    from openarena.data.rounds import rounds_from_frame

    f = round_rows(db)
    frame = pd.DataFrame({
        "player": f.get("handle", pd.Series(dtype=str)), "model": f.get("model", pd.Series(dtype=str)),
        "target": f.get("target", pd.Series(dtype=str)),
        "outcome": (f.get("status", pd.Series(dtype=str)) == "won").map({True: "win", False: "loss"}),
        "tstamp": f.get("ended_at", pd.Series(dtype=float)), "round_id": f.get("id", pd.Series(dtype=str)),
    })
    return rounds_from_frame(frame, db.describe())
