"""``openarena export`` never fails on what the database holds (defect 6 of issue 8: one lone
surrogate in a stored answer made export crash in every format). Bad values are written
straight into the database with SQL, as an old server, another program or a bug could have
left them, then exported in every format and read back."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.data.readers import read_battles as read_file_battles
from openarena.storage import Database
from openarena.storage.battles import acquire_turn, create_battle, finish_turn
from openarena.storage.export import EXPORT_FORMATS, export_battles
from openarena.storage.votes import record_vote

BAD = "\ud800"  # a lone surrogate: valid JSON ("\\ud800"), not valid Unicode text


def _voted(db, answer: str = "fine") -> str:
    bid = create_battle(db, mode="anony", model_a="m1", model_b="m2", session_hash="s1", sampling_policy="fastchat", sampling_prob=0.5)
    acquire_turn(db, bid, "s1")
    conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": answer}]
    finish_turn(db, bid, conversation_a=conv, conversation_b=conv, turns=1)
    record_vote(db, bid, "s1", "model_a")
    return bid


def _suffix(fmt: str) -> str:
    return {"clean_battle": "json"}.get(fmt, fmt)


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_survives_bad_values_written_into_the_database(db, tmp_path, fmt):
    ok = _voted(db)
    odd = _voted(db)
    # a lone surrogate and a NUL inside an answer (as JSON escapes, which both databases take),
    # and conversations of odd shapes: a bare string, content as a list of parts, a number
    conv_a = json.dumps([{"role": "user", "content": "q" + BAD}, {"role": "assistant", "content": "a\u0000b" + BAD}])
    conv_b = json.dumps([{"role": "user", "content": [{"type": "text", "text": "parts"}]}, 7, {"role": "assistant", "content": None}])
    if db.backend == "postgresql":  # PostgreSQL's json refuses a lone surrogate escape: keep the rest
        conv_a = conv_a.replace("\\ud800", "")
    with db.write() as conn:
        conn.execute(text("UPDATE battles SET conversation_a = :a, conversation_b = :b WHERE id = :id"), {"a": conv_a, "b": conv_b, "id": odd})
        conn.execute(text("UPDATE battles SET conversation_b = :b WHERE id = :id"), {"b": json.dumps("not a conversation"), "id": ok})
        if db.backend == "sqlite":  # bytes that are not UTF-8 at all (U+D800 as UTF-8, and 0xFF)
            conn.exec_driver_sql(f"UPDATE votes SET judge = CAST(X'73EDA080FF' AS TEXT) WHERE battle_id = '{odd}'")
            conn.exec_driver_sql(f"UPDATE battles SET model_b = CAST(X'6D32FF' AS TEXT) WHERE id = '{ok}'")
    path = tmp_path / f"votes.{_suffix(fmt)}"
    assert export_battles(db, path, fmt) == 2
    if fmt != "parquet":
        path.read_bytes().decode("utf-8")  # valid UTF-8 throughout
    back = read_file_battles(path).frame
    assert len(back) == 2
    if db.backend == "sqlite":
        assert back["judge"].tolist()[1].startswith("s\ufffd") and back["model_b"].tolist()[0] == "m2\ufffd"
    if fmt != "csv":
        texts = json.dumps([dict(m) for m in back["conversation_a"].iloc[1]], ensure_ascii=False)
        assert "a\ufffdb" in texts


def test_cli_export_of_bad_data_exits_0_in_every_format(tmp_path):
    db = Database.open(f"sqlite:///{tmp_path / 'arena.db'}")
    bid = _voted(db)
    with db.write() as conn:
        conn.execute(text("UPDATE battles SET conversation_a = :a WHERE id = :id"),
                     {"a": json.dumps([{"role": "assistant", "content": "x" + BAD}]), "id": bid})
    for fmt in EXPORT_FORMATS:
        out = tmp_path / f"e.{_suffix(fmt)}"
        res = CliRunner().invoke(app, ["export", str(out), "--format", fmt, "--db", db.url])
        assert res.exit_code == 0, res.output
        assert out.stat().st_size > 0
    db.dispose()


def test_cli_export_format_follows_the_file_name(tmp_path):
    """Without --format, OUTPUT's extension picks it (a votes.csv is CSV, not JSON)."""
    import pandas as pd

    db = Database.open(f"sqlite:///{tmp_path / 'arena.db'}")
    _voted(db)
    for name, reader in (("v.csv", pd.read_csv), ("v.parquet", pd.read_parquet), ("v.jsonl", lambda p: pd.read_json(p, lines=True)),
                         ("v.json", pd.read_json)):
        res = CliRunner().invoke(app, ["export", str(tmp_path / name), "--db", db.url])
        assert res.exit_code == 0, res.output
        assert len(reader(tmp_path / name)) == 1 and {"model_a", "model_b", "winner"} <= set(reader(tmp_path / name).columns)
    assert not (tmp_path / "v.csv").read_text().startswith("[")
    db.dispose()
