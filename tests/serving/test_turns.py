"""A battle turn under abuse, over real HTTP against uvicorn: what one turn may cost the server
(bytes and render work O(answer), answer length and duration capped), model text that is not
valid Unicode, votes while a turn outlives its lease, and votes on empty answers."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from openarena.demo.mock_server import Behaviour
from openarena.providers.registry import ModelConfig
from openarena.storage.battles import get_battle
from openarena.storage.export import EXPORT_FORMATS, export_battles

from .helpers import events, new_battle, open_session, turn

LONG = "word " * 3000  # 15,000 characters


def _answers(live, bid):
    b = get_battle(live.state.db, bid)
    return b.conversation_a[-1]["content"], b.conversation_b[-1]["content"]


def _wait_released(live, bid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while get_battle(live.state.db, bid).lease_until is not None and time.monotonic() < deadline:
        time.sleep(0.05)


# -- defect 1: one user cannot make the server re-render and re-send a growing answer -------------


def test_bytes_sent_grow_with_the_answer_not_its_square(arena_factory):
    """A 15,000-character answer streamed in 200 pieces over ~2 s: the old server re-rendered
    and re-sent the whole answer every 60 ms (O(n^2) bytes: ~0.9 MB for the two sides here);
    now the deltas plus one rendered answer per side: a few times the answer length."""
    slow_long = Behaviour.fixed(LONG, chunk_chars=75, chunk_delay_s=0.01)
    live = arena_factory({"zephyrine-alpha-7b": slow_long, "orcanova-beta-13b": slow_long})
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        r = c.post(f"/api/battles/{bid}/turns", json={"prompt": "go"}, headers=h)
    assert r.status_code == 200
    answer_bytes = 2 * len(LONG)
    assert len(r.content) < 2.5 * answer_bytes + 8_000, len(r.content)
    ev = events(r.text)
    assert ev[-1][0] == "end" and ev[-1][1]["votable"] and not ev[-1][1]["failed"]
    for side in "ab":  # the deltas add up to the answer; one rendered answer at the end
        assert "".join(d["text"] for e, d in ev if e == "delta" and d["side"] == side) == LONG
        finals = [d for e, d in ev if e == "answer" and d["side"] == side]
        assert len(finals) == 1 and finals[0]["done"] and finals[0]["html"].count("word") == 3000
    assert len([e for e, _ in ev if e == "delta"]) > 10  # it did stream
    assert _answers(live, bid) == (LONG, LONG)


def test_a_long_answer_is_cut_at_the_server_cap_with_a_note(arena_factory):
    live = arena_factory({"zephyrine-alpha-7b": Behaviour.fixed(LONG, chunk_chars=100, chunk_delay_s=0.002),
                          "orcanova-beta-13b": Behaviour.fixed("short answer")}, max_answer_chars=1_000)
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        r, ev = turn(c, h, bid, "go")
    notes = [d for e, d in ev if e == "note"]
    assert ev[-1][0] == "end" and ev[-1][1]["votable"]
    b = get_battle(live.state.db, bid)
    long_side = "a" if b.model_a == "zephyrine-alpha-7b" else "b"
    assert [n["side"] for n in notes] == [long_side] and "1,000 characters" in notes[0]["message"]
    stored = dict(zip("ab", _answers(live, bid)))
    assert stored[long_side] == LONG[:1_000] and stored["ab".replace(long_side, "")] == "short answer"
    assert b.meta[long_side]["finish_reason"] == "length"
    time.sleep(0.2)
    assert any(req.disconnected for req in live.mock.requests)  # the upstream stream was closed


def test_a_slow_turn_is_cut_at_the_time_cap_and_ends_cleanly(arena_factory):
    slow = Behaviour.fixed("tick " * 200, chunk_delay_s=0.05)  # 10 s if left alone
    live = arena_factory({"zephyrine-alpha-7b": slow, "orcanova-beta-13b": slow}, max_turn_s=1.0)
    t0 = time.monotonic()
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        r, ev = turn(c, h, bid, "go")
    assert time.monotonic() - t0 < 5
    assert ev[-1][0] == "end" and ev[-1][1]["votable"]
    assert sorted(d["side"] for e, d in ev if e == "note") == ["a", "b"]
    a, b = _answers(live, bid)
    assert 0 < len(a) < len("tick " * 200) and 0 < len(b) < len("tick " * 200)


def test_max_tokens_sent_is_the_models_own_capped_by_the_server():
    from openarena.serving.engine import TurnLimits

    limits = TurnLimits(max_tokens=4096)
    base = dict(name="m", base_url="http://127.0.0.1:1/v1", model_id="m", api_key_env=None)
    assert limits.tokens_for(ModelConfig(**base)) == 4096
    assert limits.tokens_for(ModelConfig(**base, max_tokens=100)) == 100
    assert limits.tokens_for(ModelConfig(**base, max_tokens=10_000)) == 4096
    assert TurnLimits(max_tokens=None).tokens_for(ModelConfig(**base)) is None


def test_every_answer_request_carries_max_tokens(arena_factory):
    live = arena_factory(max_answer_tokens=321)
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        turn(c, h, bid, "hello")
    assert [req.body.get("max_tokens") for req in live.mock.requests] == [321, 321]


# -- defect 6: model text that is not valid Unicode ------------------------------------------------


def test_lone_surrogates_from_a_model_are_cleaned_and_the_battle_exports(arena_factory, tmp_path):
    live = arena_factory({
        "zephyrine-alpha-7b": Behaviour(chunks=["bad \ud800 text ", "and a split pair \ud83d", "\ude00 end"]),
        "orcanova-beta-13b": Behaviour.fixed("nul\x00 here"),
    })
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        r, ev = turn(c, h, bid, "go")
        assert ev and ev[-1][0] == "end" and ev[-1][1]["votable"], r.text
        assert c.post(f"/api/battles/{bid}/vote", json={"winner": "tie"}, headers=h).status_code == 200
    b = get_battle(live.state.db, bid)
    texts = {b.model_a: b.conversation_a[-1]["content"], b.model_b: b.conversation_b[-1]["content"]}
    assert texts == {"zephyrine-alpha-7b": "bad \ufffd text and a split pair \U0001F600 end", "orcanova-beta-13b": "nul\ufffd here"}
    for fmt in EXPORT_FORMATS:
        assert export_battles(live.state.db, tmp_path / f"out.{fmt}", fmt) == 1


# -- defect 7: votes while a turn streams past its lease; votes on empty answers --------------------


def test_no_vote_while_a_turn_outlives_its_lease_and_its_text_is_kept(arena_factory):
    """lease_s = 0.6 s and a second turn of ~2 s: the old server took a vote 1.2 s into it (the
    lease had expired) and then lost that turn's text (its save found the battle voted)."""
    text = "slow " * 40
    slow = Behaviour.fixed(text, chunk_delay_s=0.05)
    live = arena_factory({"zephyrine-alpha-7b": slow, "orcanova-beta-13b": slow}, lease_s=0.6)
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        assert turn(c, h, bid, "first")[1][-1][1]["votable"]
        done: dict = {}

        def run_turn():
            with httpx.Client(base_url=live.url, timeout=30, cookies=c.cookies) as c2:
                r = c2.post(f"/api/battles/{bid}/turns", json={"prompt": "go"}, headers=h)
                done["events"] = events(r.text)

        t = threading.Thread(target=run_turn)
        t.start()
        time.sleep(1.2)  # twice the lease, while the answers still stream
        early = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h)
        t.join(timeout=30)
        assert early.status_code == 409 and early.json()["code"] == "busy", early.text
        assert done["events"][-1][0] == "end" and done["events"][-1][1]["votable"]
        late = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h)
        assert late.status_code == 200 and late.json()["counted"]
    b = get_battle(live.state.db, bid)
    assert b.turns == 2 and [m["content"] for m in b.conversation_a] == ["first", text, "go", text]


