"""Reading back: the voted battles as a :class:`~openarena.data.battles.BattleTable` in the
canonical schema (:func:`read_battles`, the same rows a clean_battle file of them would give) and
the votes per model (:func:`vote_counts`).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from sqlalchemy import func, select

from openarena.data.battles import BattleTable, FilterStep
from openarena.errors import DataError
from openarena.storage.db import Database
from openarena.storage.integrity import REASON_DETAILS, reason_code
from openarena.storage.models import Battle, Vote

__all__ = ["READ_COLUMNS", "read_battles", "vote_counts"]

B = Battle.__table__
V = Vote.__table__


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
