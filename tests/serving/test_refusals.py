"""The web layer's boundary: request bodies as pydantic models with Literal types, refusals as
one JSON shape ``{"error", "code"}`` from one registered handler, never pydantic's error list."""

from __future__ import annotations

from typing import get_args

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from openarena.data.schema import WINNERS
from openarena.serving.routes import bodies
from openarena.serving.routes.errors import ApiError, from_validation, refusal
from tests.serving.helpers import new_battle, open_session, turn


def _refusal_of(model, data) -> ApiError:
    with pytest.raises(ValidationError) as e:
        model.model_validate(data)
    errs = [{**x, "loc": ("body", *x["loc"])} for x in e.value.errors()]
    return from_validation(RequestValidationError(errs))


def test_literal_types_are_the_field_terms():
    assert set(get_args(bodies.Winner)) == set(WINNERS)
    assert set(get_args(bodies.Mode)) == {"anony", "named", "direct"}


@pytest.mark.parametrize("model,data,code", [
    (bodies.Vote, {}, "bad_winner"),
    (bodies.Vote, {"winner": "model_z"}, "bad_winner"),
    (bodies.Vote, {"winner": None}, "bad_winner"),
    (bodies.NewBattle, {"mode": "sneaky"}, "bad_mode"),
    (bodies.NewBattle, {"mode": "named", "model_a": 5}, "bad_model"),
    (bodies.NewBattle, {"mode": "named", "model_a": "x" * 201}, "bad_model"),
    (bodies.Turn, {}, "empty_prompt"),
    (bodies.Turn, {"prompt": " \n\t"}, "empty_prompt"),
    (bodies.Turn, {"prompt": ["hi"]}, "empty_prompt"),
    (bodies.RunBlock, {"side": "c", "block": 0}, "bad_side"),
    (bodies.RunBlock, {"side": "a", "block": True}, "bad_block"),
    (bodies.RunBlock, {"side": "a", "block": 1000}, "bad_block"),
    (bodies.RunBlock, {"side": "a", "block": "0"}, "bad_block"),
    (bodies.NewRound, {"handle": "victim1\n"}, "bad_handle"),
    (bodies.NewRound, {"handle": "x"}, "bad_handle"),
    (bodies.RoundTurn, {"prompt": ""}, "empty_prompt"),
    (bodies.Turn, {"prompt": "ok", "\ud800": 1}, "bad_text"),
])
def test_each_field_is_refused_with_its_own_code_and_plain_words(model, data, code):
    err = _refusal_of(model, data)
    assert (err.status, err.code) == (422, code)
    for internal in ("pydantic", "Input should", "errors.pydantic.dev", "literal_error", "type="):
        assert internal not in err.message


def test_good_bodies_give_typed_values_and_ignore_unknown_keys():
    assert bodies.Vote.model_validate({"winner": "tie (bothbad)", "extra": 1}).winner == "tie (bothbad)"
    assert bodies.NewBattle.model_validate({}).mode == "anony"
    assert bodies.RunBlock.model_validate({"side": "b", "block": 999}).block == 999
    assert bodies.NewRound.model_validate({"handle": "a.b-c_1"}).handle == "a.b-c_1"


def test_bodies_that_are_not_json_objects_are_400():
    assert from_validation(RequestValidationError([{"type": "json_invalid", "loc": ("body", 3), "msg": "x", "input": {}}])).message == "The request body must be JSON."
    assert from_validation(RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "x", "input": None}])).status == 400
    err = _refusal_of(bodies.Vote, [1, 2])
    assert (err.status, err.code, err.message) == (400, "bad_request", "The request body must be a JSON object.")


def test_one_handler_is_registered_for_refusals(arena):
    from fastapi import FastAPI

    app: FastAPI = arena.server.config.app
    assert app.exception_handlers[ApiError] is refusal
    assert app.exception_handlers[RequestValidationError] is refusal


def test_the_api_answers_every_malformed_body_in_its_own_words(arena):
    with arena.client() as c:
        h = open_session(c)
        bid = new_battle(c, h)
        jh = {**h, "content-type": "application/json"}
        cases = [
            (c.post("/api/battles", content=b"{not json", headers=jh), 400, "bad_request"),
            (c.post("/api/battles", content=b"[1, 2]", headers=jh), 400, "bad_request"),
            (c.post("/api/battles", content=b'{"mode": "anony"}', headers={**h, "content-type": "text/plain"}), 400, "bad_request"),
            # bodies FastAPI fails to parse before validation (was {"detail": "There was an error parsing the body"})
            (c.post("/api/battles", content=b"[" * 100_000 + b"]" * 100_000, headers=jh), 400, "bad_request"),
            (c.post("/api/battles", content=b'{"mode": 1' + b"0" * 5000 + b"}", headers=jh), 400, "bad_request"),
            (c.post("/api/battles", content=b'{"mode": "\xff\xfe"}', headers=jh), 400, "bad_request"),
            (c.post("/api/battles", json={"mode": "x" * 5000}, headers=h), 422, "bad_mode"),
            (c.post("/api/battles", json={"mode": "named", "model_a": "nope", "model_b": "nope2"}, headers=h), 422, "bad_model"),
            (c.post(f"/api/battles/{bid}/vote", json={}, headers=h), 422, "bad_winner"),
            (c.post(f"/api/battles/{bid}/turns", json={"prompt": 7}, headers=h), 422, "empty_prompt"),
            (c.post(f"/api/battles/{bid}/turns", json={"prompt": "x" * 12_001}, headers=h), 422, "too_long"),
            (c.post(f"/api/battles/{bid}/run", json={"side": "a", "block": -1}, headers=h), None, None),
        ]
        for r, status, code in cases:
            body = r.json()
            assert set(body) == {"error", "code"}, body
            assert "detail" not in body and "pydantic" not in r.text and "Input should" not in r.text
            if status is not None:
                assert (r.status_code, body["code"]) == (status, code), r.text
        assert "12,001 characters; at most 12,000" in cases[10][0].json()["error"]
        # the session and CSRF checks come before the body is looked at
        r = c.post(f"/api/battles/{bid}/vote", json={"winner": "nobody"}, headers={})
        assert r.status_code == 403 and r.json()["code"] == "csrf"
        # a query the page does not understand: plain words, no validation internals
        r = c.get("/leaderboard.json?style=yes")
        assert r.status_code == 422 and r.json()["code"] == "bad_request" and "style" in r.json()["error"]
        r = c.get("/leaderboard?style=yes", headers={"accept": "text/html"})
        assert r.status_code == 422 and "text/html" in r.headers["content-type"] and "Not understood" in r.text and "pydantic" not in r.text
        # the battle is untouched by all of this
        r, ev = turn(c, h, bid, "hello")
        assert r.status_code == 200 and ev[-1][0] == "end"
