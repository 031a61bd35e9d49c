"""When the database fails (read-only, locked by another process, its folder deleted), over real
HTTP: the voter is told at once that the vote was NOT saved (503 with a message, within the
bounded lock wait), /healthz fails, no other route shows a bare 500, and no vote is
acknowledged that is not stored. Before: a bare 500 after up to 30 s, and with the folder
deleted votes were acknowledged and lost."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from sqlalchemy import event

from .helpers import new_battle, open_session, turn



def _votable_battle(c, h) -> str:
    bid = new_battle(c, h)
    r, ev = turn(c, h, bid, "hello")
    assert ev[-1][0] == "end" and ev[-1][1]["votable"], r.text
    return bid


def _n_votes(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM votes").fetchone()[0]


def _assert_not_saved(r, started: float, within_s: float) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["code"] == "not_saved" and "NOT saved" in body["error"]
    assert "Traceback" not in r.text and "arena.db" not in r.text and "/tmp" not in r.text  # no path
    assert time.monotonic() - started < within_s


def _db_path(live) -> Path:
    return Path(live.state.db.engine.url.database)


def test_read_only_database(arena_factory):
    live = arena_factory()
    with live.client() as c:
        h = open_session(c)
        bid = _votable_battle(c, h)

        def read_only(dbapi_conn, _record):  # what a read-only file or mount answers: SQLITE_READONLY
            dbapi_conn.execute("PRAGMA query_only=ON")

        event.listen(live.state.db.engine, "connect", read_only)
        live.state.db.engine.dispose()
        try:
            t0 = time.monotonic()
            _assert_not_saved(c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h), t0, 3)
            health = c.get("/healthz")
            assert health.status_code == 503 and health.json()["status"] == "unavailable"
            nb = c.post("/api/battles", json={"mode": "anony"}, headers=h)
            assert nb.status_code == 503 and nb.json()["code"] == "db_unavailable" and "nothing was saved" in nb.json()["error"]
            assert _n_votes(_db_path(live)) == 0
        finally:
            event.remove(live.state.db.engine, "connect", read_only)
            live.state.db.engine.dispose()
        assert c.get("/healthz").status_code == 200  # writable again: healthy, and the vote goes in
        assert c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h).status_code == 200
    assert _n_votes(_db_path(live)) == 1


def test_locked_database_fails_fast(arena_factory):
    live = arena_factory(db_lock_timeout_s=0.5)
    with live.client() as c:
        h = open_session(c)
        bid = _votable_battle(c, h)
        other = sqlite3.connect(_db_path(live), isolation_level=None, timeout=0.1)
        other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            t0 = time.monotonic()
            _assert_not_saved(c.post(f"/api/battles/{bid}/vote", json={"winner": "model_b"}, headers=h, timeout=10), t0, 4)
            t0 = time.monotonic()
            assert c.get("/healthz", timeout=10).status_code == 503 and time.monotonic() - t0 < 3
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert c.get("/healthz").status_code == 200
        v = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_b"}, headers=h)
        assert v.status_code == 200 and v.json()["counted"]
    assert _n_votes(_db_path(live)) == 1


def test_deleted_data_folder_loses_no_acknowledged_vote(arena_factory, tmp_path):
    live = arena_factory()
    folder = _db_path(live).parent
    with live.client() as c:
        h = open_session(c)
        first = _votable_battle(c, h)
        assert c.post(f"/api/battles/{first}/vote", json={"winner": "tie"}, headers=h).status_code == 200
        bids = [_votable_battle(c, h) for _ in range(3)]
        assert c.get("/healthz").status_code == 200
        shutil.rmtree(folder)  # the data folder is deleted under the running server
        acknowledged = []
        for bid in bids:
            t0 = time.monotonic()
            r = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h)
            if r.status_code == 200:
                acknowledged.append(bid)
            _assert_not_saved(r, t0, 3)
        assert acknowledged == []
        health = c.get("/healthz")
        assert health.status_code == 503 and str(folder) not in health.text
        nb = c.post("/api/battles", json={"mode": "anony"}, headers=h)
        assert nb.status_code == 503 and str(folder) not in nb.text
        assert c.get("/").status_code in (200, 503)  # a page: never a traceback
