"""Battles carry an arena; each arena has its own votes, leaderboard and export columns; the
public release lists image hashes and never the images unless asked."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import openarena
from openarena.data.battles import BattleTable
from openarena.data.release import RELEASE_COLUMNS, export_release
from openarena.errors import DataError
from openarena.storage import Database
from openarena.storage.battles import acquire_turn, create_battle, finish_turn, get_battle
from openarena.storage.reading import read_battles
from openarena.storage.votes import record_vote
from openarena.storage.export import export_battles
from openarena.storage.images import ImageStore

SALT = "a-release-salt-of-enough-length"
IMG = b"\x89PNG\r\n\x1a\n pretend pixels"
SHA = hashlib.sha256(IMG).hexdigest()


def _play(db, arena, a, b, winner, i, images=()):
    bid = create_battle(db, mode="anony", model_a=a, model_b=b, session_hash=f"s{i}", sampling_policy="fastchat", sampling_prob=0.5, arena=arena)
    assert acquire_turn(db, bid, f"s{i}") is not None
    user = {"role": "user", "content": f"what is in this picture {i}?"} | ({"images": list(images)} if images else {})
    conv = lambda ans: [user, {"role": "assistant", "content": ans}]  # noqa: E731
    finish_turn(db, bid, conversation_a=conv(f"{a} says {i}"), conversation_b=conv(f"{b} says {i}"), turns=1)
    record_vote(db, bid, f"s{i}", winner, now=1000.0 + i)
    return bid


@pytest.fixture()
def arena_db(tmp_path):
    db = Database.open(f"sqlite:///{tmp_path / 'arena.db'}")
    rng = np.random.default_rng(3)
    # text: t1 beats t2 mostly; vision: v1 beats v2 mostly, with an image each time
    for i in range(40):
        _play(db, "text", "t1", "t2", "model_a" if rng.random() < 0.75 else "model_b", i)
    for i in range(40, 70):
        _play(db, "vision", "v2", "v1", "model_b" if rng.random() < 0.8 else "model_a", i, images=[SHA])
    yield db
    db.dispose()


def test_each_arena_reads_its_own_votes(arena_db):
    assert get_battle(arena_db, read_battles(arena_db, arenas=("vision",)).frame.battle_id.iloc[0]).arena == "vision"
    all_votes = read_battles(arena_db).frame
    assert all_votes["arena"].value_counts().to_dict() == {"text": 40, "vision": 30}
    vision = openarena.load(arena_db, arena="vision")
    text = openarena.load(arena_db, arena="text")
    assert len(vision) == 30 and set(vision.frame.model_a) | set(vision.frame.model_b) == {"v1", "v2"}
    assert len(text) == 40 and set(text.frame.model_a) == {"t1"}
    board = openarena.leaderboard(vision, ci="sandwich")
    assert board.table.iloc[0].model == "v1"
    with pytest.raises(DataError) as e:
        openarena.load(arena_db, arena="code")
    assert "code arena" in str(e.value)
    with pytest.raises(DataError) as e:
        openarena.load(arena_db, arena="audio")
    assert "unknown arena 'audio'" in str(e.value) and "text, vision, code" in str(e.value)
    with pytest.raises(ValueError, match="unknown arena"):
        create_battle(arena_db, mode="anony", model_a="a", model_b="b", session_hash="s", arena="audio")


def test_sources_without_an_arena_column_are_text():
    t = BattleTable(pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["model_a", "tie"]}))
    kept = openarena.load(t, arena="text")
    assert len(kept) == 2 and kept.steps[-1].name == "arena"
    with pytest.raises(DataError) as e:
        openarena.load(t, arena="vision")
    assert e.value.field == "arena" and "no arena column" in str(e.value)
    mixed = BattleTable(pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["model_a", "tie"], "arena": ["vision", None]}))
    assert len(openarena.load(mixed, arena="text")) == 1 and len(openarena.load(mixed, arena="vision")) == 1


def test_cli_leaderboard_per_arena(arena_db, monkeypatch):
    from typer.testing import CliRunner

    from openarena.cli.main import app

    monkeypatch.setenv("OPENARENA_DATABASE_URL", arena_db.url)
    res = CliRunner().invoke(app, ["leaderboard", "db", "--arena", "vision", "--format", "json", "--quiet"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    rows = rows["leaderboard"] if isinstance(rows, dict) else rows
    assert {r["model"] for r in rows} == {"v1", "v2"}
    res = CliRunner().invoke(app, ["leaderboard", "db", "--arena", "nope", "--quiet"])
    assert res.exit_code == 2 and "unknown arena" in res.output


def test_export_and_release_carry_hashes_never_images(arena_db, tmp_path):
    n = export_battles(arena_db, tmp_path / "votes.jsonl", "jsonl")
    recs = [json.loads(line) for line in (tmp_path / "votes.jsonl").read_text().splitlines()]
    assert n == 70 and sum(r["arena"] == "vision" for r in recs) == 30
    assert all(r["image_sha256"] == ([SHA] if r["arena"] == "vision" else []) for r in recs)
    export_battles(arena_db, tmp_path / "votes.csv", "csv")
    assert SHA in (tmp_path / "votes.csv").read_text()
    table = read_battles(arena_db)
    res = export_release(table, tmp_path / "rel", salt=SALT)
    t = pq.read_table(res.parquet)
    assert tuple(t.column_names) == RELEASE_COLUMNS and str(t.schema.field("image_sha256").type.value_type) == "string"
    df = t.to_pandas()
    assert (df["arena"] == "vision").sum() == 30
    assert [list(v) for v in df.loc[df.arena == "vision", "image_sha256"]] == [[SHA]] * 30
    assert all(len(v) == 0 for v in df.loc[df.arena == "text", "image_sha256"])
    assert not (tmp_path / "rel" / "images").exists()  # images only when asked
    store = ImageStore(tmp_path / "store")
    assert store.put(IMG) == SHA
    export_release(table, tmp_path / "rel2", salt=SALT, images=store.get)
    assert (tmp_path / "rel2" / "images" / SHA).read_bytes() == IMG
