"""Battle readers: real public files, fixtures of the public preference sets, the hub loader
(monkeypatched, the hub is unreachable here) and one test per kind of malformed input, each
checking that the message names the file, the row and the field."""

from __future__ import annotations

import collections
import json
import shutil
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openarena.data.battles import BattleTable, PairCounts
from openarena.data.readers import read_battles, sniff_format
from openarena.errors import DataError, SourceUnavailable
from tests.conftest import shared_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LABELED = "fastchat/fastchat/serve/monitor/classify/refusal_test/labeled.jsonl"
CATEGORY_CSV = "arena_catalog/topic_clustering/data/embedding_ablation/mpnet/recent_english_llm_category.csv"
ARENA_HARD = "arena_hard_auto/data/arena_hard_battles.jsonl"
WINNER_ORDER = ["model_a", "model_b", "tie", "tie (bothbad)"]


def winner_counts(table: BattleTable) -> dict[str, int]:
    return {k: int(v) for k, v in table.frame["winner"].value_counts().items()}


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def expect_error(source, *, row=None, field=None, words=(), **kw) -> DataError:
    """Read ``source`` expecting one DataError naming the file, the row and the field."""
    with pytest.raises(DataError) as info:
        read_battles(source, **kw)
    err = info.value
    text = str(err)
    assert "\n" not in text
    assert Path(str(source)).name in text, text
    assert err.row == row, text
    if row is not None:
        assert f"row {row + 1}" in text, text  # messages count rows from 1; err.row from 0
    assert err.field == field, text
    if field is not None:
        assert f"field '{field}'" in text, text
    for w in words:
        assert w in text, text
    return err


# --------------------------------------------------------------------------- real public files


def test_labeled_jsonl_clean_battle_records():
    path = shared_file(LABELED)
    records = json_lines(path)
    table = read_battles(path)
    assert isinstance(table, BattleTable)
    assert len(table) == len(records) == 100
    assert winner_counts(table) == dict(collections.Counter(r["winner"] for r in records))
    assert winner_counts(table) == {"model_a": 35, "model_b": 24, "tie": 22, "tie (bothbad)": 19}
    f = table.frame
    assert list(f.index) == list(range(100))  # line number - 1
    assert f["battle_id"].tolist() == [r["question_id"] for r in records]
    assert f["tstamp"].dtype == np.float64
    assert f["tstamp"].tolist() == [r["tstamp"] for r in records]
    assert f["anony"].dtype == "boolean" and f["anony"].tolist() == [r["anony"] for r in records]
    assert f["turn"].tolist() == [r["turn"] for r in records]
    assert f["language"].tolist() == [r["language"] for r in records]
    # nested dicts and conversations are kept as they are in the file
    assert f["category_tag"].iloc[0] == records[0]["category_tag"]
    assert f["conversation_a"].iloc[7] == records[7]["conversation_a"]
    assert "dedup_sampled" not in f.columns  # the file has no dedup_tag
    assert table.models == sorted({r["model_a"] for r in records} | {r["model_b"] for r in records})


def test_leaderbot_pair_counts(arena_20240814):
    pc = read_battles(arena_20240814)
    assert isinstance(pc, PairCounts)
    assert pc.n_models == 129
    assert pc.counts.sum(axis=0).tolist() == [595_570, 498_305, 281_121, 295_254]
    assert pc.total == 1_670_250
    raw = json.loads(Path(arena_20240814).read_text())
    assert pc.models == tuple(sorted(raw["models"]))
    assert len(pc.pairs) == sum(1 for y in raw["Y"] if sum(y) > 0)
    # one pair checked against the file, orientation included
    k = 0
    i, j = raw["X"][k]
    a, b = raw["models"][i], raw["models"][j]
    lo, hi = sorted([a, b])
    row = np.flatnonzero((pc.pairs[:, 0] == pc.index(lo)) & (pc.pairs[:, 1] == pc.index(hi)))[0]
    y = raw["Y"][k]
    expected = y if a == lo else [y[1], y[0], y[2], y[3]]
    assert pc.counts[row].tolist() == expected


