"""The web leaderboard in plain words (issue 8, defect 10): a visitor never sees an exception
name, a CLI flag, a server path or the cache path; models that cannot be rated yet are listed as
"not enough votes"; the web board and `openarena leaderboard db` agree by default (anonymous
votes only)."""

from __future__ import annotations

import json
import re

import pandas as pd

from openarena.data.battles import BattleTable
from openarena.serving import leaderboard_cache as lc
from tests.serving.conftest import GOOD, MODELS
from tests.serving.helpers import open_session, play, turn

#: what must never reach a visitor
LEAKS = re.compile(r"Error|Traceback|--[a-z]|/tmp/|/srv/|\.db\b|\.py\b|cache")


def _table(rows):
    return BattleTable(pd.DataFrame(rows, columns=["model_a", "model_b", "winner"]), "db:test")


def test_unrated_models_are_listed_as_not_enough_votes():
    # c never lost: no finite Bradley-Terry rating; a and b are rated
    rows = [("a", "b", "model_a"), ("b", "a", "model_a"), ("a", "b", "model_b"), ("c", "a", "model_a"), ("c", "b", "model_a")]
    board = lc._board(_table(rows), "full", False, len(rows), {})
    assert {r["model"] for r in board.rows} == {"a", "b"}
    assert board.unrated == [{"model": "c", "votes": 2, "status": "not enough votes", "organization": "", "license": ""}]
    assert board.error is None


def test_a_board_that_cannot_be_fitted_says_so_plainly():
    # every model undefeated or winless: nothing can be rated yet
    rows = [("a", "b", "model_a"), ("a", "b", "model_a")]
    board = lc._board(_table(rows), "full", False, 2, {})
    assert board.error == lc.NOT_ENOUGH_VOTES and not LEAKS.search(board.error)
    assert {r["model"] for r in board.unrated} == {"a", "b"}


def test_a_failed_refresh_shows_no_internals(monkeypatch, tmp_path):
    def boom(db, models, trust=None):
        raise RuntimeError(f"ConvergenceError: no finite estimate; use --prior (cache {tmp_path}/leaderboard.db)")

    monkeypatch.setattr(lc, "compute_snapshot", boom)

    class Db:
        engine = None

    cache = lc.LeaderboardCache(Db(), [], process=False)
    snap = cache.refresh()
    assert snap.error == lc.REFRESH_FAILED and not LEAKS.search(snap.error)