def test_an_empty_answer_cannot_be_voted_on(arena_factory):
    live = arena_factory({"zephyrine-alpha-7b": Behaviour.fixed(""), "orcanova-beta-13b": Behaviour.fixed("an answer")})
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        r, ev = turn(c, h, bid, "go")
        assert ev[-1][0] == "end" and not ev[-1][1]["votable"] and not ev[-1][1]["failed"]
        assert "empty" in ev[-1][1]["message"]
        v = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_b"}, headers=h)
        assert v.status_code == 409 and v.json()["code"] == "empty_answer" and "not recorded" in v.json()["error"]
    with live.state.db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM votes").scalar() == 0


def test_a_turn_stopped_before_any_text_cannot_be_voted_on(arena_factory):
    late = Behaviour.fixed("too late", delay_s=3)
    live = arena_factory({"zephyrine-alpha-7b": late, "orcanova-beta-13b": late})
    with live.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        with pytest.raises(httpx.ReadTimeout):  # the Stop button, before any answer came
            c.post(f"/api/battles/{bid}/turns", json={"prompt": "go"}, headers=h, timeout=httpx.Timeout(30, read=0.5))
        _wait_released(live, bid)
        b = get_battle(live.state.db, bid)
        assert b.turns == 1 and b.conversation_a[-1] == {"role": "assistant", "content": ""}
        v = c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h)
        assert v.status_code == 409 and v.json()["code"] == "empty_answer"
        # another turn with real answers makes the battle votable again
        late_ok = c.post(f"/api/battles/{bid}/turns", json={"prompt": "again"}, headers=h, timeout=30)
        assert events(late_ok.text)[-1][1]["votable"]
        assert c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h).status_code == 200


def test_answers_are_rendered_out_of_process_with_the_size_cap():
    import asyncio

    from openarena.serving.render import render_answer
    from openarena.serving.safety import render_markdown

    text = "**bold** <script>alert(1)</script> " + "x" * 50
    assert asyncio.run(render_answer(text, 10_000)) == render_markdown(text)
    assert asyncio.run(render_answer(text, 8)) == render_markdown("**bold**")