def test_category_csv_10k_votes():
    table = read_battles(shared_file(CATEGORY_CSV))
    assert len(table) == 10_000
    assert winner_counts(table) == {"model_a": 3115, "model_b": 3323, "tie": 1800, "tie (bothbad)": 1762}
    f = table.frame
    for col in ("broad_category_id", "broad_category", "narrower_category_id", "narrower_category"):
        assert col in f.columns  # category columns kept
    assert "battle_id" in f.columns and "question_id" not in f.columns
    assert len(table.models) == 55
    raw = pd.read_csv(shared_file(CATEGORY_CSV))
    assert f["battle_id"].tolist() == raw["question_id"].tolist()
    assert f["narrower_category"].tolist() == raw["narrower_category"].tolist()


def test_arena_hard_battles_jsonl():
    path = shared_file(ARENA_HARD)
    records = json_lines(path)
    table = read_battles(path)
    assert len(table) == 1348
    assert winner_counts(table) == dict(collections.Counter(r["winner"] for r in records))
    assert winner_counts(table) == {"model_b": 1178, "model_a": 147, "tie": 23}
    assert table.frame["battle_id"].iloc[0] == str(records[0]["question_id"])


# --------------------------------------------------------------------------- fixtures


def test_clean_battle_json_list_fixture():
    path = FIXTURES / "clean_battle_sample.json"
    records = json.loads(path.read_text())
    table = read_battles(path)
    f = table.frame
    assert len(table) == len(records) == 12
    assert winner_counts(table) == dict(collections.Counter(r["winner"] for r in records))
    assert f["dedup_sampled"].tolist() == [r["dedup_tag"]["sampled"] for r in records]
    assert f["dedup_tag"].tolist() == [r["dedup_tag"] for r in records]
    assert f["conv_metadata"].iloc[3] == records[3]["conv_metadata"]
    assert f["judge"].tolist() == [r["judge"] for r in records]
    assert f["battle_id"].tolist() == [r["question_id"] for r in records]


def test_jsonl_and_json_list_give_the_same_table(tmp_path):
    records = json.loads((FIXTURES / "clean_battle_sample.json").read_text())
    p = tmp_path / "battles.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    a = read_battles(FIXTURES / "clean_battle_sample.json").frame
    b = read_battles(p).frame
    pd.testing.assert_frame_equal(a, b)


def test_columns_selection_keeps_only_what_is_asked(tmp_path):
    table = read_battles(FIXTURES / "clean_battle_sample.json", columns=("tstamp", "anony", "dedup_sampled"))
    assert list(table.frame.columns) == ["model_a", "model_b", "winner", "tstamp", "anony", "dedup_sampled"]
    assert table.frame["dedup_sampled"].sum() == 9


def test_arena_55k_csv_and_parquet():
    for name in ("arena_55k_sample.csv", "arena_55k_sample.parquet"):
        table = read_battles(FIXTURES / name)
        f = table.frame
        assert f["winner"].tolist() == ["model_a", "model_b", "tie", "model_a", "model_b", "tie"], name
        assert f["battle_id"].tolist() == ["30192", "53567", "65089", "96401", "198779", "292873"]
        assert not {"winner_model_a", "winner_model_b", "winner_tie", "id"} & set(f.columns)
        assert json.loads(f["prompt"].iloc[0]) == ["Explain topic 0 in one sentence, please."]


def test_arena_100k_parquet():
    f = read_battles(FIXTURES / "arena_100k_sample.parquet").frame
    assert f["winner"].tolist() == ["model_b", "tie (bothbad)", "model_a", "tie", "model_b"]
    assert f["judge"].tolist() == ["7f3a9c", "7f3a9c", "02bd11", "e90a44", "e90a44"]  # judge_hash
    assert f["dedup_sampled"].tolist() == [True, False, True, True, True]  # from the JSON-string dedup_tag
    assert f["tstamp"].tolist() == [1718000000.0, 1719000000.0, 1720000000.0, 1721000000.0, 1722000000.0]