def test_web_board_and_cli_agree_on_anonymous_votes(arena_factory, monkeypatch):
    from typer.testing import CliRunner

    from openarena.cli.main import app

    live = arena_factory(extra={"named-only-model": GOOD["orcanova-beta-13b"]})
    with live.client() as c:
        h = open_session(c)
        for i in range(6):
            play(c, h, f"prompt {i}", winner=["model_a", "model_b", "tie"][i % 3])
        # a named battle: stored and counted, but not on the leaderboard (the voter knew the models)
        r = c.post("/api/battles", json={"mode": "named", "model_a": "named-only-model", "model_b": "zephyrine-alpha-7b"}, headers=h)
        bid = r.json()["battle_id"]
        turn(c, h, bid, "hi")
        assert c.post(f"/api/battles/{bid}/vote", json={"winner": "model_a"}, headers=h).status_code == 200
        snap = live.state.leaderboard.refresh()
        page = c.get("/leaderboard").text
    assert snap.n_votes == 6 and snap.n_named == 1
    web = {r["model"]: r["rating"] for r in snap.boards[("full", False)].rows}
    assert set(web) == set(MODELS) and "named-only-model" not in page
    monkeypatch.setenv("OPENARENA_DATABASE_URL", live.state.db.url)
    res = CliRunner().invoke(app, ["leaderboard", "db", "--format", "json", "--quiet"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["provenance"]["n_battles"] == 6
    cli = {r["model"]: r["rating"] for r in doc["leaderboard"]}
    assert cli.keys() == web.keys() and all(abs(cli[m] - web[m]) < 1e-9 for m in cli)
    # --named adds the named vote: named-only-model won its only battle, so it has no finite
    # rating; by default (as the web board, which lists it as "not enough votes") it is left out
    # and said so; --no-drop-unrated makes that an error naming the way out
    res = CliRunner().invoke(app, ["leaderboard", "db", "--format", "json", "--named"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    step = doc["provenance"]["filters"][-1]
    assert step["name"] == "unrated" and "named-only-model" in step["detail"] and step["removed"] == 1
    assert "filter unrated: removed 1" in res.stderr and "named-only-model" in res.stderr
    assert {r["model"] for r in doc["leaderboard"]} == set(MODELS)
    res = CliRunner().invoke(app, ["leaderboard", "db", "--format", "json", "--quiet", "--named", "--no-drop-unrated"])
    assert res.exit_code == 2 and "named-only-model" in res.stderr and "--drop-unrated" in res.stderr


def test_the_reference_board_names_its_file_not_a_server_path_or_a_command(arena_factory, tmp_path):
    """The public board shown beside the arena's own says where it came from by file name only:
    no folder of the server, no CLI command."""
    import json

    secret_dir = tmp_path / "srv" / "private-cache"
    secret_dir.mkdir(parents=True)
    ref = secret_dir / "leaderboard.json"
    ref.write_text(json.dumps({
        "leaderboard": [{"model": "m-one", "rating": 1210.5, "num_battles": 800, "rating_q025": 1200.0, "rating_q975": 1221.0},
                        {"model": "m-two", "rating": 1189.5, "num_battles": 800, "rating_q025": 1179.0, "rating_q975": 1200.0}],
        "provenance": {"source": str(secret_dir / "chatbotarena_20240814.json"), "n_battles": 1600, "n_models": 2},
    }))
    live = arena_factory(reference_leaderboard=str(ref))
    with live.client() as c:
        page = c.get("/leaderboard").text
    assert "m-one" in page and "From chatbotarena_20240814.json: 1,600 public votes" in page
    assert "private-cache" not in page and str(tmp_path) not in page and "openarena leaderboard" not in page


def test_the_first_vote_gives_a_board_that_says_not_enough_votes(arena_factory):
    """Below the minimum of votes no board was made: /leaderboard.json had rows [], unrated [] and
    error null, and the page showed only "Votes per model". Now the full board says why and lists
    the models as not enough votes."""
    live = arena_factory()
    with live.client() as c:
        h = open_session(c)
        play(c, h, "the first prompt", winner="model_a")
        live.state.leaderboard.refresh()
        doc = c.get("/leaderboard.json").json()
        page = c.get("/leaderboard").text
    assert doc["rows"] == [] and doc["error"] == lc.NOT_ENOUGH_VOTES
    assert {r["model"] for r in doc["unrated"]} == set(MODELS) and all(r["votes"] == 1 for r in doc["unrated"])
    assert "Not enough votes yet" in page and "not enough votes" in page


def test_cli_and_web_board_agree_when_no_model_can_be_rated_yet(arena_factory, monkeypatch):
    """One vote: no two models can be rated against each other. The web board says "not enough
    votes" and lists them; `openarena leaderboard db` says the same words (exit 0), not an error;
    --no-drop-unrated makes it the error (exit 2)."""
    from typer.testing import CliRunner

    from openarena.cli.main import app

    live = arena_factory()
    with live.client() as c:
        h = open_session(c)
        play(c, h, "one prompt", winner="model_a")
        snap = live.state.leaderboard.refresh()
    board = snap.boards[("full", False)]
    assert board.error == lc.NOT_ENOUGH_VOTES and len(board.unrated) == 2
    monkeypatch.setenv("OPENARENA_DATABASE_URL", live.state.db.url)
    res = CliRunner().invoke(app, ["leaderboard", "db"])
    assert res.exit_code == 0, res.output
    assert lc.NOT_ENOUGH_VOTES in res.stderr
    assert all(r["model"] in res.stderr for r in board.unrated)
    res = CliRunner().invoke(app, ["leaderboard", "db", "--no-drop-unrated"])
    assert res.exit_code == 2 and "no finite Bradley-Terry" in res.stderr and "--drop-unrated" in res.stderr
