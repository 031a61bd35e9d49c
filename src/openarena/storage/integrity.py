"""Vote integrity: which votes are stored but not counted, decided in the vote's own transaction
from counts in the database (so the limits hold across every worker and restart).

A voter has two keys: the session's voter hash (``battles.session_hash`` = ``votes.judge``) and
the hash of the client's IP address (``battles.ip_hash``, see
:func:`openarena.serving.sessions.network_hash`). Every check runs on both keys, over a rolling
window (``window_s``, default 24 h), in this order:

``selective_voting``: the voter's votes are concentrated on one model against the battles it was
    shown (:func:`openarena.analysis.selective_voting.selective_voting_test`, p <=
    ``selective_alpha`` after Bonferroni over the models). The flag is sticky for the window and
    retroactive: every vote of the key in the window is marked not counted, and so is every later
    one (the evidence says the earlier votes were chosen the same way).
``abandon_ratio``: abandoned battles (anonymous, answered, never voted) per voted battle above
    ``abandon_ratio`` once the key has ``abandon_min_battles`` answered battles. Not retroactive.
``daily_cap``: more than ``max_votes_session`` (or ``max_votes_ip``) votes in the window; the
    votes within the cap count.

Nothing of this is told to the voter: the vote is stored, the names revealed and the same
acknowledgement shown as for a counted vote, so the answer is not an oracle for the thresholds
(the reason is in ``votes.reason``, ``openarena voters db`` and the leaderboard's provenance).

Concurrency: on SQLite the vote transaction holds the database's only write lock; on PostgreSQL
each voter key is taken with a transaction-scoped advisory lock (``pg_advisory_xact_lock``) in
sorted order after the battles' row locks, so two workers deciding votes of the same voter queue
instead of both reading the count before either commits. Votes of one voter in the same group
commit are decided one after the other.

Sources: Chiang et al. (2024), Chatbot Arena, section 3 and 5 (rate limits, anomalous users);
Huang et al. (2025), "Exploring and Mitigating Adversarial Manipulation of Voting-Based
Leaderboards" (re-rolling to a recognised target; rate limits per user and IP, detection of
selective voting); LMArena's published policy (votes stored, suspicious ones excluded from the
leaderboard).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, text, update

from openarena.analysis.selective_voting import selective_voting_test
from openarena.storage.models import Battle, Vote

__all__ = ["INTEGRITY_CODES", "IntegrityPolicy", "decide_votes", "reason_code", "voter_activity"]

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


@dataclass(frozen=True)
class IntegrityPolicy:
    """Thresholds of the vote-integrity checks (0 turns a check off).

    Attributes: window_s, the rolling window in seconds (86,400: a day); max_votes_session /
    max_votes_ip, votes per key per window that count; abandon_ratio, abandoned / voted answered
    anonymous battles above which further votes do not count, once the key has
    abandon_min_battles answered battles; selective_alpha, level of the selective-voting test per
    key and per vote (Bonferroni over the models inside the test); selective_min_votes, fewer
    voted battles are not tested.

    Defaults and why: a session rarely votes 100 times a day, an IP shared by many people (a
    campus NAT) may vote more, hence 300; abandoning is common in arenas (people chat and leave:
    Chatbot Arena collects far fewer votes than conversations), so only more than 5 abandoned
    battles per vote after 20 battles is treated as re-rolling; selective_alpha = 1e-4 per test,
    re-tested at each vote: an honest key voting up to the cap (100 looks) is flagged with
    probability at most 100 x 1e-4 = 1% per day by the union bound, and in practice far less
    (the looks are strongly dependent).
    """

    window_s: float = 86_400.0
    max_votes_session: int = 100
    max_votes_ip: int = 300
    abandon_ratio: float = 5.0
    abandon_min_battles: int = 20
    selective_alpha: float = 1e-4
    selective_min_votes: int = 5

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError("window_s must be positive")
        if min(self.max_votes_session, self.max_votes_ip, self.abandon_ratio, self.abandon_min_battles, self.selective_min_votes) < 0:
            raise ValueError("vote-integrity limits must be >= 0 (0 = off)")
        if not 0 <= self.selective_alpha < 1:
            raise ValueError("selective_alpha must be in [0, 1)")


@dataclass
class _Key:
    """What the database says about one voter key, updated as the batch is decided."""

    votes: int = 0
    flagged: bool = False
    newly_flagged: str | None = None
    pairs: dict[tuple[str, str], list[int]] | None = None  # (a, b) -> [shown, voted]

    def shown_voted(self) -> tuple[int, int]:
        s = v = 0
        for sv in (self.pairs or {}).values():
            s += sv[0]
            v += sv[1]
        return s, v


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _load(conn: Any, col, keys: list[str], since: float) -> dict[str, _Key]:
    out = {k: _Key(pairs={}) for k in keys}
    if not keys:
        return out
    answered = and_(col.in_(keys), B.c.mode == "anony", B.c.created_at >= since, B.c.turns > 0, B.c.status != "failed")
    q = select(col, B.c.model_a, B.c.model_b, B.c.status, func.count()).where(answered).group_by(col, B.c.model_a, B.c.model_b, B.c.status)
    for key, a, b, status, n in conn.execute(q):
        sv = out[key].pairs.setdefault(_pair(a, b), [0, 0])
        sv[0] += int(n)
        if status == "voted":
            sv[1] += int(n)
    q = (
        select(col, V.c.reason, func.count()).select_from(V.join(B, V.c.battle_id == B.c.id))
        .where(col.in_(keys), V.c.tstamp >= since).group_by(col, V.c.reason)
    )
    if col is B.c.session_hash:  # the judge column is the session hash, with its own index
        q = select(V.c.judge, V.c.reason, func.count()).where(V.c.judge.in_(keys), V.c.tstamp >= since).group_by(V.c.judge, V.c.reason)
    for key, reason, n in conn.execute(q):
        out[key].votes += int(n)
        if reason_code(reason) == "selective_voting":
            out[key].flagged = True
    return out


def _lock(conn: Any, backend: str, keys: list[str]) -> None:
    if backend != "postgresql":
        return  # SQLite: the write transaction already excludes every other writer
    for k in sorted(keys):
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7))"), {"k": k})


def decide_votes(conn: Any, backend: str, votes: Sequence[tuple[Any, float]], policy: IntegrityPolicy) -> list[str | None]:
    """Decide, inside the open vote transaction, which of ``votes`` count.

    Parameters: conn, the transaction's connection; backend, 'sqlite' | 'postgresql'; votes,
    [(battle, now)] in the order they are recorded, where battle has id, mode, model_a, model_b,
    session_hash, ip_hash, created_at (a :class:`~openarena.storage.battles.BattleRecord`, still
    open in the database); policy.
    Returns: one reason per vote, None when it counts, else '<code>: <detail>' with code in
    :data:`INTEGRITY_CODES`. A newly raised selective-voting flag also marks the key's earlier
    counted votes of the window not counted (an UPDATE in this transaction), and the earlier
    votes of this batch get the same reason.
    """
    if not votes:
        return []
    since = min(now for _, now in votes) - policy.window_s
    sessions = sorted({b.session_hash for b, _ in votes})
    ips = sorted({b.ip_hash for b, _ in votes if b.ip_hash})
    _lock(conn, backend, [f"s:{k}" for k in sessions] + [f"i:{k}" for k in ips])
    keys = {("session", k): v for k, v in _load(conn, B.c.session_hash, sessions, since).items()}
    keys.update({("ip", k): v for k, v in _load(conn, B.c.ip_hash, ips, since).items()})
    caps = {"session": policy.max_votes_session, "ip": policy.max_votes_ip}
    reasons: list[str | None] = []
    of_key: dict[tuple[str, str], list[int]] = defaultdict(list)

    for i, (b, now) in enumerate(votes):
        mine = [("session", b.session_hash)] + ([("ip", b.ip_hash)] if b.ip_hash else [])
        reason = None
        for kk in mine:
            st = keys[kk]
            st.votes += 1
            of_key[kk].append(i)
            if b.mode == "anony" and b.model_b is not None:
                sv = st.pairs.setdefault(_pair(b.model_a, b.model_b), [0, 0])
                if b.created_at < since:  # shown before the window: not loaded
                    sv[0] += 1
                sv[1] += 1
        for kind, key in mine:  # selective voting (sticky, retroactive)
            st = keys[(kind, key)]
            if st.flagged:
                reason = reason or f"selective_voting: this {kind} was flagged earlier in the window"
                continue
            if policy.selective_alpha > 0:
                res = selective_voting_test({p: tuple(sv) for p, sv in st.pairs.items()}, policy.selective_min_votes)
                if res.p <= policy.selective_alpha:
                    st.flagged = True
                    st.newly_flagged = (
                        f"selective_voting: this {kind} voted {res.voted_with} of {res.voted} times on battles with {res.model} "
                        f"against {res.shown_with} of {res.shown} shown (p = {res.p:.1e})"
                    )
                    reason = reason or st.newly_flagged
        if reason is None and policy.abandon_ratio > 0:
            for kind, key in mine:
                shown, voted = keys[(kind, key)].shown_voted()
                abandoned = shown - voted
                if shown >= policy.abandon_min_battles and abandoned > policy.abandon_ratio * max(voted, 1):
                    reason = f"abandon_ratio: this {kind} abandoned {abandoned} of {shown} answered battles (more than {policy.abandon_ratio:g} per vote)"
                    break
        if reason is None:
            for kind, key in mine:
                cap = caps[kind]
                if cap and keys[(kind, key)].votes > cap:
                    reason = f"daily_cap: this {kind} cast more than {cap} votes in {policy.window_s / 3600:g} h"
                    break
        reasons.append(reason)
    for kk, st in keys.items():
        if st.newly_flagged is None:
            continue
        for j in of_key[kk]:  # this batch's earlier votes of the key
            if reasons[j] is None or reason_code(reasons[j]) != "selective_voting":
                reasons[j] = st.newly_flagged
        col = B.c.session_hash if kk[0] == "session" else B.c.ip_hash
        ids = select(B.c.id).where(col == kk[1])
        conn.execute(
            update(V).where(V.c.counted.is_(True), V.c.tstamp >= since, V.c.battle_id.in_(ids)).values(counted=False, reason=st.newly_flagged[:200])
        )
    return [r[:200] if r else None for r in reasons]


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
                sv = row(kind, key)["pairs"].setdefault(_pair(a, b), [0, 0])
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