@pytest.mark.parametrize("name", ["arena_140k_sample.parquet", "arena_140k_sample.csv"])
def test_arena_140k(name):
    f = read_battles(FIXTURES / name).frame
    assert f["winner"].tolist() == ["model_a", "tie (bothbad)", "tie", "model_b", "tie (bothbad)", "model_a"]
    assert f["battle_id"].iloc[0] == "0195f2a1-0000-7000-8000-000000000001"
    assert f["judge"].tolist() == ["sess-1", "sess-1", "sess-2", "sess-3", "sess-3", "sess-4"]  # evaluation_session_id
    # timestamp -> tstamp in Unix seconds, naive times read as UTC
    assert f["tstamp"].iloc[0] == pd.Timestamp("2025-04-12T10:11:12Z").timestamp()
    assert f["tstamp"].iloc[3] == pd.Timestamp("2025-06-30T23:59:59Z").timestamp()
    assert "timestamp" not in f.columns and "evaluation_order" in f.columns


def test_140k_nested_columns_survive_parquet():
    f = read_battles(FIXTURES / "arena_140k_sample.parquet").frame
    assert f["conv_metadata"].iloc[1]["sum_assistant_a_tokens"] == 3
    assert f["conversation_a"].iloc[0][1]["content"][0]["text"] == "done 0"


def test_pair_counts_fixture_orientation_and_merging():
    pc = read_battles(FIXTURES / "pair_counts_small.json")
    assert pc.models == ("alpha-model", "mid-model", "zeta-model")  # unused-model had no vote
    got = {(pc.models[i], pc.models[j]): pc.counts[k].tolist() for k, (i, j) in enumerate(pc.pairs)}
    assert got == {
        ("alpha-model", "zeta-model"): [4, 10, 3, 1],  # X [0, 1] = (zeta, alpha): flipped
        ("alpha-model", "mid-model"): [7 + 1, 2 + 1, 1 + 1, 0 + 1],  # [2, 1] flipped, plus [1, 2]
        ("mid-model", "zeta-model"): [5, 5, 0, 2],
    }


def test_format_is_sniffed_from_content_not_suffix(tmp_path):
    cases = {
        "clean_battle_sample.json": ("data.csv", "json"),
        "arena_55k_sample.csv": ("data.json", "csv"),
        "arena_140k_sample.parquet": ("data.jsonl", "parquet"),
        "pair_counts_small.json": ("data.parquet", "pair_counts"),
    }
    for src, (dst, fmt) in cases.items():
        p = tmp_path / dst
        shutil.copy(FIXTURES / src, p)
        assert sniff_format(p) == fmt
        assert type(read_battles(p)) is type(read_battles(FIXTURES / src))
        p.unlink()
    records = json.loads((FIXTURES / "clean_battle_sample.json").read_text())
    p = tmp_path / "x.json"
    p.write_text("\n".join(json.dumps(r) for r in records[:3]))
    assert sniff_format(p) == "jsonl"
    p.write_text(json.dumps({"models": ["a", "b"], "X": [[0, 1]], "Y": [[1, 2, 3, 4]]}, indent=2))
    assert sniff_format(p) == "pair_counts"  # pretty-printed object
    assert read_battles(p).total == 10


def test_folder_is_read_as_one_table(tmp_path):
    shutil.copy(FIXTURES / "arena_55k_sample.csv", tmp_path / "a.csv")
    shutil.copy(FIXTURES / "arena_140k_sample.parquet", tmp_path / "b.parquet")
    (tmp_path / ".hidden").mkdir()
    shutil.copy(FIXTURES / "arena_55k_sample.csv", tmp_path / ".hidden" / "c.csv")
    table = read_battles(tmp_path)
    assert len(table) == 12
    assert table.frame["source_file"].tolist() == ["a.csv"] * 6 + ["b.parquet"] * 6
    assert table.frame["source_row"].tolist() == list(range(6)) * 2


