"""Vote integrity in the database (SQLite and PostgreSQL): daily caps per session and per IP,
the abandoned-battle ratio, selective voting (sticky and retroactive), exact under group commit
and concurrent writers, the migration that adds the IP key, and the provenance of excluded votes."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, inspect, text

from openarena.serving.vote_integrity import IntegrityPolicy
from openarena.storage import Database, migrate
from openarena.storage.battles import acquire_turn, create_battle, finish_turn
from openarena.storage.integrity import reason_code, voter_activity
from openarena.storage.reading import read_battles
from openarena.storage.votes import VoteWriter, record_vote

OFF = dict(max_votes_session=0, max_votes_ip=0, abandon_ratio=0, selective_alpha=0)


def conv(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def battle(db: Database, a="m1", b="m2", session="s1", ip="ip1", now=None) -> str:
    """An answered anonymous battle, not voted."""
    bid = create_battle(db, mode="anony", model_a=a, model_b=b, session_hash=session, sampling_policy="fastchat", sampling_prob=0.1, ip_hash=ip, now=now)
    assert acquire_turn(db, bid, session) is not None
    finish_turn(db, bid, conversation_a=conv("hi", "x"), conversation_b=conv("hi", "y"), turns=1)
    return bid


def votes_table(db: Database) -> list[tuple]:
    with db.read() as conn:
        return [tuple(r) for r in conn.execute(text("select b.session_hash, b.ip_hash, v.counted, v.reason from votes v join battles b on b.id = v.battle_id order by v.id"))]


def test_daily_cap_per_session_and_per_ip(db):
    policy = IntegrityPolicy(**{**OFF, "max_votes_session": 3, "max_votes_ip": 5})
    for i in range(4):
        r = record_vote(db, battle(db, session="s1", ip="ipA"), "s1", "model_a", integrity=policy)
        assert r.counted == (i < 3)
        assert (r.reason is None) if i < 3 else reason_code(r.reason) == "daily_cap"
    # new sessions from the same IP: the IP cap (5 votes, of which 4 already cast) holds
    res = [record_vote(db, battle(db, session=f"t{i}", ip="ipA"), f"t{i}", "tie", integrity=policy) for i in range(3)]
    assert [r.counted for r in res] == [True, False, False]
    # another IP is not affected
    assert record_vote(db, battle(db, session="u1", ip="ipB"), "u1", "model_b", integrity=policy).counted
    rows = votes_table(db)
    assert sum(1 for r in rows if r[2]) == 3 + 1 + 1 and sum(1 for r in rows if not r[2]) == 3


def test_cap_is_a_rolling_window(db):
    policy = IntegrityPolicy(**{**OFF, "max_votes_session": 2, "window_s": 3600})
    t0 = 1_000_000.0
    for k in range(3):
        r = record_vote(db, battle(db, now=t0 + k), "s1", "model_a", integrity=policy, now=t0 + k)
        assert r.counted == (k < 2)
    later = t0 + 3600 + 10  # the first two votes left the window
    assert record_vote(db, battle(db, now=later), "s1", "model_a", integrity=policy, now=later).counted


def test_abandon_ratio_withholds_further_votes(db):
    policy = IntegrityPolicy(**{**OFF, "abandon_ratio": 3, "abandon_min_battles": 10})
    for _ in range(9):
        battle(db, session="s1", ip="ipA")  # answered, never voted
    bid = battle(db, session="s1", ip="ipA")
    r = record_vote(db, bid, "s1", "model_a", integrity=policy)  # 9 abandoned per 1 vote, 10 battles
    assert not r.counted and reason_code(r.reason) == "abandon_ratio" and "abandoned 9 of 10" in r.reason
    # a session that voted on its battles is unaffected
    for _ in range(12):
        assert record_vote(db, battle(db, session="s2", ip="ipB"), "s2", "model_b", integrity=policy).counted
    # battles without an answer (created, no prompt) are not abandoned battles
    for _ in range(30):
        create_battle(db, mode="anony", model_a="m1", model_b="m2", session_hash="s3", ip_hash="ipC")
    assert record_vote(db, battle(db, session="s3", ip="ipC"), "s3", "tie", integrity=policy).counted


def reroll(db, policy, session, ip, target="m1", votes=12, models=("m1", "m2", "m3", "m4", "m5")):
    """Open battles in a rotation of the 10 pairs (4 of 10 hold the target; a shuffled order per
    session) and vote only when the target is in it, for the target."""
    import random

    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    random.Random(session).shuffle(pairs)
    results, k = [], 0
    while len(results) < votes:
        a, b = pairs[k % len(pairs)]
        k += 1
        bid = battle(db, a, b, session=session, ip=ip)
        if target in (a, b):
            results.append(record_vote(db, bid, session, "model_a" if a == target else "model_b", integrity=policy))
    return results


def test_selective_voting_is_flagged_sticky_and_retroactive(db):
    policy = IntegrityPolicy(**{**OFF, "selective_alpha": 1e-4})
    # an honest voter of the same IP space votes on everything
    honest = [record_vote(db, battle(db, a, b, session="h1", ip="ipH"), "h1", "model_a", integrity=policy)
              for a, b in [("m1", "m2"), ("m3", "m4"), ("m2", "m5"), ("m1", "m4"), ("m3", "m5")] * 4]
    assert all(r.counted for r in honest)
    res = reroll(db, policy, "att", "ipX")
    flagged_at = next(i for i, r in enumerate(res) if not r.counted)
    assert 3 <= flagged_at <= 10, flagged_at  # needs evidence, then acts at once
    assert all(not r.counted for r in res[flagged_at:])  # sticky
    rows = [r for r in votes_table(db) if r[0] == "att"]
    assert len(rows) == len(res) and not any(r[2] for r in rows)  # retroactive: the earlier votes too
    assert all(reason_code(r[3]) == "selective_voting" for r in rows)
    assert "m1" in rows[0][3]
    assert all(r[2] for r in votes_table(db) if r[0] == "h1")


def test_selective_voting_across_sessions_of_one_ip(db):
    """Fresh sessions do not reset the evidence: the IP key accumulates it."""
    policy = IntegrityPolicy(**{**OFF, "selective_alpha": 1e-4})
    for s in range(6):
        reroll(db, policy, f"att{s}", "ipX", votes=2)
    rows = [r for r in votes_table(db) if r[1] == "ipX"]
    assert len(rows) == 12 and not any(r[2] for r in rows)
    assert any("this ip" in r[3] for r in rows)


def test_group_commit_decides_votes_of_one_voter_in_order(db):
    """A burst of votes of one session in one batch cannot slip past the cap together."""
    policy = IntegrityPolicy(**{**OFF, "max_votes_session": 5})
    bids = [battle(db) for _ in range(12)]
    writer = VoteWriter(db, integrity=policy)
    from openarena.storage.votes import _VoteRequest

    writer._thread = object()  # queue without a thread, then commit the batch at once
    futs = [writer.submit(_VoteRequest(b, "s1", "model_a", None, True, None, None, 1e9 + i)) for i, b in enumerate(bids)]
    batch = []
    while not writer._q.empty():
        batch.append(writer._q.get())
    assert len(batch) == 12
    writer._settle(batch, writer._commit(batch))
    assert [f.result().counted for f in futs] == [True] * 5 + [False] * 7


def test_concurrent_writers_hold_the_cap(db):
    """Two database connections (two workers) voting for the same voter at the same time."""
    policy = IntegrityPolicy(**{**OFF, "max_votes_session": 4})
    bids = [battle(db) for _ in range(16)]
    other = Database.open(db.url, run_migrations=False, checkpoints=False)
    results: list = []
    lock = threading.Lock()

    def run(d, mine):
        for b in mine:
            r = record_vote(d, b, "s1", "model_a", integrity=policy)
            with lock:
                results.append(r.counted)

    ts = [threading.Thread(target=run, args=(d, bids[i::2])) for i, d in enumerate((db, other))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    other.dispose()
    assert len(results) == 16 and sum(results) == 4


def test_provenance_names_each_reason(db):
    policy = IntegrityPolicy(**{**OFF, "max_votes_session": 2})
    for w in ("model_a", "model_b", "tie", "model_a", "model_a"):
        record_vote(db, battle(db), "s1", w, integrity=policy)
    bid = battle(db, session="s2", ip="ipB")
    record_vote(db, bid, "s2", "model_b", counted=False, reason="identity leak: an answer names 'openai'")
    table = read_battles(db)
    steps = {s.name: (s.removed, s.remaining) for s in table.steps}
    assert steps == {"identity_leak": (1, 5), "daily_cap": (3, 2)}
    assert len(table) == 2
    from openarena.analysis.leaderboard import build_leaderboard

    filters = {f["name"]: f["removed"] for f in build_leaderboard(table, ci="none").provenance["filters"]}
    assert filters["daily_cap"] == 3 and filters["identity_leak"] == 1


def test_voter_activity_per_session_and_ip(db):
    policy = IntegrityPolicy(**{**OFF, "max_votes_session": 1})
    battle(db, "m1", "m2", session="s1", ip="ipA")
    for _ in range(2):
        record_vote(db, battle(db, "m1", "m3", session="s1", ip="ipA"), "s1", "model_a", integrity=policy)
    act = voter_activity(db).set_index(["kind", "voter"])
    s = act.loc[("session", "s1")]
    assert (s.battles, s.voted, s.abandoned, s.votes, s.not_counted) == (3, 2, 1, 2, 1)
    assert s.reasons == "daily_cap: 1" and s.abandon_ratio == 0.5
    assert s.pairs == {("m1", "m2"): (1, 0), ("m1", "m3"): (2, 2)}
    assert act.loc[("ip", "ipA")].battles == 3


def test_migration_from_0001_keeps_votes_and_adds_the_ip_key(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    migrate(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text(
            "insert into battles (id, mode, model_a, model_b, session_hash, status, created_at, updated_at, turns, conversation_a, conversation_b, version) "
            "values ('b1', 'anony', 'm1', 'm2', 's1', 'voted', 1, 1, 1, '[]', '[]', 1)"))
        conn.execute(text("insert into votes (battle_id, winner, tstamp, judge, counted) values ('b1', 'model_a', 2, 's1', 1)"))
    engine.dispose()
    db = Database.open(url)
    try:
        cols = {c["name"] for c in inspect(db.engine).get_columns("battles")}
        assert "ip_hash" in cols
        assert {"ix_votes_judge_tstamp", "ix_votes_ip_tstamp"} <= {i["name"] for i in inspect(db.engine).get_indexes("votes")}
        assert "ip_hash" in {c["name"] for c in inspect(db.engine).get_columns("votes")}
        t = read_battles(db)
        assert len(t) == 1 and t.frame.iloc[0].model_a == "m1"
        with db.read() as conn:
            assert conn.execute(text("select version_num from alembic_version")).scalar() == "0005"  # the head: voter keys, red-team rounds, the server secret, then arenas and images
            assert conn.execute(text("select arena from battles where id = 'b1'")).scalar() == "text"  # an old battle is a text battle
    finally:
        db.dispose()


@pytest.mark.parametrize("bad", [{"window_s": 0}, {"max_votes_ip": -1}, {"selective_alpha": 1.5}])
def test_bad_policy_is_refused(bad):
    with pytest.raises(ValueError):
        IntegrityPolicy(**bad)


def test_vote_batch_round_trips_on_postgresql(db, tmp_path):
    """A vote transaction holds its battles' rows and its voters' advisory locks until the
    commit, so on PostgreSQL its round trips are most of its time (and of the time other
    workers' votes of the same voters wait): a batch with the integrity checks takes two
    (BEGIN, the read of the battles, the voters' locks and their read; closing the battles,
    inserting the votes and the COMMIT; four before, seven before that), whatever its size,
    when its votes come from the addresses their battles were created from. A vote from another
    address costs two more (a ROLLBACK, then the batch again with the battle's IP key).
    Counted in libpq's protocol trace: each run of messages the client sends before it next
    reads the server's is one round trip."""
    if db.backend != "postgresql":
        pytest.skip("round trips to a database server")
    import time

    from psycopg.pq import Trace

    from openarena.storage.votes import _VoteRequest

    writer = VoteWriter(db, integrity=IntegrityPolicy(**{**OFF, "max_votes_session": 3}))  # not started: _commit is called directly
    trace = tmp_path / "libpq.trace"
    try:
        for n, voted_from, expected in ((1, "ip1", 2), (5, "ip5", 2), (1, "elsewhere", 4)):
            bids = [battle(db, session=f"rt{n}{voted_from}", ip=f"ip{n}") for _ in range(n)]
            raw = writer._connection().connection.driver_connection  # the connection the writer keeps, traced from its first message
            with open(trace, "w") as f:
                raw.pgconn.trace(f.fileno())
                raw.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
                res = writer._commit([(_VoteRequest(b, f"rt{n}{voted_from}", "model_a", None, True, None, None, time.time(), voted_from), None) for b in bids])
                raw.pgconn.untrace()
            assert [r.counted for r in res] == [True] * min(n, 3) + [False] * max(n - 3, 0)
            sides = [line.split("\t", 1)[0] for line in trace.read_text().splitlines()]
            sides = [d for d in sides if d in ("F", "B")]  # F: sent by the client, B: by the server
            round_trips = sum(1 for i, d in enumerate(sides) if d == "F" and (i == 0 or sides[i - 1] == "B"))
            assert round_trips == expected, (n, voted_from)
            writer.stop()
    finally:
        writer.stop()
    assert [r[2:] for r in votes_table(db)][-6:] == [(True, None)] * 3 + [(False, "daily_cap: this session cast more than 3 votes in 24 h")] * 2 + [(True, None)]


def test_vote_from_another_address_is_decided_on_the_battles_ip_key(db):
    """The writer locks the voter keys before it sees the battles: the session and the
    address the vote comes from. A battle created from another address (the voter moved) is
    decided on the battle's IP key all the same (the batch is rolled back and run again with
    it), the caller's check runs once, and the connection is left idle; a batch of forged,
    foreign, duplicate and capped votes gets one answer each."""
    if db.backend != "postgresql":
        pytest.skip("the writer's own PostgreSQL transaction")
    import time

    from openarena.storage.votes import _VoteRequest

    def req(bid, session, ip, check=None):
        return (_VoteRequest(bid, session, "model_a", None, True, None, check, time.time(), ip), None)

    def idle(writer) -> bool:
        return writer._connection().connection.driver_connection.pgconn.transaction_status == 0

    writer = VoteWriter(db, integrity=IntegrityPolicy(**{**OFF, "max_votes_ip": 1}))
    try:
        calls = []
        (r,) = writer._commit([req(battle(db, session="moved", ip="ipB"), "moved", "ipA", check=lambda b: calls.append(b.id))])
        assert r.counted and len(calls) == 1 and idle(writer)
        (r,) = writer._commit([req(battle(db, session="other", ip="ipB"), "other", "ipB")])
        assert not r.counted and r.reason.startswith("daily_cap: this ip") and idle(writer)  # ipB's one vote was the moved voter's
        b1, b2 = battle(db, session="s9", ip="ip9"), battle(db, session="s9", ip="ip9")
        res = writer._commit([req("f" * 32, "s9", "ip9"), req("a\x00b", "s9", "ip9"), req(b1, "intruder", "ip9"),
                              req(b1, "s9", "ip9"), req(b1, "s9", "ip9"), req(b2, "s9", "ip9")])
        assert [None if x is None else x.counted for x in res] == [None, None, None, True, None, False]
        assert writer._commit([req(b1, "s9", "ip9")]) == [None] and idle(writer)  # nothing to write: rolled back
    finally:
        writer.stop()
