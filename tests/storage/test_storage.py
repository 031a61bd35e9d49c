"""Storage on SQLite and PostgreSQL: migrations, the battle lifecycle, one vote per battle under
concurrency, reading votes back as a BattleTable, and the public export formats."""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import inspect, text

from openarena.analysis.leaderboard import build_leaderboard
from openarena.data.readers import read_battles as read_file_battles
from openarena.errors import DataError
from openarena.storage import Database, database_url, is_database_url, migrate
from openarena.storage.battles import acquire_turn, create_battle, finish_turn, get_battle
from openarena.storage.db import StorageError, redact
from openarena.storage.export import EXPORT_FORMATS, export_battles
from openarena.storage.reading import read_battles, vote_counts
from openarena.storage.votes import VoteRefused, record_vote


def conv(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def play(db: Database, a="m1", b="m2", session="s1", winner="model_a", prob=0.25) -> str:
    bid = create_battle(db, mode="anony", model_a=a, model_b=b, session_hash=session, sampling_policy="fastchat", sampling_prob=prob)
    assert acquire_turn(db, bid, session) is not None
    finish_turn(db, bid, conversation_a=conv("hi", f"answer of {a}"), conversation_b=conv("hi", "other answer"), turns=1)
    if winner:
        record_vote(db, bid, session, winner)
    return bid


def test_migrations_create_tables_and_are_idempotent(db):
    migrate(db.engine)
    migrate(db.engine)
    names = set(inspect(db.engine).get_table_names())
    assert {"battles", "votes", "arena_settings", "alembic_version"} <= names
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from openarena.storage.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()  # one head: the revisions form a line
    with db.read() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head
    uniques = inspect(db.engine).get_unique_constraints("votes")
    assert any(u["column_names"] == ["battle_id"] for u in uniques)


def test_battle_lifecycle_vote_reveals_names_and_is_read_back(db):
    bid = create_battle(db, mode="anony", model_a="alpha", model_b="beta", session_hash="s1", sampling_policy="fastchat", sampling_prob=0.125)
    b = get_battle(db, bid, "s1")
    assert b.status == "open" and b.turns == 0 and b.conversation_a == [] and b.sampling_prob == 0.125
    assert get_battle(db, bid, "other-session") is None
    with pytest.raises(VoteRefused) as e:
        record_vote(db, bid, "s1", "model_a")
    assert e.value.code == "no_answer"
    lease = acquire_turn(db, bid, "s1")
    assert lease is not None and lease.streaming
    assert acquire_turn(db, bid, "s1") is None  # one turn at a time
    with pytest.raises(VoteRefused) as e:
        record_vote(db, bid, "s1", "model_a")
    assert e.value.code == "no_answer"
    finish_turn(db, bid, conversation_a=conv("q", "a1"), conversation_b=conv("q", "b1"), turns=1, meta={"a": {"tokens": 2}})
    b = get_battle(db, bid, "s1")
    assert not b.streaming and b.turns == 1 and b.conversation_b[1]["content"] == "b1" and b.meta == {"a": {"tokens": 2}}
    res = record_vote(db, bid, "s1", "tie (bothbad)", expected_version=b.version)
    assert (res.model_a, res.model_b, res.counted) == ("alpha", "beta", True)
    table = read_battles(db)
    row = table.frame.iloc[0]
    assert (row.battle_id, row.model_a, row.model_b, row.winner, row.judge, bool(row.anony), int(row.turn)) == (bid, "alpha", "beta", "tie (bothbad)", "s1", True, 1)
    assert row.sampling_prob == 0.125 and row.conversation_a == conv("q", "a1")


def test_refusals_double_forged_failed_and_stale(db):
    bid = play(db, winner=None)
    with pytest.raises(VoteRefused) as e:
        record_vote(db, bid, "intruder", "model_a")
    assert e.value.code == "not_found"
    with pytest.raises(VoteRefused) as e:
        record_vote(db, "f" * 32, "s1", "model_a")
    assert e.value.code == "not_found"
    with pytest.raises(VoteRefused) as e:
        record_vote(db, bid, "s1", "model_c")
    assert e.value.code == "bad_winner"
    stale = get_battle(db, bid).version - 1
    with pytest.raises(VoteRefused) as e:
        record_vote(db, bid, "s1", "model_a", expected_version=stale)
    assert e.value.code == "busy"
    record_vote(db, bid, "s1", "model_b")
    with pytest.raises(VoteRefused) as e:
        record_vote(db, bid, "s1", "model_a")
    assert e.value.code == "already_voted" and "already" in str(e.value)
    failed = create_battle(db, mode="anony", model_a="m1", model_b="m2", session_hash="s1")
    acquire_turn(db, failed, "s1")
    finish_turn(db, failed, conversation_a=conv("q", "a"), conversation_b=conv("q", ""), turns=1, error="model m2: http_status 500")
    with pytest.raises(VoteRefused) as e:
        record_vote(db, failed, "s1", "model_a")
    assert e.value.code == "failed" and "m2" not in str(e.value)
    direct = create_battle(db, mode="direct", model_a="m1", model_b=None, session_hash="s1")
    acquire_turn(db, direct, "s1")
    finish_turn(db, direct, conversation_a=conv("q", "a"), conversation_b=None, turns=1)
    with pytest.raises(VoteRefused) as e:
        record_vote(db, direct, "s1", "model_a")
    assert e.value.code == "not_votable"
    assert len(read_battles(db)) == 1


def test_concurrent_votes_on_one_battle_record_exactly_one(db):
    bids = [play(db, winner=None) for _ in range(5)]
    outcomes: list[str] = []
    lock = threading.Lock()

    def vote(bid: str, winner: str) -> None:
        try:
            record_vote(db, bid, "s1", winner)
            r = "ok"
        except VoteRefused as e:
            r = e.code
        with lock:
            outcomes.append(r)

    threads = [threading.Thread(target=vote, args=(bid, w)) for bid in bids for w in ("model_a", "model_b", "tie", "model_a")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 5 and outcomes.count("already_voted") == 15
    with db.read() as conn:
        assert conn.execute(text("select count(*), count(distinct battle_id) from votes")).one() == (5, 5)


def test_uncounted_votes_are_dropped_with_a_filter_step(db):
    play(db, "m1", "m2")
    bid = play(db, "m1", "m3", winner=None)
    record_vote(db, bid, "s1", "model_a", counted=False, reason="identity leak: openai")
    table = read_battles(db)
    assert len(table) == 1 and table.steps[-1].name == "identity_leak" and table.steps[-1].removed == 1
    assert len(read_battles(db, counted_only=False)) == 2
    assert vote_counts(db) == {"m1": 1, "m2": 1}
    assert vote_counts(db, counted_only=False) == {"m1": 2, "m2": 1, "m3": 1}


def test_empty_database_is_a_data_error(db):
    with pytest.raises(DataError, match="no votes"):
        read_battles(db)


def test_leaderboard_from_the_database(db):
    import numpy as np

    rng = np.random.default_rng(0)
    strength = {"m1": 1.0, "m2": 0.0, "m3": -1.0}
    names = list(strength)
    for i in range(60):
        a, b = rng.choice(names, 2, replace=False)
        p = 1 / (1 + np.exp(strength[b] - strength[a]))
        play(db, a, b, session=f"s{i % 7}", winner="model_a" if rng.random() < p else "model_b")
    lb = build_leaderboard(read_battles(db), ci="sandwich")
    assert set(lb.models) == set(names) and lb.table["num_battles"].sum() == 120
    assert lb.provenance["source"].startswith("db:")


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_formats_read_back(db, tmp_path, fmt):
    play(db, "m1", "m2", winner="model_a")
    play(db, "m2", "m3", winner="tie")
    bid = play(db, "m1", "m3", winner=None)
    record_vote(db, bid, "s1", "model_b", counted=False, reason="leak")
    path = tmp_path / f"votes.{ {'clean_battle': 'json'}.get(fmt, fmt) }"
    assert export_battles(db, path, fmt) == 2
    back = read_file_battles(path)
    f = back.frame
    assert f["winner"].tolist() == ["model_a", "tie"] and f["model_b"].tolist() == ["m2", "m3"]
    assert f["judge"].tolist() == ["s1", "s1"] and f["anony"].tolist() == [True, True]
    assert f["sampling_prob"].tolist() == [0.25, 0.25]
    if fmt != "csv":
        assert list(f["conversation_a"].iloc[0][0].values()) == ["user", "hi"]


def test_database_url_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENARENA_DATABASE_URL", raising=False)
    monkeypatch.setenv("OPENARENA_DATA_DIR", str(tmp_path / "dd"))
    assert database_url() == f"sqlite:///{tmp_path / 'dd' / 'openarena.db'}"
    assert database_url(data_dir=tmp_path / "x").endswith("/x/openarena.db")
    monkeypatch.setenv("OPENARENA_DATABASE_URL", "postgres://u:pw@h/db")
    assert database_url() == "postgresql+psycopg://u:pw@h/db"
    assert database_url("sqlite:///a.db") == "sqlite:///a.db"
    assert redact("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:***@h/db"
    assert is_database_url("sqlite:///x") and not is_database_url("votes.json")
    with pytest.raises(StorageError):
        database_url("mysql://x")


def test_sqlite_is_in_wal_mode(tmp_path):
    d = Database.open(f"sqlite:///{tmp_path / 'w.db'}")
    with d.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_unreachable_postgres_is_a_storage_error():
    with pytest.raises(StorageError, match="cannot"):
        Database.open("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_votes_commit_with_full_sync_other_writes_normal(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENARENA_SQLITE_SYNCHRONOUS", raising=False)
    d = Database.open(f"sqlite:///{tmp_path / 's.db'}", pool=False)
    seen = []
    from sqlalchemy import event

    @event.listens_for(d.engine, "before_cursor_execute")
    def grab(conn, cursor, statement, *a):
        if statement.startswith(("BEGIN", "INSERT INTO votes", "UPDATE battles")):
            seen.append((statement.split()[0] + (" votes" if "votes" in statement else ""), conn.connection.dbapi_connection.execute("PRAGMA synchronous").fetchone()[0]))

    play(d)
    # synchronous: 1 = NORMAL, 2 = FULL
    assert ("INSERT votes", 2) in seen and ("UPDATE", 1) in seen
    with d.read() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1


def test_vote_writer_group_commit(db):
    from concurrent.futures import ThreadPoolExecutor

    from openarena.storage.votes import VoteWriter

    bids = [play(db, winner=None) for _ in range(20)]
    writer = VoteWriter(db).start()
    try:
        def vote(args):
            bid, w = args
            try:
                return record_vote(db, bid, "s1", w, writer=writer).winner
            except VoteRefused as e:
                return e.code

        with ThreadPoolExecutor(16) as ex:
            out = list(ex.map(vote, [(b, w) for b in bids for w in ("model_a", "tie")]))
        assert out.count("already_voted") == 20 and len(out) - out.count("already_voted") == 20
        with pytest.raises(VoteRefused) as e:
            record_vote(db, "0" * 32, "s1", "tie", writer=writer)
        assert e.value.code == "not_found"
        leak = play(db, winner=None)
        res = record_vote(db, leak, "s1", "model_b", writer=writer, check=lambda b: "leak" if b.model_a == "m1" else None)
        assert res.counted is False and res.reason == "leak"
    finally:
        writer.stop()
    with db.read() as conn:
        assert conn.execute(text("select count(*), count(distinct battle_id) from votes")).one() == (21, 21)


def test_vote_writer_batch_decides_each_vote_alone(db):
    """One batch (one transaction, four statements) with every kind of vote in it: each caller
    gets its own answer, a second vote on a battle in the same batch is refused, a raising check
    fails only its caller; a conflicting vote row sends the batch through one savepoint per
    vote, where only that vote is refused."""
    import time as _time

    from openarena.storage.votes import VoteWriter, _VoteRequest

    ok1, ok2, dup, leak, boom = (play(db, winner=None) for _ in range(5))
    unfinished = create_battle(db, mode="anony", model_a="m1", model_b="m2", session_hash="s1")

    def req(bid, winner="model_a", session="s1", check=None):
        return _VoteRequest(bid, session, winner, None, True, None, check, _time.time())

    def explode(b):
        raise ValueError("check failed")

    writer = VoteWriter(db)  # not started: _commit is called directly with a known batch
    batch = [
        (req(ok1), None), (req(dup, "tie"), None), (req(dup, "model_b"), None), (req(ok2, session="intruder"), None),
        (req(unfinished), None), (req("0" * 32), None), (req(leak, check=lambda b: "leak"), None), (req(boom, check=explode), None),
        (req(ok2, "model_b"), None),
    ]
    res = writer._commit(batch)
    assert res[0].winner == "model_a" and res[0].counted
    assert res[1].winner == "tie" and res[2] is None  # the first vote on a battle wins
    assert res[3] is None and res[4] is None and res[5] is None
    assert res[6].counted is False and res[6].reason == "leak"
    assert isinstance(res[7], ValueError)
    assert res[8].winner == "model_b" and (res[8].model_a, res[8].model_b) == ("m1", "m2")
    assert get_battle(db, boom).status == "open" and get_battle(db, unfinished).status == "open"
    with db.read() as conn:
        got = dict(conn.execute(text("select battle_id, winner from votes")).all())
    assert got == {ok1: "model_a", dup: "tie", leak: "model_a", ok2: "model_b"}

    # an open battle that already has a vote row (never made by this code): the batch insert
    # fails, the batch is redone vote by vote and only that vote is refused
    a, b = play(db, winner=None), play(db, winner=None)
    with db.write() as conn:
        conn.execute(text("insert into votes (battle_id, winner, tstamp, judge, counted) values (:b, 'tie', 0, 's1', :t)"), {"b": b, "t": True})
    res = writer._commit([(req(a), None), (req(b), None)])
    assert res[0].winner == "model_a" and res[1] is None
    assert get_battle(db, a).status == "voted" and get_battle(db, b).status == "open"


def test_vote_writer_async_futures_settle_per_batch(db):
    import asyncio

    from openarena.storage.votes import VoteWriter, record_vote_async

    bids = [play(db, winner=None) for _ in range(30)]
    writer = VoteWriter(db).start()

    async def main():
        outs = await asyncio.gather(*[record_vote_async(db, writer, bid, "s1", "tie") for bid in bids], return_exceptions=True)
        again = await asyncio.gather(record_vote_async(db, writer, bids[0], "s1", "model_a"), return_exceptions=True)
        return outs, again

    try:
        outs, again = asyncio.run(main())
    finally:
        writer.stop()
    assert [o.winner for o in outs] == ["tie"] * 30
    assert isinstance(again[0], VoteRefused) and again[0].code == "already_voted"


def test_vote_writer_after_its_postgresql_backend_is_terminated(db):
    """The writer keeps its own connection between batches: when the server ends it, the next
    vote fails as not saved (the route answers 503) and is not stored, never acknowledged and
    lost; the vote after it is written on a fresh connection."""
    if db.backend != "postgresql":
        pytest.skip("the writer keeps a connection of its own on PostgreSQL only")
    from sqlalchemy.exc import SQLAlchemyError

    from openarena.storage.votes import VoteWriter

    bids = [play(db, winner=None) for _ in range(3)]
    writer = VoteWriter(db).start()
    try:
        assert record_vote(db, bids[0], "s1", "model_a", writer=writer).winner == "model_a"
        pid = writer._conn.connection.dbapi_connection.info.backend_pid
        with db.engine.connect() as conn:
            assert conn.execute(text("select pg_terminate_backend(:p)"), {"p": pid}).scalar() is True
        with pytest.raises(SQLAlchemyError):
            record_vote(db, bids[1], "s1", "model_b", writer=writer)
        assert record_vote(db, bids[2], "s1", "tie", writer=writer).winner == "tie"
    finally:
        writer.stop()
    assert stored_votes(db) == {bids[0]: "model_a", bids[2]: "tie"}


def test_vote_writer_answers_a_vote_in_doubt_by_what_is_stored(db, monkeypatch):
    """The connection lost after the COMMIT was sent (the server applied it, the answer never
    came): the writer looks the batch's votes up on a fresh connection and acknowledges the
    ones stored, so a vote is never reported "not saved" while it is in; lost before the
    COMMIT, the vote is reported not saved and is not stored."""
    if db.backend != "postgresql":
        pytest.skip("a database server's connection")
    from sqlalchemy.exc import DBAPIError

    from openarena.storage import votes as votes_module
    from openarena.storage.votes import VoteWriter

    real = votes_module.pg_pipeline
    lose = {"when": None}

    @contextlib.contextmanager
    def losing(conn, **kw):
        with real(conn, **kw) as raw:
            yield raw
        if lose["when"] == "after_commit" and raw.pgconn.transaction_status == 0:  # IDLE: committed
            raw.close()
        if lose["when"] == "before_commit" and raw.pgconn.transaction_status != 0:
            raw.close()
        if raw.closed:
            with real(conn) as gone:  # the next use of the connection fails as a lost one
                gone.cursor().execute("SELECT 1")

    monkeypatch.setattr(votes_module, "pg_pipeline", losing)
    bids = [play(db, winner=None) for _ in range(3)]
    writer = VoteWriter(db).start()
    try:
        lose["when"] = "after_commit"
        res = record_vote(db, bids[0], "s1", "model_b", writer=writer)
        assert (res.winner, res.counted) == ("model_b", True)
        lose["when"] = "before_commit"
        with pytest.raises(DBAPIError) as err:
            record_vote(db, bids[1], "s1", "tie", writer=writer)
        assert err.value.connection_invalidated
        lose["when"] = None
        assert record_vote(db, bids[2], "s1", "model_a", writer=writer).winner == "model_a"
    finally:
        writer.stop()
    assert stored_votes(db) == {bids[0]: "model_b", bids[2]: "model_a"}
    assert get_battle(db, bids[1]).status == "open"


def test_a_nul_in_a_battle_id_refuses_that_vote_alone(db):
    """PostgreSQL text cannot hold NUL: an id with one in it (a forged URL, %00) must not fail
    the statement its batch shares with other voters' votes; that vote alone is refused, as
    for any id no battle has."""
    import time as _time

    from openarena.storage.votes import VoteWriter, _VoteRequest, record_vote_async

    ok = play(db, winner=None)
    writer = VoteWriter(db)
    res = writer._commit([(_VoteRequest("zz\x00", "s1", "model_a", None, True, None, None, _time.time()), None),
                          (_VoteRequest(ok, "s1", "tie", None, True, None, None, _time.time()), None)])
    assert res[0] is None and res[1].winner == "tie"
    writer.start()
    try:
        with pytest.raises(VoteRefused) as err:
            asyncio_run(record_vote_async(db, writer, "\x00" * 32, "s1", "tie"))
        assert err.value.code == "not_found"
    finally:
        writer.stop()
    assert stored_votes(db) == {ok: "tie"}


def stored_votes(db) -> dict[str, str]:
    """{battle id: winner} of every stored vote."""
    with db.read() as conn:
        return dict(conn.execute(text("select battle_id, winner from votes")).all())


def asyncio_run(coro):
    import asyncio

    return asyncio.run(coro)


def test_a_queued_vote_batch_waits_for_locks_only_what_is_left_of_its_votes_timeout(db):
    """A lock held too long (a table locked by hand): the writer's batch waits for it only what
    is left of its oldest vote's lock timeout, so votes queued behind other batches (in several
    workers) are told "not saved" within about one lock timeout of their arrival, not after one
    timeout per batch ahead of them."""
    if db.backend != "postgresql":
        pytest.skip("PostgreSQL's lock_timeout")
    import time as _time

    from sqlalchemy.exc import OperationalError

    from openarena.storage.votes import VoteWriter, _VoteRequest

    from openarena.serving.vote_integrity import IntegrityPolicy

    bid = play(db, winner=None)
    impatient = Database.open(db.url, run_migrations=False, checkpoints=False, lock_timeout_s=3.0)
    writer = VoteWriter(impatient, integrity=IntegrityPolicy())
    waited = {}
    try:
        # battles locked: the first wait; votes locked: the battles' read passes, then the
        # integrity read waits (a second wait, which the deadline bounds too)
        for table in ("battles", "votes"):
            with db.engine.connect() as holder, holder.begin():
                holder.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
                t0 = _time.monotonic()
                with pytest.raises(OperationalError, match="lock timeout"):
                    writer._commit([(_VoteRequest(bid, "s1", "tie", None, True, None, None, _time.time() - 2.9), None)])
                waited[table] = _time.monotonic() - t0
        # the deadline ends with its batch: the next one, on the same connection, waits normally
        assert writer._commit([(_VoteRequest(bid, "s1", "tie", None, True, None, None, _time.time()), None)])[0].winner == "tie"
    finally:
        writer.stop()
        impatient.dispose()
    assert max(waited.values()) < 1.5, waited  # 0.1 s left of its 3 s (without the deadline: 3 s per lock)


def test_a_terminated_backend_in_a_pipeline_is_a_lost_connection(db):
    """PostgreSQL's 'terminating connection due to administrator command' (57P01) can arrive
    before psycopg marks the connection closed: it still counts as a lost connection (thrown
    away, not reset in pipeline mode; the vote writer then looks its votes up)."""
    if db.backend != "postgresql":
        pytest.skip("a database server's connection")
    import psycopg
    from sqlalchemy.exc import DBAPIError

    from openarena.storage.db import pg_pipeline

    with db.engine.connect() as conn:
        with pytest.raises(DBAPIError) as err:
            with pg_pipeline(conn):
                raise psycopg.errors.AdminShutdown("terminating connection due to administrator command")
        assert err.value.connection_invalidated and conn.invalidated
    with db.engine.connect() as conn:  # the pool hands out a working connection
        assert conn.execute(text("select 1")).scalar() == 1


def test_workers_share_one_budget_of_postgresql_connections():
    """Each worker of a server opens its share of the server's connections (pool and overflow),
    so 4 workers together stay within what one had (30), far from PostgreSQL's default
    max_connections of 100 (4 pools of 30 passed it after a restart in bench/serve_load.py)."""
    from openarena.storage.db import MAX_OVERFLOW, POOL_SIZE, _engine

    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # never connected: only the pool's sizes are read
    sizes = {n: (_engine(url, processes=n).pool.size(), _engine(url, processes=n).pool._max_overflow) for n in (1, 2, 4, 16)}
    assert sizes == {1: (POOL_SIZE, MAX_OVERFLOW), 2: (13, 3), 4: (7, 2), 16: (2, 2)}
    assert all(n * sum(sizes[n]) <= 64 for n in (1, 2, 4, 16))
