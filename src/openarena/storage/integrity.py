"""What the vote-integrity checks read and write in the database: each voter key's battles and
votes in a window (:func:`load_voter_keys`, with PostgreSQL advisory locks so workers decide one
voter's votes one after the other), the withdrawal of a flagged key's votes
(:func:`withdraw_votes`), the reason codes of votes not counted (:func:`reason_code`), and the
per-voter activity behind ``openarena voters db`` (:func:`voter_activity`).

The policy (thresholds and decisions) is :mod:`openarena.serving.vote_integrity`; the vote
transaction calls it through the ``integrity`` hook of
:func:`~openarena.storage.votes.record_vote` / :class:`~openarena.storage.votes.VoteWriter`.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, case, func, literal_column, null, select, union_all, update

from openarena.storage.db import lock_budget, pg_pipeline
from openarena.storage.models import Battle, Vote

__all__ = [
    "INTEGRITY_CODES", "REASON_DETAILS", "VoterKey", "load_voter_keys", "pair_key", "reason_code", "send_voter_key_reads", "send_withdrawals",
    "tally_voter_keys", "voter_activity", "withdraw_votes",
]

B = Battle.__table__
V = Vote.__table__

#: Reasons decided here (never revealed to the voter).
INTEGRITY_CODES = ("selective_voting", "abandon_ratio", "daily_cap")
#: What each reason code means, for provenance and reports.
REASON_DETAILS = {
    "identity_leak": "votes on battles where an answer or prompt named a model or vendor",
    "selective_voting": "votes of voters whose votes concentrate on one model against the battles they were shown",
    "abandon_ratio": "votes of voters who abandon too many answered battles per vote",
    "daily_cap": "votes past the per-voter cap of the day",
}


def reason_code(reason: str | None) -> str | None:
    """The code of a stored ``votes.reason``: the text before the first ':' with spaces as '_'
    ('identity leak: ...' -> 'identity_leak'); None for None."""
    if reason is None:
        return None
    return reason.split(":", 1)[0].strip().replace(" ", "_") or "other"


@dataclass
class VoterKey:
    """What the database holds about one voter key in the window: votes (every mode), flagged
    (a vote of the key was withheld for selective voting: the flag is sticky), pairs
    ({(a, b): [shown, voted]} over its answered, non-failed anonymous battles, a < b)."""

    votes: int = 0
    flagged: bool = False
    pairs: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def shown_voted(self) -> tuple[int, int]:
        """(answered battles shown, battles voted)."""
        s = v = 0
        for sv in self.pairs.values():
            s += sv[0]
            v += sv[1]
        return s, v


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The unordered pair as a sorted tuple."""
    return (a, b) if a <= b else (b, a)


def _shown_statement(kind: str, col, keys: str):
    return (
        select(literal_column("'shown'"), literal_column(f"'{kind}'"), col, B.c.model_a, B.c.model_b, B.c.status, func.count(), literal_column("0"))
        .where(col.in_(bindparam(keys, expanding=True)), B.c.created_at >= bindparam("since"), B.c.mode == "anony", B.c.turns > 0, B.c.status != "failed")
        .group_by(col, B.c.model_a, B.c.model_b, B.c.status)
    )


def _votes_statement(kind: str, col, keys: str):
    flagged = func.sum(case((V.c.reason.like("selective_voting%"), 1), else_=0))
    return (
        select(literal_column("'votes'"), literal_column(f"'{kind}'"), col, null(), null(), null(), func.count(), flagged)
        .where(col.in_(bindparam(keys, expanding=True)), V.c.tstamp >= bindparam("since")).group_by(col)
    )


# Built once (SQLAlchemy then reuses its compiled form), and read in one statement (one round
# trip, one execution in Python: the vote transaction holds the voters' locks meanwhile): a
# key's battles of the window are one range of ix_battles_session_created /
# ix_battles_ip_created, its votes one range of ix_votes_judge_tstamp / ix_votes_ip_tstamp.
# Rows: (what 'shown' | 'votes', kind, key, model_a, model_b, status, n, flagged).
_READ_KEYS = union_all(
    _shown_statement("session", B.c.session_hash, "sessions"), _votes_statement("session", V.c.judge, "sessions"),
    _shown_statement("ip", B.c.ip_hash, "ips"), _votes_statement("ip", V.c.ip_hash, "ips"),
)
_WITHDRAW = {
    kind: update(V).where(col == bindparam("key"), V.c.tstamp >= bindparam("since"), V.c.counted.is_(True)).values(counted=False, reason=bindparam("why"))
    for kind, col in (("session", V.c.judge), ("ip", V.c.ip_hash))
}
# PostgreSQL: every key of a batch taken with a transaction-scoped advisory lock in one
# statement, in the order of their lock ids: every transaction takes its locks in that same
# order, so two batches sharing keys queue, never deadlock. The keys are 's:<session hash>'
# and 'i:<ip hash>'.
_PG_ADVISORY_LOCKS = (
    "SELECT count(pg_advisory_xact_lock(h)) FROM "
    "(SELECT DISTINCT hashtextextended(k, 7) AS h FROM unnest(CAST(%(keys)s AS text[])) AS k ORDER BY h) AS ids"
)


