"""Vote integrity: which votes are stored but not counted, decided in the vote's own transaction
from counts in the database (so the limits hold across every worker and restart; the queries
and locks are :mod:`openarena.storage.integrity`).

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

Sources: Chiang et al. (2024), Chatbot Arena, sections 3 and 5 (rate limits, anomalous users);
Huang et al. (2025), "Exploring and Mitigating Adversarial Manipulation of Voting-Based
Leaderboards" and Min et al. (2025), "Improving Your Model Ranking on Chatbot Arena by Vote
Rigging" (the attack: recognise the target from its answers, vote only when it appears). The
thresholds are ours (see :class:`IntegrityPolicy`); the arena's operators do not publish theirs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openarena.analysis.selective_voting import selective_voting_test
from openarena.storage.integrity import INTEGRITY_CODES, VoterKey, pair_key, reason_code

__all__ = ["INTEGRITY_CODES", "IntegrityPolicy", "decide_votes"]


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

    @property
    def enabled(self) -> bool:
        """False when every check is off (then no vote is looked at)."""
        return bool(self.max_votes_session or self.max_votes_ip or self.abandon_ratio or self.selective_alpha)

    def decide(self, keys: Mapping[tuple[str, str], VoterKey], votes: Sequence[tuple[Any, float]], since: float) -> tuple[list[str | None], list[tuple[str, str, str]]]:
        """The hook of the vote transaction (:class:`~openarena.storage.votes.VoteDecider`):
        :func:`decide_votes` with this policy."""
        return decide_votes(keys, votes, self, since)

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError("window_s must be positive")
        if min(self.max_votes_session, self.max_votes_ip, self.abandon_ratio, self.abandon_min_battles, self.selective_min_votes) < 0:
            raise ValueError("vote-integrity limits must be >= 0 (0 = off)")
        if not 0 <= self.selective_alpha < 1:
            raise ValueError("selective_alpha must be in [0, 1)")


def decide_votes(keys: Mapping[tuple[str, str], VoterKey], votes: Sequence[tuple[Any, float]], policy: IntegrityPolicy,
                 since: float) -> tuple[list[str | None], list[tuple[str, str, str]]]:
    """Decide which of ``votes`` count, from what the vote transaction read of their voters.

    Parameters: keys, {('session' | 'ip', key): VoterKey} of every key of the votes' battles,
    read (and on PostgreSQL locked) in the vote transaction over the window starting at
    ``since`` (:func:`openarena.storage.integrity.load_voter_keys`; updated here as the batch's
    votes are decided); votes, [(battle, now)] in the order they are recorded, where battle has
    id, mode, model_a, model_b, session_hash, ip_hash, created_at (a
    :class:`~openarena.storage.battles.BattleRecord`, still open in the database); policy;
    since, start of the window (Unix seconds: the batch's earliest vote time minus
    ``policy.window_s``).
    Returns: (reasons, withdrawals): one reason per vote, None when it counts, else '<code>:
    <detail>' with code in :data:`INTEGRITY_CODES`; and (kind, key, reason) for each key newly
    flagged for selective voting, whose earlier counted votes of the window the transaction
    must mark not counted (:func:`openarena.storage.integrity.withdraw_votes`; the earlier votes
    of this batch already get the same reason). Nothing is read or written here.
    """
    if not votes or not policy.enabled:
        return [None] * len(votes), []
    newly: dict[tuple[str, str], str] = {}
    tested: dict[tuple[str, str], object] = {}
    caps = {"session": policy.max_votes_session, "ip": policy.max_votes_ip}
    reasons: list[str | None] = []
    of_key: dict[tuple[str, str], list[int]] = defaultdict(list)

    def keys_of(b) -> list[tuple[str, str]]:
        return [("session", b.session_hash)] + ([("ip", b.ip_hash)] if b.ip_hash else [])

    for b, _ in votes:  # the battles of this batch are all voted by the end of the transaction
        if b.mode == "anony" and b.model_b is not None:
            for kk in keys_of(b):
                sv = keys[kk].pairs.setdefault(pair_key(b.model_a, b.model_b), [0, 0])
                if b.created_at < since:  # shown before the window: not loaded
                    sv[0] += 1
                sv[1] += 1
    for i, (b, now) in enumerate(votes):
        mine = keys_of(b)
        reason = None
        for kk in mine:
            keys[kk].votes += 1
            of_key[kk].append(i)
        for kind, key in mine:  # selective voting (sticky, retroactive)
            st = keys[(kind, key)]
            if st.flagged:
                reason = reason or f"selective_voting: this {kind} was flagged earlier in the window"
                continue
            if policy.selective_alpha > 0:
                if (kind, key) not in tested:  # the tallies hold the whole batch already: once per key
                    tested[(kind, key)] = selective_voting_test({p: tuple(sv) for p, sv in st.pairs.items()}, policy.selective_min_votes)
                res = tested[(kind, key)]
                if res.p <= policy.selective_alpha:
                    st.flagged = True
                    newly[(kind, key)] = (
                        f"selective_voting: this {kind} voted {res.voted_with} of {res.voted} times on battles with {res.model} "
                        f"against {res.shown_with} of {res.shown} shown (p = {res.p:.1e})"
                    )[:200]
                    reason = reason or newly[(kind, key)]
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
    for kk, why in newly.items():
        for j in of_key[kk]:  # this batch's earlier votes of the key
            if reasons[j] is None or reason_code(reasons[j]) != "selective_voting":
                reasons[j] = why
    return [r[:200] if r else None for r in reasons], [(kind, key, why) for (kind, key), why in newly.items()]


