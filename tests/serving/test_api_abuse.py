"""The battle API against abuse and bad text: new battles are rate-limited per session and per IP
like turns and votes (429 with a clear message and Retry-After, no row stored past the limit),
and a prompt (or any other field) holding a lone surrogate is refused with 422 before any model
is called."""

from __future__ import annotations

from sqlalchemy import text

from tests.serving.helpers import new_battle, open_session, turn


def _battles(live) -> int:
    with live.state.db.read() as conn:
        return conn.execute(text("SELECT count(*) FROM battles")).scalar_one()


def test_new_battles_are_rate_limited_per_session_by_default(arena):
    # the product's defaults (ServeSettings: 20 new battles a minute per session)
    limit = int(arena.state.settings.battles_per_minute_session)
    assert 0 < limit < 100
    with arena.client() as c:
        h = open_session(c)
        codes = [c.post("/api/battles", json={"mode": "anony"}, headers=h) for _ in range(limit + 5)]
    assert [r.status_code for r in codes[:limit]] == [200] * limit
    refused = codes[limit]
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert "Too many new battles: please wait" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) >= 1
    assert all(r.status_code == 429 for r in codes[limit:])
    assert _battles(arena) == limit  # a refused call stores nothing


def test_new_battles_are_rate_limited_per_ip(arena_factory):
    live = arena_factory(battles_per_minute_ip=3, battles_per_minute_session=100)
    with live.client() as one, live.client() as two:
        h1, h2 = open_session(one), open_session(two)
        assert one.post("/api/battles", json={"mode": "anony"}, headers=h1).status_code == 200
        assert two.post("/api/battles", json={"mode": "anony"}, headers=h2).status_code == 200
        assert one.post("/api/battles", json={"mode": "direct", "model_a": "zephyrine-alpha-7b"}, headers=h1).status_code == 200
        r = two.post("/api/battles", json={"mode": "anony"}, headers=h2)  # another session, same IP
        assert r.status_code == 429 and "new battles" in r.json()["error"]
    assert _battles(live) == 3


def test_turns_stay_rate_limited_and_battle_limit_is_its_own(arena_factory):
    live = arena_factory(prompts_per_minute_session=1, battles_per_minute_session=2)
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        assert turn(c, h, bid, "one")[0].status_code == 200
        r, _ = turn(c, h, bid, "two")
        assert r.status_code == 429 and "Too many prompts" in r.json()["error"]
        new_battle(c, h)  # the prompt limit does not spend the battle allowance
        r = c.post("/api/battles", json={"mode": "anony"}, headers=h)
        assert r.status_code == 429


def test_rate_limits_off_leave_battle_creation_open(arena_factory):
    live = arena_factory(battles_per_minute_session=0, battles_per_minute_ip=0)
    with live.client() as c:
        h = open_session(c)
        assert all(c.post("/api/battles", json={"mode": "anony"}, headers=h).status_code == 200 for _ in range(30))


def test_lone_surrogate_prompt_is_refused_before_any_model_call(arena):
    with arena.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        # valid JSON: the escape decodes to a lone surrogate, which no encoder accepts
        body = b'{"prompt": "\\ud800 hi"}'
        r = c.post(f"/api/battles/{bid}/turns", content=body, headers={**h, "content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "bad_text" and "prompt" in r.json()["error"] and "surrogate" in r.json()["error"]
        r = c.post("/api/battles", content=b'{"mode": "named", "model_a": "\\udfff", "model_b": "x"}', headers={**h, "content-type": "application/json"})
        assert r.status_code == 422 and r.json()["code"] == "bad_text" and "model_a" in r.json()["error"]
        r = c.post(f"/api/battles/{bid}/vote", content=b'{"winner": "\\ud83d"}', headers={**h, "content-type": "application/json"})
        assert r.status_code == 422
        assert arena.mock.requests == []  # no model was called
        # the battle is untouched: a good prompt still works and the battle is not failed
        r, ev = turn(c, h, bid, "hello \U0001f600")
        assert r.status_code == 200 and ev[-1][0] == "end" and ev[-1][1]["votable"]
    b = arena.state.db
    with b.read() as conn:
        status = conn.execute(text("SELECT status FROM battles WHERE id = :i"), {"i": bid}).scalar_one()
    assert status != "failed"