@functools.lru_cache(maxsize=256)
def _pg_read_keys(n_sessions: int, n_ips: int) -> str:
    """:data:`_READ_KEYS` for that many session and IP keys as the driver's SQL (psycopg,
    ``%(name)s``; the lists as ``IN (%(sessions_1)s, ...)``, so PostgreSQL plans it as it plans
    the statement SQLAlchemy sends)."""
    from sqlalchemy.dialects.postgresql import psycopg

    stmt = _READ_KEYS.params(sessions=[""] * n_sessions, ips=[""] * n_ips, since=0.0)
    return str(stmt.compile(dialect=psycopg.dialect(), compile_kwargs={"render_postcompile": True}))


@functools.cache
def _pg_constants(stmt) -> dict[str, Any]:
    """The values of the constant parameters of ``stmt`` compiled for PostgreSQL (those that
    are not the keys, the window or the reason)."""
    from sqlalchemy.dialects.postgresql import psycopg

    return {k: v for k, v in stmt.compile(dialect=psycopg.dialect()).params.items() if k not in ("sessions", "ips", "since", "key", "why")}


@functools.cache
def _pg_withdraw(kind: str) -> tuple[str, dict[str, Any]]:
    """:data:`_WITHDRAW` of ``kind`` as the driver's SQL, with the values of its constant
    parameters."""
    from sqlalchemy.dialects.postgresql import psycopg

    return str(_WITHDRAW[kind].compile(dialect=psycopg.dialect())), _pg_constants(_WITHDRAW[kind])


def tally_voter_keys(rows, sessions: Sequence[str], ips: Sequence[str]) -> dict[tuple[str, str], VoterKey]:
    """The rows of a voter-key read (:func:`send_voter_key_reads`) as {('session' | 'ip', key):
    VoterKey}, with an empty VoterKey for every key of ``sessions`` and ``ips`` without rows."""
    out = {("session", k): VoterKey() for k in sessions}
    out.update({("ip", k): VoterKey() for k in ips})
    for what, kind, key, a, b, status, n, flagged in rows:
        vk = out[(kind, key)]
        if what == "shown":
            sv = vk.pairs.setdefault(pair_key(a, b), [0, 0])
            sv[0] += int(n)
            if status == "voted":
                sv[1] += int(n)
        else:
            vk.votes = int(n)
            vk.flagged = bool(flagged)
    return out


def send_voter_key_reads(conn: Any, raw: Any, sessions: Sequence[str], ips: Sequence[str], since: float) -> Any:
    """PostgreSQL, inside a pipeline of the vote transaction
    (:func:`~openarena.storage.db.pg_pipeline`, after the battles' rows are locked): take every
    key with a transaction-scoped advisory lock, in sorted order, then read them; each preceded
    by the transaction's lock deadline (:func:`~openarena.storage.db.lock_budget`). The read
    runs after the locks are granted, with its own snapshot, so it sees every vote committed by
    a key's previous holder.

    Parameters: conn, the SQLAlchemy connection of the pipeline; raw, its driver connection;
    sessions and ips, the keys (sorted, distinct); since, start of the window (Unix seconds).
    Returns: the read's cursor: fetch its rows once the pipeline is synced (a fetch inside it
    costs one more round trip) and tally them with :func:`tally_voter_keys`.
    """
    lock_budget(conn, raw)
    raw.cursor().execute(_PG_ADVISORY_LOCKS, {"keys": [f"s:{k}" for k in sessions] + [f"i:{k}" for k in ips]})
    lock_budget(conn, raw)  # the read may wait for a lock too: what is left after the locks' wait
    listed = {**{f"sessions_{i}": k for i, k in enumerate(sessions, 1)}, **{f"ips_{i}": k for i, k in enumerate(ips, 1)}}
    read = raw.cursor()
    read.execute(_pg_read_keys(len(sessions), len(ips)), {**_pg_constants(_READ_KEYS), "since": since, **listed})
    return read


def load_voter_keys(conn: Any, backend: str, sessions: Sequence[str], ips: Sequence[str], since: float) -> dict[tuple[str, str], VoterKey]:
    """Lock and read the voter keys of a vote transaction.

    Parameters: conn, the open write transaction; backend, 'sqlite' | 'postgresql'; sessions and
    ips, the keys (hashes); since, start of the window (Unix seconds).
    Returns: {('session' | 'ip', key): VoterKey}. On PostgreSQL each key is first taken with a
    transaction-scoped advisory lock, in sorted order (SQLite's write transaction already
    excludes every other writer), so concurrent workers decide one voter's votes one after the
    other; the locks and the read are sent together (:func:`send_voter_key_reads` in one
    :func:`~openarena.storage.db.pg_pipeline`: one round trip while the batch's rows are locked).
    """
    sessions, ips = sorted(set(sessions)), sorted(set(ips))
    if not sessions and not ips:
        return {}
    if backend != "postgresql":
        return tally_voter_keys(conn.execute(_READ_KEYS, {"sessions": sessions, "ips": ips, "since": since}), sessions, ips)
    with pg_pipeline(conn, budget=False) as raw:  # send_voter_key_reads sends the lock deadlines
        read = send_voter_key_reads(conn, raw, sessions, ips, since)
    return tally_voter_keys(read.fetchall(), sessions, ips)