def test_folder_of_pair_counts_is_summed(tmp_path):
    shutil.copy(FIXTURES / "pair_counts_small.json", tmp_path / "one.json")
    shutil.copy(FIXTURES / "pair_counts_small.json", tmp_path / "two.json")
    pc = read_battles(tmp_path)
    assert pc.total == 2 * read_battles(FIXTURES / "pair_counts_small.json").total


# --------------------------------------------------------------------------- Hugging Face hub


def test_hub_dataset_via_snapshot_download(tmp_path, monkeypatch):
    import huggingface_hub

    snap = tmp_path / "snapshot"
    (snap / "data").mkdir(parents=True)
    shutil.copy(FIXTURES / "arena_140k_sample.parquet", snap / "data" / "train-00000-of-00002.parquet")
    shutil.copy(FIXTURES / "arena_140k_sample.parquet", snap / "data" / "train-00001-of-00002.parquet")
    (snap / "README.md").write_text("card")
    calls = []

    def fake_snapshot(repo_id, **kw):
        calls.append((repo_id, kw))
        return str(snap)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    table = read_battles("hf://datasets/lmarena-ai/arena-human-preference-140k@v1.0/data/*.parquet")
    assert calls == [("lmarena-ai/arena-human-preference-140k", {"repo_type": "dataset", "revision": "v1.0", "allow_patterns": ["data/*.parquet"], "cache_dir": None})]
    assert len(table) == 12
    assert table.source == "hf://datasets/lmarena-ai/arena-human-preference-140k@v1.0/data/*.parquet"
    assert table.frame["source_file"].iloc[-1] == "hf://datasets/lmarena-ai/arena-human-preference-140k@v1.0/data/train-00001-of-00002.parquet"
    # no path: the default data patterns
    calls.clear()
    read_battles("hf://datasets/lmarena-ai/arena-human-preference-140k")
    assert calls[0][1]["allow_patterns"] == ["*.parquet", "*.jsonl", "*.json", "*.csv"]
    assert calls[0][1]["revision"] is None


def test_hub_single_file_via_hf_hub_download(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename, **kw):
        calls.append((repo_id, filename, kw["repo_type"], kw["revision"]))
        return str(FIXTURES / "arena_55k_sample.csv")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    table = read_battles("hf://datasets/lmarena-ai/arena-human-preference-55k@refs%2Fconvert%2Fparquet/train.csv")
    assert calls == [("lmarena-ai/arena-human-preference-55k", "train.csv", "dataset", "refs/convert/parquet")]
    assert len(table) == 6


def test_hub_errors_name_the_file(monkeypatch, tmp_path):
    import huggingface_hub

    bad = tmp_path / "bad.csv"
    bad.write_text("model_a,model_b,winner\nx,y,model_a\nx,y,maybe\n")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: str(bad))
    with pytest.raises(DataError) as info:
        read_battles("hf://datasets/owner/name/bad.csv")
    assert str(info.value).startswith("hf://datasets/owner/name/bad.csv: row 2, field 'winner'")


def test_unreachable_hub_is_source_unavailable(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*a, **k):
        raise LocalEntryNotFoundError("An error happened while trying to locate the files on the Hub.\nmore text")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(SourceUnavailable) as info:
        read_battles("hf://datasets/lmarena-ai/arena-human-preference-140k")
    msg = str(info.value)
    assert "\n" not in msg
    assert "hf://datasets/lmarena-ai/arena-human-preference-140k" in msg
    assert "unreachable" in msg and "local path" in msg


