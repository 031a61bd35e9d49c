"""Vote integrity through the web arena: withheld votes look like counted ones to the voter, the
IP key is stored, and the re-roll attack (issue 8, defect 5) replayed against the real app with
the demo models and the real sampler moves the leaderboard by a bounded amount."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from openarena.analysis.selective_voting import vote_through_rates
from openarena.serving.sessions import network_hash
from openarena.storage.integrity import reason_code, voter_activity
from tests.serving.reroll import Voter, counted_by_role, demo_arena, honest_voter, ratings, reroll_attacker

TARGET = "demo-slow"  # the weakest model by the honest voters' taste, and the least sampled


def test_network_hash_keys_ipv4_hosts_and_ipv6_subnets():
    s = b"k" * 32
    assert network_hash(s, "192.0.2.1") != network_hash(s, "192.0.2.2")
    assert network_hash(s, "2001:db8:1:2::1") == network_hash(s, "2001:db8:1:2:ffff::9")  # same /64
    assert network_hash(s, "2001:db8:1:3::1") != network_hash(s, "2001:db8:1:2::1")
    assert network_hash(s, "::ffff:192.0.2.1") == network_hash(s, "192.0.2.1")
    assert network_hash(s, "192.0.2.1") != network_hash(b"j" * 32, "192.0.2.1")
    assert re.fullmatch(r"[0-9a-f]{32}", network_hash(s, "testclient"))


def test_withheld_vote_gets_the_acknowledgement_of_a_counted_one(tmp_path):
    """No oracle for the cap: the answer past the cap is the answer of a counted vote."""
    with demo_arena(tmp_path, votes_per_day_session=2, votes_per_day_ip=0, abandon_ratio=0, selective_alpha=0) as arena:
        v = Voter(arena, "198.51.100.4", "me")
        answers = []
        for _ in range(3):
            bid, a, b = v.battle()
            answers.append(v.vote(bid, "tie"))
        assert [sorted(r) for r in answers] == [sorted(answers[0])] * 3
        assert [(r["counted"], r["message"]) for r in answers] == [(True, "Thanks! Your vote (tie) was recorded.")] * 3
        with arena.state.db.read() as conn:
            rows = conn.execute(text("select v.counted, v.reason, b.ip_hash from votes v join battles b on b.id = v.battle_id order by v.id")).all()
        assert [bool(r.counted) for r in rows] == [True, True, False] and reason_code(rows[2].reason) == "daily_cap"
        assert {r.ip_hash for r in rows} == {network_hash(arena.state.secret, "198.51.100.4")}


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """One day of the demo arena: 14 honest voters (one IP each, 10 battles, a random 70% voted),
    re-roll attackers for TARGET: A from one IP with 4 sessions x 5 votes; B from 6 IPs with 3
    votes each (each IP below the selective test's power); C from 3 IPs with 8 votes each."""
    rng = np.random.default_rng(8)
    with demo_arena(tmp_path_factory.mktemp("replay")) as arena:
        for i in range(14):
            honest_voter(arena, f"192.0.2.{i + 1}", 10, rng)
        for s in range(4):
            reroll_attacker(arena, "203.0.113.7", TARGET, 5, "A")
        for i in range(6):
            reroll_attacker(arena, f"198.51.100.{i + 1}", TARGET, 3, "B")
        for i in range(3):
            reroll_attacker(arena, f"198.51.101.{i + 1}", TARGET, 8, "C")
        yield arena


def test_reroll_attack_is_bounded(replay):
    """The bound: a re-roll attacker gets no vote counted from a network once its evidence
    reaches p <= 1e-4 (Bonferroni over the 5 models), which for the demo's target (in about a
    quarter of the battles) takes 5-8 votes: 1 IP with 4 sessions -> 0 points; 3 IPs x 8 votes ->
    0 votes counted. Below that, per network, the votes count (B)."""
    by_role = counted_by_role(replay)
    assert by_role["A"] == (20, 0)  # one IP, any number of sessions: every vote withheld, retroactively
    assert by_role["C"] == (24, 0)  # 8 votes per IP: every IP caught
    assert by_role["honest"][0] == by_role["honest"][1] > 70  # no honest vote withheld
    honest = ratings(replay, roles={"honest"})[TARGET]
    before = ratings(replay, roles={"honest", "A"})[TARGET]  # every stored vote counted (no safeguards)
    after = ratings(replay, roles={"honest", "A"}, counted_only=True)[TARGET]
    # the bound for attackers on one IP: 0 points (the counted votes are exactly the honest ones)
    assert before - honest > 100, (honest, before)
    assert after == pytest.approx(honest, abs=1e-9)
    # the gap: a distributed attacker whose every IP stays below the test's power (here 3 votes
    # per IP) is not caught per voter; most of its votes count
    assert by_role["B"][0] == 18 and by_role["B"][1] >= 15
    # ... but the model-level vote-through rate shows that the target's battles are re-rolled
    act = voter_activity(replay.state.db)
    pairs: dict = {}
    for d in act.loc[act["kind"] == "ip", "pairs"]:
        for k, (s, v) in d.items():
            pairs[k] = tuple(np.add(pairs.get(k, (0, 0)), (s, v)))
    rates = vote_through_rates(pairs).set_index("model")
    assert rates["p"].idxmin() == TARGET and rates.loc[TARGET, "p"] < 0.01


def test_voters_command_and_leaderboard_provenance(replay, tmp_path):
    from openarena.cli.main import app

    out = tmp_path / "voters.csv"
    res = CliRunner().invoke(app, ["voters", replay.state.db.url, "--no-shift", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    for title in ("Voters (sessions)", "Voters (IP addresses, hashed)", "Vote-through rate per model"):
        assert title in res.output
    # the offline test's summary names its test and its voters (was a bare "20 voters, ..." line)
    assert "Exchangeability test per voter (column judge; Fisher combination, Bonferroni over looks): 20 voters, " in " ".join(res.output.split())
    assert re.search(r"20 voters, (\d+) tested \(at least 5 votes\)", " ".join(res.output.split()))
    table = pd.read_csv(out).set_index(["kind", "voter"])
    row = table.loc[("ip", network_hash(replay.state.secret, "203.0.113.7"))]
    assert bool(row.flagged) and row.reasons == "selective_voting: 20" and row.votes == 20 and row.selective_model == TARGET
    assert row.selective_p < 1e-4 and row.holm_p < 0.05 and row.abandon_ratio > 1
    honest = [table.loc[("ip", network_hash(replay.state.secret, f"192.0.2.{i + 1}"))] for i in range(14)]
    assert not any(bool(r.flagged) for r in honest)
    assert int(table.loc["session"]["flagged"].sum()) >= 4 + 3  # A's sessions and C's
    snap = replay.state.leaderboard.refresh()
    stored, counted = map(sum, zip(*counted_by_role(replay).values()))
    assert snap.excluded["selective_voting"] >= 44 and sum(snap.excluded.values()) == stored - counted
    assert snap.n_votes == counted
    from fastapi.testclient import TestClient

    page = TestClient(replay.app).get("/leaderboard.json").json()
    assert page["excluded"] == snap.excluded and page["n_votes"] == snap.n_votes
    html = TestClient(replay.app).get("/leaderboard").text
    hint = html[html.find("anonymous votes counted"):][:300]
    assert "stored but not counted:" in hint and f"selective voting {snap.excluded['selective_voting']}" in hint, hint