# PostgreSQL: the rows a batch's withdrawals will update, locked first in one statement in id
# order, so that two batches withdrawing overlapping votes through different keys (a session in
# one, the IP of the same votes in the other) queue instead of deadlocking
_PG_LOCK_WITHDRAWN = (
    "SELECT count(*) FROM (SELECT id FROM votes WHERE tstamp >= %(since)s AND counted "
    "AND (judge = ANY(CAST(%(sessions)s AS text[])) OR ip_hash = ANY(CAST(%(ips)s AS text[]))) ORDER BY id FOR UPDATE) AS withdrawn"
)


def send_withdrawals(raw: Any, withdrawals: Sequence[tuple[str, str, str]], since: float) -> None:
    """PostgreSQL, inside a pipeline of the vote transaction: :func:`withdraw_votes` for each
    (kind, key, reason) of ``withdrawals``, after locking every row they update in id order (one
    statement: concurrent withdrawals through different keys of the same votes cannot deadlock)."""
    if not withdrawals:
        return
    sessions = [k for kind, k, _ in withdrawals if kind == "session"]
    ips = [k for kind, k, _ in withdrawals if kind == "ip"]
    raw.cursor().execute(_PG_LOCK_WITHDRAWN, {"since": since, "sessions": sessions, "ips": ips})
    for kind, key, reason in withdrawals:
        sql, constants = _pg_withdraw(kind)
        raw.cursor().execute(sql, {**constants, "key": key, "since": since, "why": reason[:200]})


def withdraw_votes(conn: Any, kind: str, key: str, since: float, reason: str) -> int:
    """Mark every counted vote of the voter key (kind 'session' | 'ip') cast at or after
    ``since`` not counted, with ``reason``; returns how many."""
    res = conn.execute(_WITHDRAW[kind], {"key": key, "since": since, "why": reason[:200]})
    return int(res.rowcount or 0)


def voter_activity(db, since: float | None = None):
    """Per voter key, what the integrity checks look at, over every anonymous battle (or those
    created at or after ``since``, Unix seconds).

    Returns: DataFrame with one row per (kind, voter): kind ('session' | 'ip'), voter (the hash),
    battles (answered, non-failed anonymous battles), voted, abandoned, abandon_ratio
    (abandoned / max(voted, 1)), votes (all votes of the key, every mode), not_counted, reasons
    ('code: n, ...' of the votes not counted), pairs ({(a, b): (shown, voted)}, for the
    selective-voting test).
    """
    import pandas as pd

    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(kind: str, key: str) -> dict[str, Any]:
        return rows.setdefault((kind, key), {"kind": kind, "voter": key, "pairs": {}, "votes": 0, "not_counted": 0, "why": defaultdict(int)})

    with db.read() as conn:
        for kind, col in (("session", B.c.session_hash), ("ip", B.c.ip_hash)):
            cond = [col.is_not(None), B.c.mode == "anony", B.c.turns > 0, B.c.status != "failed"]
            if since is not None:
                cond.append(B.c.created_at >= since)
            q = select(col, B.c.model_a, B.c.model_b, B.c.status, func.count()).where(*cond).group_by(col, B.c.model_a, B.c.model_b, B.c.status)
            for key, a, b, status, n in conn.execute(q):
                sv = row(kind, key)["pairs"].setdefault(pair_key(a, b), [0, 0])
                sv[0] += int(n)
                sv[1] += int(n) if status == "voted" else 0
            cond = [col.is_not(None)] + ([V.c.tstamp >= since] if since is not None else [])
            q = select(col, V.c.counted, V.c.reason, func.count()).select_from(V.join(B, V.c.battle_id == B.c.id)).where(*cond).group_by(col, V.c.counted, V.c.reason)
            for key, counted, reason, n in conn.execute(q):
                r = row(kind, key)
                r["votes"] += int(n)
                if not counted:
                    r["not_counted"] += int(n)
                    r["why"][reason_code(reason) or "other"] += int(n)
    out = []
    for r in rows.values():
        shown = sum(sv[0] for sv in r["pairs"].values())
        voted = sum(sv[1] for sv in r["pairs"].values())
        out.append({
            "kind": r["kind"], "voter": r["voter"], "battles": shown, "voted": voted, "abandoned": shown - voted,
            "abandon_ratio": (shown - voted) / max(voted, 1), "votes": r["votes"], "not_counted": r["not_counted"],
            "reasons": ", ".join(f"{k}: {n}" for k, n in sorted(r["why"].items())),
            "pairs": {p: tuple(sv) for p, sv in r["pairs"].items()},
        })
    cols = ["kind", "voter", "battles", "voted", "abandoned", "abandon_ratio", "votes", "not_counted", "reasons", "pairs"]
    return pd.DataFrame(out, columns=cols)
