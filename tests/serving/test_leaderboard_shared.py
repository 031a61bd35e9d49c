"""One leaderboard recomputation for all the workers of an arena (issue 8, several workers): the
workers share a Redis; one leads (recomputes and publishes), the others load what it published.
Each cache here stands for one worker process (its own Redis client, lease token and snapshot),
on one real SQLite database and a real Redis."""

from __future__ import annotations

import random
import time

from sqlalchemy import insert

from openarena.serving.leaderboard_cache import LeaderboardCache, SharedBoard, snapshot_from_json, snapshot_to_json, snapshots_from_json, snapshots_to_json
from openarena.storage import Database
from openarena.storage.models import Battle, Vote
from tests.serving.redis_server import fresh_prefix, redis_url  # noqa: F401

MODELS = ["alpha", "beta", "gamma"]


def _db(tmp_path, n: int = 60) -> Database:
    """A database with ``n`` voted anonymous battles among :data:`MODELS` (every model wins and
    loses, so every one is rated)."""
    db = Database.open(f"sqlite:///{tmp_path / 'arena.db'}")
    rng, now = random.Random(3), time.time()
    conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "an answer"}]
    battles, votes = [], []
    for i in range(n):
        a, b = rng.sample(MODELS, 2)
        bid = f"{i:032x}"
        battles.append(dict(id=bid, mode="anony", model_a=a, model_b=b, session_hash=f"s{i % 7}", status="voted", sampling_policy="fastchat",
                            sampling_prob=1 / 3, created_at=now, updated_at=now, turns=1, conversation_a=conv, conversation_b=conv, version=3))
        votes.append(dict(battle_id=bid, winner=["model_a", "model_b", "tie"][i % 3], tstamp=now - n + i, judge=f"s{i % 7}", counted=True))
    with db.write() as conn:
        conn.execute(insert(Battle.__table__), battles)
        conn.execute(insert(Vote.__table__), votes)
    return db


def _worker(db: Database, url: str, prefix: str, seen: list) -> LeaderboardCache:
    board = SharedBoard(url, prefix, db.url)
    return LeaderboardCache(db, [], interval_s=3600, min_refresh_s=0, process=False, shared=board, poll_s=0.05,
                            on_refresh=lambda snap, pairs: seen.append(pairs))


def test_one_worker_recomputes_and_the_others_load_its_board(tmp_path, redis_url):  # noqa: F811
    db, prefix = _db(tmp_path), fresh_prefix()
    seen_a, seen_b = [], []
    a, b = _worker(db, redis_url, prefix, seen_a), _worker(db, redis_url, prefix, seen_b)
    try:
        assert a.shared_tick() == "computed"  # the first worker takes the lease and recomputes
        assert b.shared_tick() == "loaded"  # the second one loads that board, computes nothing
        assert (a.computed, b.computed) == (1, 0)
        rows_a = a.snapshot.boards[("full", False)].rows
        assert [r["model"] for r in rows_a] and sorted(r["model"] for r in rows_a) == MODELS
        assert b.snapshot.boards[("full", False)].rows == rows_a and b.snapshot.n_votes == a.snapshot.n_votes == 60
        assert b.snapshot.boards[("full", False)].plot == a.snapshot.boards[("full", False)].plot  # the PNG, byte for byte
        assert seen_b[-1] == seen_a[-1] and sum(seen_b[-1].values()) == 60  # the sampler of every worker gets the pair counts
        # nothing new: no recomputation within the interval, nothing to load
        assert [a.shared_tick(), b.shared_tick(), a.shared_tick()] == ["idle"] * 3
        # a visitor of the *second* worker asks for a refresh: the leader recomputes it once
        assert b.request_refresh()
        assert b.shared_tick() == "idle"  # recorded in Redis; b does not compute
        assert a.shared_tick() == "computed" and b.shared_tick() == "loaded"
        assert (a.computed, b.computed) == (2, 0)
        assert b.snapshot.created == a.snapshot.created
        # the leader stops (its lease is given up): the other worker leads from now on, and
        # does not recompute a board that is still fresh
        a.stop()
        assert b.shared_tick() == "idle" and b.computed == 0
        assert b.request_refresh() and b.shared_tick() == "computed" and b.computed == 1
    finally:
        a.stop()
        b.stop()
        db.dispose()


def test_workers_started_together_compute_the_board_once(tmp_path, redis_url):  # noqa: F811
    db, prefix = _db(tmp_path), fresh_prefix()
    workers = [_worker(db, redis_url, prefix, []) for _ in range(3)]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + 60
        while not all(w.snapshot.created for w in workers):
            assert time.monotonic() < deadline, "the workers did not all get a board"
            time.sleep(0.05)
        assert sum(w.computed for w in workers) == 1
        assert len({w.snapshot.created for w in workers}) == 1
    finally:
        for w in workers:
            w.stop()
        db.dispose()


def test_a_snapshot_round_trips_through_json(tmp_path):
    db = _db(tmp_path)
    try:
        cache = LeaderboardCache(db, [], process=False)
        snap = cache.refresh()
        pairs = {frozenset(("alpha", "beta")): 20.0, frozenset(("beta", "gamma")): 40.0}
        back, back_pairs = snapshot_from_json(snapshot_to_json(snap, pairs))
        assert back_pairs == pairs
        assert back.boards.keys() == snap.boards.keys()
        for k, board in snap.boards.items():
            assert back.boards[k].rows == board.rows and back.boards[k].plot == board.plot and back.boards[k].error == board.error
        assert (back.n_votes, back.votes_per_model, back.categories, back.created) == (snap.n_votes, snap.votes_per_model, snap.categories, snap.created)
    finally:
        db.dispose()


def test_every_arena_and_the_trust_payload_round_trip_through_json(tmp_path):
    """What the leader publishes carries each arena's board and the Trust page's payload, so a
    follower worker shows the same vision board and Trust page as the leader."""
    db = _db(tmp_path)
    try:
        cache = LeaderboardCache(db, [], process=False)
        cache.refresh()
        snaps = dict(cache.snapshots)
        assert set(snaps) == {"text", "vision", "code"}
        snaps["text"].trust = {"providers": [{"provider": "acme", "share": 0.5}], "missing": {"drift": "too_few_votes"}}
        pairs = {frozenset(("alpha", "beta")): 20.0}
        back, back_pairs = snapshots_from_json(snapshots_to_json(snaps, pairs))
        assert back_pairs == pairs and set(back) == set(snaps)
        assert back["text"].trust == snaps["text"].trust
        for arena, snap in snaps.items():
            assert back[arena].arena == arena and back[arena].error == snap.error and back[arena].n_votes == snap.n_votes
            assert back[arena].boards.keys() == snap.boards.keys()
    finally:
        db.dispose()
