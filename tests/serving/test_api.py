"""The battle API over real HTTP: the flow, the leak test (every byte before the vote), CSRF,
forged/replayed/double votes, failing endpoints, identity leaks, caps and rate limits, stop,
regenerate, the leaderboard after votes, and the CLI on the stored votes."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from sqlalchemy import text

from openarena.demo.mock_server import Behaviour
from openarena.storage.battles import get_battle
from tests.serving.conftest import GOOD, MODELS
from tests.serving.helpers import events, new_battle, open_session, play, turn


def forbidden(live) -> list[str]:
    words = []
    for name, (mid, org) in MODELS.items():
        words += [name, mid, org, name.split("-")[0]]
    words.append(f":{live.mock.port}")
    return [w.lower() for w in words]


def assert_clean(what: str, data: bytes | str, words: list[str]) -> None:
    low = (data.decode("utf-8", "replace") if isinstance(data, bytes) else data).lower()
    hits = [w for w in words if w in low]
    assert not hits, f"{what} leaks {hits}"


def test_leak_no_byte_before_the_vote_names_a_model(arena):
    words = forbidden(arena)
    seen: list[tuple[str, bytes]] = []

    def record(resp: httpx.Response) -> None:
        resp.read()
        head = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
        seen.append((f"{resp.request.method} {resp.request.url.path}", head.encode() + b"\n\n" + resp.content))

    with httpx.Client(base_url=arena.url, timeout=30, event_hooks={"response": [record]}) as c:
        h = open_session(c)
        for path in ("/static/arena.js", "/static/style.css", "/about", "/favicon.ico"):
            c.get(path)
        bid = new_battle(c, h)
        r, ev = turn(c, h, bid, "What is the capital of France?")
        assert [e for e, _ in ev].count("end") == 1 and ev[-1][1]["votable"]
        r, ev = turn(c, h, bid, "And of Italy?")
        assert ev[-1][1]["turns"] == 2
        r = c.post(f"/api/battles/{bid}/regenerate", json={}, headers=h)
        assert r.status_code == 200
        before = list(seen)
        v = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_b"}, headers=h)
    assert len(before) >= 9
    for what, data in before:
        assert_clean(what, data, words)
    assert "set-cookie" in before[0][1].decode().lower()
    reveal = v.json()
    assert {reveal["model_a"], reveal["model_b"]} == set(MODELS) and reveal["counted"]


def test_answers_stream_side_by_side_and_are_stored(arena):
    with arena.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        r, ev = turn(c, h, bid, "one **two** <script>x</script>")
        assert r.headers["content-type"].startswith("text/event-stream")
        sides = {d["side"] for e, d in ev if e == "answer"}
        assert sides == {"a", "b"}
        final = {d["side"]: d["html"] for e, d in ev if e == "answer" and d["done"]}
        echo = [h_ for h_ in final.values() if "Echo" in h_][0]
        assert "&lt;script&gt;" in echo and "<script>" not in echo and "<strong>two</strong>" in echo
    b = get_battle(arena.state.db, bid)
    assert b.turns == 1 and b.conversation_a[0] == {"role": "user", "content": "one **two** <script>x</script>"}
    assert b.sampling_policy == "fastchat" and b.sampling_prob == pytest.approx(1.0)
    assert b.meta["a"]["finish_reason"] == "stop"


def test_csrf_and_session_are_required(arena):
    with arena.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        for headers, code in (({}, "csrf"), ({"x-csrf-token": "0" * 64}, "csrf"), ({**h, "origin": "http://evil.example"}, "csrf")):
            r = c.post(f"/api/battles/{bid}/turns", json={"prompt": "hi"}, headers=headers)
            assert r.status_code == 403 and r.json()["code"] == code
        r = c.post("/leaderboard/refresh", json={})
        assert r.status_code == 403
    with httpx.Client(base_url=arena.url) as stranger:
        r = stranger.post("/api/battles", json={"mode": "anony"}, headers=h)
        assert r.status_code == 403 and r.json()["code"] == "no_session"
        stranger.cookies.set("oa_session", "forged.value")
        r = stranger.post("/api/battles", json={"mode": "anony"}, headers=h)
        assert r.status_code == 403


def test_forged_replayed_and_double_votes_are_refused(arena):
    with arena.client() as c, arena.client() as other:
        h = open_session(c)
        h2 = open_session(other)
        bid = new_battle(c, h)
        r = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h)
        assert r.status_code == 409 and r.json()["code"] == "no_answer"
        turn(c, h, bid, "hi")
        r = c.post(f"/api/battles/{'0' * 32}/vote", json={"winner": "model_a"}, headers=h)
        assert r.status_code == 404 and "No such battle" in r.json()["error"]
        r = other.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h2)  # replay from another session
        assert r.status_code == 404
        r = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_z"}, headers=h)
        assert r.status_code == 422
        assert c.post(f"/api/battles/{bid}/vote", json={"winner": "tie"}, headers=h).status_code == 200
        r = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h)
        assert r.status_code == 409 and "already been voted" in r.json()["error"]
        r, _ = turn(c, h, bid, "more?")
        assert r.status_code == 409
    with arena.state.db.read() as conn:
        assert conn.execute(text("select count(*) from votes")).scalar() == 1


def test_failing_endpoint_makes_the_battle_unvotable(arena_factory):
    live = arena_factory({"zephyrine-alpha-7b": GOOD["zephyrine-alpha-7b"], "orcanova-beta-13b": Behaviour.failing(500)})
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        r, ev = turn(c, h, bid, "hi")
        failed = [d for e, d in ev if e == "failed"]
        assert len(failed) == 1 and "cannot be voted" in failed[0]["message"]
        assert_clean("failure event", r.text, forbidden(live))
        assert ev[-1] == ("end", {"votable": False, "failed": True, "turns": 1, "turns_left": 9, "message": ev[-1][1]["message"]})
        v = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h)
        assert v.status_code == 409 and v.json()["code"] == "failed"
    b = get_battle(live.state.db, bid)
    assert b.status == "failed" and "http_status" in b.error


def test_identity_leak_is_recorded_but_not_counted(arena_factory):
    live = arena_factory({"zephyrine-alpha-7b": Behaviour.fixed("I was trained by OpenAI."), "orcanova-beta-13b": GOOD["orcanova-beta-13b"]})
    with live.client() as c:
        h = open_session(c)
        res = play(c, h, "who are you?")
    assert res["counted"] is False and "will not count" in res["message"]
    with live.state.db.read() as conn:
        row = conn.execute(text("select counted, reason from votes")).one()
    assert not row.counted and "openai" in row.reason


def test_registry_name_in_an_answer_is_a_leak(arena_factory):
    live = arena_factory({"zephyrine-alpha-7b": Behaviour.fixed("Hi, I am Zephyrine, nice to meet you."), "orcanova-beta-13b": GOOD["orcanova-beta-13b"]})
    with live.client() as c:
        assert play(c, open_session(c))["counted"] is False


def test_prompt_and_turn_caps(arena_factory):
    live = arena_factory(max_turns=2, max_prompt_chars=50)
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        r, _ = turn(c, h, bid, "x" * 51)
        assert r.status_code == 422 and "too long" in r.json()["error"]
        r, _ = turn(c, h, bid, "   ")
        assert r.status_code == 422
        assert turn(c, h, bid, "one")[1][-1][1]["turns_left"] == 1
        assert turn(c, h, bid, "two")[1][-1][1]["turns_left"] == 0
        r, _ = turn(c, h, bid, "three")
        assert r.status_code == 409 and r.json()["code"] == "turn_limit"


def test_rate_limit_per_session(arena_factory):
    live = arena_factory(prompts_per_minute_session=2)
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        assert turn(c, h, bid, "1")[0].status_code == 200
        assert turn(c, h, bid, "2")[0].status_code == 200
        r, _ = turn(c, h, bid, "3")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "wait" in r.json()["error"]


def test_regenerate_replaces_the_last_answers(arena_factory):
    live = arena_factory({"zephyrine-alpha-7b": Behaviour.scripted(["first", "second"]), "orcanova-beta-13b": Behaviour.scripted(["uno", "dos"])})
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        turn(c, h, bid, "q")
        r = c.post(f"/api/battles/{bid}/regenerate", json={}, headers=h)
        assert r.status_code == 200 and events(r.text)[-1][1]["turns"] == 1
    b = get_battle(live.state.db, bid)
    answers = {b.conversation_a[-1]["content"], b.conversation_b[-1]["content"]}
    assert answers == {"second", "dos"} and len(b.conversation_a) == 2


def test_stop_keeps_partial_answers_and_the_battle_votable(arena_factory):
    slow = Behaviour.fixed("word " * 200, chunk_delay_s=0.02)
    live = arena_factory({"zephyrine-alpha-7b": slow, "orcanova-beta-13b": slow})
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        got = {"a": 0, "b": 0}
        with c.stream("POST", f"/api/battles/{bid}/turns", json={"prompt": "go"}, headers=h) as r:
            for chunk in r.iter_bytes():
                for side in got:
                    got[side] += chunk.count(b'event: delta\ndata: {"side":"' + side.encode())
                if min(got.values()) >= 2:
                    break  # the Stop button: the browser aborts the request
        deadline = time.monotonic() + 5
        while get_battle(live.state.db, bid).lease_until is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        b = get_battle(live.state.db, bid)
        assert b.turns == 1 and 0 < len(b.conversation_a[-1]["content"]) < len("word " * 200)
        assert c.post(f"/api/battles/{bid}/vote", json={"winner": "model_b"}, headers=h).status_code == 200
    time.sleep(0.2)
    assert any(req.disconnected for req in live.mock.requests)


def test_named_and_direct_modes(arena_factory):
    live = arena_factory(extra={"named-only-model": Behaviour.fixed("I am only shown by name.")})
    with live.client() as c:
        h = open_session(c, "/side-by-side")
        r = c.post("/api/battles", json={"mode": "named", "model_a": "named-only-model", "model_b": "zephyrine-alpha-7b"}, headers=h)
        bid = r.json()["battle_id"]
        assert turn(c, h, bid, "hi")[1][-1][1]["votable"]
        v = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h).json()
        assert v["model_a"] == "named-only-model" and v["counted"]
        assert c.post("/api/battles", json={"mode": "named", "model_a": "x", "model_b": "y"}, headers=h).status_code == 422
        r = c.post("/api/battles", json={"mode": "direct", "model_a": "orcanova-beta-13b"}, headers=h)
        did = r.json()["battle_id"]
        ev = turn(c, h, did, "ping")[1]
        assert {d["side"] for e, d in ev if e == "answer"} == {"a"} and not ev[-1][1]["votable"]
        assert c.post(f"/api/battles/{did}/vote", json={"winner": "model_a"}, headers=h).status_code == 409
    # anonymous battles never draw a model that is not anonymous
    assert "named-only-model" not in live.state.sampler.names


def test_leaderboard_after_votes_and_cli(arena, tmp_path, monkeypatch):
    with arena.client() as c:
        h = open_session(c)
        for i in range(8):
            play(c, h, f"prompt {i}", winner=["model_a", "model_b", "tie", "model_a"][i % 4])
        snap = arena.state.leaderboard.refresh()
        assert snap.n_votes == 8 and ("full", False) in snap.boards and ("full", True) in snap.boards
        page = c.get("/leaderboard")
        assert page.status_code == 200 and "zephyrine-alpha-7b" in page.text and "Votes per model" in page.text
        plot = c.get("/leaderboard/plot.png")
        assert plot.status_code == 200 and plot.content[:4] == b"\x89PNG"
        assert c.get("/leaderboard?category=full&style=1").status_code == 200
        data = c.get("/leaderboard.json").json()
        assert sum(data["votes_per_model"].values()) == 16
        r = c.post("/leaderboard/refresh", json={}, headers=h)
        assert r.status_code == 202
    # the sampler learnt the vote counts
    assert sum(arena.state.sampler.votes.values()) == 16
    from typer.testing import CliRunner

    from openarena.cli.main import app

    runner = CliRunner()
    url = arena.state.db.url
    res = runner.invoke(app, ["leaderboard", url, "--format", "csv", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "zephyrine-alpha-7b" in res.output and res.output.startswith("rank_ub,model")
    monkeypatch.setenv("OPENARENA_DATABASE_URL", url)
    res = runner.invoke(app, ["leaderboard", "db", "--format", "json", "--quiet"])
    assert res.exit_code == 0 and json.loads(res.output)["provenance"]["n_battles"] == 8
    out = tmp_path / "votes.json"
    res = runner.invoke(app, ["export", str(out)])
    assert res.exit_code == 0 and len(json.loads(out.read_text())) == 8
    res = runner.invoke(app, ["leaderboard", "sqlite:////nonexistent/dir/x.db", "--quiet"])
    assert res.exit_code == 2


def test_leaderboard_is_computed_in_a_child_process(arena):
    """The recomputation (seconds of GIL-holding work on a large arena) runs in a niced child
    process, not in a thread of the server; a child that died is replaced; stop() ends it."""
    import os

    cache = arena.state.leaderboard
    assert cache.process
    with arena.client() as c:
        h = open_session(c)
        for i in range(4):
            play(c, h, f"prompt {i}", winner=["model_a", "tie"][i % 2])
    snap = cache.refresh()
    child = cache._child
    assert snap.n_votes == 4 and ("full", False) in snap.boards and snap.boards[("full", False)].rows
    assert child is not None and child.alive() and child._proc.pid != os.getpid()
    assert os.getpriority(os.PRIO_PROCESS, child._proc.pid) >= os.getpriority(os.PRIO_PROCESS, 0) + 10 or os.getpriority(os.PRIO_PROCESS, child._proc.pid) == 19
    assert sum(arena.state.sampler.votes.values()) == 8
    child._proc.kill()
    child._proc.join()
    snap = cache.refresh()
    assert snap.error is None and snap.n_votes == 4 and cache._child is not child and cache._child.alive()
    from openarena.serving.leaderboard_cache import LeaderboardCache

    here = LeaderboardCache(arena.state.db, arena.state.registry, process=False).refresh()  # same boards in a thread
    assert here.boards[("full", False)].rows == snap.boards[("full", False)].rows and here.n_votes == 4
    last = cache._child
    cache.stop()
    assert not last.alive() and cache._child is None


def test_leaderboard_falls_back_to_a_thread_when_its_process_cannot_start(arena, monkeypatch):
    from openarena.serving import leaderboard_cache as lc

    class Unstartable:  # what a child looks like whose spawn failed (e.g. __main__ read from stdin)
        answered = False

        def alive(self):
            return True

        def compute(self, url, models):
            raise lc._ChildGone("the leaderboard process stopped (EOFError)")

        def close(self):
            pass

    monkeypatch.setattr(lc, "_Child", Unstartable)
    with arena.client() as c:
        h = open_session(c)
        for i in range(3):
            play(c, h, f"prompt {i}")
    snap = arena.state.leaderboard.refresh()
    assert snap.error is None and snap.n_votes == 3 and ("full", False) in snap.boards
    assert arena.state.leaderboard.process is False  # later refreshes run in the thread directly


def test_pages_render_with_security_headers(arena):
    with arena.client() as c:
        for path in ("/", "/side-by-side", "/direct", "/leaderboard", "/about"):
            r = c.get(path)
            assert r.status_code == 200
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
            assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
            assert "<script>" not in r.text  # no inline script anywhere
    with httpx.Client(base_url=arena.url) as fresh:
        page = fresh.get("/about")
        cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie and "secure" not in cookie
    assert "may be released publicly for research" in page.text


def test_concurrent_votes_on_one_battle_count_once(arena):
    with arena.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        turn(c, h, bid, "hi")
        cookies = dict(c.cookies)

    async def burst():
        async with httpx.AsyncClient(base_url=arena.url, cookies=cookies) as ac:
            rs = await asyncio.gather(*[ac.post(f"/api/battles/{bid}/vote", json={"winner": w}, headers=h) for w in ["model_a", "model_b", "tie", "model_a"] * 3])
        return [r.status_code for r in rs]

    codes = asyncio.run(burst())
    assert codes.count(200) == 1 and codes.count(409) == 11