def test_gated_hub_dataset_says_how_to_log_in(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    def gated(*a, **k):
        response = types.SimpleNamespace(headers={}, request=None, status_code=401)
        raise GatedRepoError("401 Client Error: access to this dataset is restricted", response=response)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", gated)
    with pytest.raises(SourceUnavailable, match="gated.*HF_TOKEN.*local path"):
        read_battles("hf://datasets/lmsys/chatbot_arena_conversations/data/*.parquet")


def test_bad_hub_urls():
    with pytest.raises(DataError, match="only Hugging Face dataset URLs"):
        read_battles("hf://models/owner/name")
    with pytest.raises(DataError, match="owner and a dataset name"):
        read_battles("hf://datasets/owner")


# --------------------------------------------------------------------------- malformed input


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return p


RECORD = {"question_id": "q", "model_a": "m1", "model_b": "m2", "winner": "model_a", "tstamp": 1.0, "anony": True}


def rec(**kw) -> dict:
    return {**RECORD, **kw}


def test_missing_column(tmp_path):
    p = write(tmp_path, "nowinner.csv", "model_a,model_b,vote\na,b,model_a\n")
    expect_error(p, field="winner", words=("missing column", "found model_a, model_b, vote"))
    p = write(tmp_path, "nowinner.jsonl", json.dumps({"model_a": "a", "model_b": "b"}) + "\n")
    expect_error(p, field="winner", words=("missing column",))


def test_unknown_winner_label(tmp_path):
    rows = [rec(), rec(), rec(winner="tie(bothbad)")]
    p = write(tmp_path, "labels.json", json.dumps(rows))
    expect_error(p, row=2, field="winner", words=("unknown winner label 'tie(bothbad)'",))
    p = write(tmp_path, "labels.csv", "model_a,model_b,winner\na,b,model_a\na,b,tie\na,b,draw\n")
    expect_error(p, row=2, field="winner", words=("'draw'",))


def test_model_battling_itself(tmp_path):
    p = write(tmp_path, "self.jsonl", "\n".join(json.dumps(r) for r in [rec(), rec(model_b="m1")]) + "\n")
    expect_error(p, row=1, field="model_b", words=("battles itself",))


def test_empty_model_name(tmp_path):
    p = write(tmp_path, "empty_model.csv", "model_a,model_b,winner\na,b,tie\n,b,tie\n")
    expect_error(p, row=1, field="model_a", words=("empty model name",))


def test_empty_files(tmp_path):
    for name, content in [("empty.json", ""), ("blank.jsonl", "\n  \n"), ("empty.csv", b""), ("empty.parquet", b"")]:
        expect_error(write(tmp_path, name, content), words=("empty file",))
    expect_error(write(tmp_path, "emptylist.json", "[ ]"), words=("no battle records",))
    expect_error(write(tmp_path, "header_only.csv", "model_a,model_b,winner\n"), words=("no battles",))


def test_truncated_json_list(tmp_path):
    text = json.dumps([rec(), rec(), rec()])
    p = write(tmp_path, "cut.json", text[: text.rindex('"anony"') + 3])
    expect_error(p, row=2, words=("truncated file", "not valid JSON at line 1, column "))
    pretty = json.dumps([rec(), rec()], indent=1)
    p = write(tmp_path, "pretty.json", pretty[: pretty.rindex('"anony"') + 3])
    n_lines = pretty[: pretty.rindex('"anony"') + 3].count("\n") + 1
    expect_error(p, row=1, words=(f"not valid JSON at line {n_lines}, column ",))
    p = write(tmp_path, "counts.json", '{"models": ["a", "b"],\n "X": [[0, 1], [2, 0]],\n "Y": [[0, 1]')
    expect_error(p, row=None, words=("truncated file", "not valid JSON at line 3, column "))
    p = write(tmp_path, "unclosed.json", text[:-1])
    expect_error(p, row=3, words=("truncated file", "without ']'"))


def test_truncated_jsonl_line(tmp_path):
    lines = [json.dumps(rec()) for _ in range(3)]
    p = write(tmp_path, "cut.jsonl", "\n".join(lines)[:-10])
    expect_error(p, row=2, words=("truncated last line",))
    p = write(tmp_path, "broken.jsonl", "\n".join([lines[0], lines[1][:-5], lines[2]]) + "\n")
    expect_error(p, row=1, words=("not valid JSON at line 2, column",))


def test_truncated_parquet(tmp_path):
    data = (FIXTURES / "arena_140k_sample.parquet").read_bytes()
    p = write(tmp_path, "cut.parquet", data[: len(data) // 2])
    expect_error(p, words=("truncated or corrupt",))


def test_truncated_pair_counts(tmp_path):
    text = (FIXTURES / "pair_counts_small.json").read_text()
    expect_error(write(tmp_path, "cut_counts.json", text[:-20]), words=("truncated file",))


def test_non_utf8(tmp_path):
    good = json.dumps(rec()).encode()
    bad = json.dumps(rec(model_a="caf\u00e9"), ensure_ascii=False).encode().replace("\u00e9".encode(), b"\xe9")
    assert b"\xe9" in bad
    expect_error(write(tmp_path, "latin1.jsonl", b"\n".join([good, good, bad]) + b"\n"), row=2, words=("not valid UTF-8",))
    expect_error(write(tmp_path, "latin1.json", b"[" + b",".join([good, bad, good]) + b"]"), row=1, words=("not valid UTF-8",))
    expect_error(write(tmp_path, "latin1.csv", b"model_a,model_b,winner\na,b,tie\ncaf\xe9,b,tie\n"), row=1, words=("not valid UTF-8",))


def test_non_utf8_far_into_a_large_json_list(tmp_path):
    # the bad byte sits several read windows after the start: the row must still be exact
    import openarena.data.readers.clean_battle as cb

    good = json.dumps(rec(conversation_a=[{"role": "user", "content": "x" * 500}])).encode()
    n = 3 * cb.READ_BYTES // len(good) + 7
    bad = good.replace(b'"m1"', b'"m\xff"')
    p = write(tmp_path, "big.json", b"[" + b",\n".join([good] * n + [bad, good]) + b"]")
    expect_error(p, row=n, words=("not valid UTF-8",))


def test_wrong_types(tmp_path):
    expect_error(write(tmp_path, "int_model.json", json.dumps([rec(), rec(model_a=7)])), row=1, field="model_a", words=("not a string",))
    expect_error(write(tmp_path, "bad_time.jsonl", "\n".join(json.dumps(r) for r in [rec(), rec(tstamp="yesterday")])), row=1, field="tstamp", words=("'yesterday'",))
    expect_error(write(tmp_path, "bad_anony.json", json.dumps([rec(anony="maybe"), rec()])), row=0, field="anony", words=("'maybe'",))
    expect_error(write(tmp_path, "bad_turn.json", json.dumps([rec(turn=1), rec(turn=1.5)])), row=1, field="turn")
    expect_error(write(tmp_path, "bad_dedup.json", json.dumps([rec(dedup_tag={"sampled": True}), rec(dedup_tag=[1])])), row=1, field="dedup_tag")
    expect_error(write(tmp_path, "not_object.jsonl", json.dumps(rec()) + "\n[1, 2]\n"), row=1, words=("not an object",))
    expect_error(write(tmp_path, "not_object.json", "[" + json.dumps(rec()) + ", 5]"), row=1, words=("not a JSON object",))
    t = pa.table({"model_a": [1, 2], "model_b": ["x", "y"], "winner": ["tie", "tie"]})
    pq.write_table(t, tmp_path / "int_models.parquet")
    expect_error(tmp_path / "int_models.parquet", row=0, field="model_a", words=("not a string",))


def test_one_hot_winner_must_have_exactly_one(tmp_path):
    head = "id,model_a,model_b,winner_model_a,winner_model_b,winner_tie\n"
    p = write(tmp_path, "two_winners.csv", head + "1,a,b,1,0,0\n2,a,b,1,0,1\n")
    expect_error(p, row=1, field="winner_model_a,winner_model_b,winner_tie", words=("exactly one must be 1", "winner_tie=1"))
    p = write(tmp_path, "no_winner.csv", head + "1,a,b,0,0,0\n")
    expect_error(p, row=0, field="winner_model_a,winner_model_b,winner_tie")
    p = write(tmp_path, "two.csv", head + "1,a,b,1,0,0\n2,a,b,0,2,0\n")
    expect_error(p, row=1, field="winner_model_b", words=("not 0 or 1",))
    p = write(tmp_path, "partial.csv", "model_a,model_b,winner_model_a,winner_model_b\na,b,1,0\n")
    expect_error(p, field="winner_tie", words=("missing column",))


def test_pair_counts_errors(tmp_path):
    def counts(**kw):
        obj = {"models": ["a", "b", "c"], "X": [[0, 1], [1, 2]], "Y": [[1, 2, 3, 4], [0, 1, 0, 0]]}
        obj.update(kw)
        return write(tmp_path, "counts.json", json.dumps(obj))

    expect_error(counts(X=[[0, 1], [1, 1]]), row=1, field="X", words=("battles itself",))
    expect_error(counts(X=[[0, 1], [1, 3]]), row=1, field="X", words=("out of range",))
    expect_error(counts(Y=[[1, 2, 3, 4], [0, -1, 0, 0]]), row=1, field="Y", words=("negative",))
    expect_error(counts(Y=[[1, 2, 3, 4], [0, 1, 0]]), row=1, field="Y", words=("four numbers",))
    expect_error(counts(X=[[0, 1], ["1", 2]]), row=1, field="X", words=("two integer indices",))
    expect_error(counts(models=["a", "b", "a"]), row=2, field="models", words=("listed twice",))
    expect_error(counts(Y=[[1, 2, 3, 4]]), field="Y", words=("2 pairs in X but 1 count rows",))
    p = write(tmp_path, "nokeys.json", json.dumps({"models": ["a"], "X": []}))
    assert sniff_format(p) == "jsonl"  # an object without Y is not pair counts...
    expect_error(p, field="model_a", words=("missing column", "found models, X"))  # ...nor a battle
    expect_error(p, fmt="pair_counts", field="Y", words=("missing key 'Y'",))


def test_missing_file_and_archives(tmp_path):
    expect_error(tmp_path / "nope.json", words=("no such file",))
    expect_error(write(tmp_path, "x.json.gz", b"\x1f\x8b\x08\x00rest"), words=("gzip",))
    expect_error(write(tmp_path, "x.zip", b"PK\x03\x04rest"), words=("zip archive",))


def test_csv_malformed_row(tmp_path):
    p = write(tmp_path, "ragged.csv", "model_a,model_b,winner\na,b,tie\na,b,tie,extra\n")
    expect_error(p, row=1, words=("malformed CSV",))
    p = write(tmp_path, "quote.csv", 'model_a,model_b,winner\na,b,tie\n"a,b,tie\n')
    expect_error(p, row=1, words=("unclosed quote",))


def test_strings_that_look_missing_stay_model_names(tmp_path):
    p = write(tmp_path, "na.csv", "model_a,model_b,winner\nNA,null,model_a\n")
    assert read_battles(p).models == ["NA", "null"]


def test_large_json_list_streams_across_windows(tmp_path):
    import openarena.data.readers.clean_battle as cb

    base = json.loads((FIXTURES / "clean_battle_sample.json").read_text())
    n = 2 * cb.READ_BYTES // len(json.dumps(base[0])) + 100
    records = [dict(base[k % len(base)], question_id=str(k)) for k in range(n)]
    p = tmp_path / "big.json"
    p.write_text(json.dumps(records))
    table = read_battles(p)
    assert len(table) == n
    assert table.frame["battle_id"].tolist() == [str(k) for k in range(n)]
    assert winner_counts(table) == dict(collections.Counter(r["winner"] for r in records))
