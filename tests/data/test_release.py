"""Release export: schema, hashed voters, PII removed, data card, round trip through the reader."""

from __future__ import annotations

import hashlib
import hmac
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from openarena.data.battles import BattleTable
from openarena.data.curation import dedup_prompts
from openarena.data.release import RELEASE_COLUMNS, export_release, hash_voter, scrub_pii
from openarena.errors import DataError
from tests.conftest import shared_file

LABELED = "fastchat/fastchat/serve/monitor/classify/refusal_test/labeled.jsonl"
SALT = "test-salt-0123456789abcdef"

PII_CASES = {
    "write to john.doe@example.com today": "write to {{EMAIL}} today",
    "clone https://alice:s3cret@git.example.org/repo.git": "clone https://{{CREDENTIALS}}@git.example.org/repo.git",
    "my key is sk-proj-abcdefghijklmnopqrstuvwx": "my key is {{SECRET}}",
    "Authorization: Bearer abcdefghijklmnop1234567890": "Authorization: Bearer {{SECRET}}",
    "login with password: hunter2!": "login with password: {{SECRET}}",
    "GET /v1/items?token=abc123&page=2": "GET /v1/items?token={{SECRET}}&page=2",
    "call +1 (415) 555-2671 or 020 7946 0958": "call {{PHONE}} or {{PHONE}}",
    "card 4111 1111 1111 1111 exp 12/27": "card {{CREDIT_CARD}} exp 12/27",
    "SSN 123-45-6789.": "SSN {{SSN}}.",
    "IBAN GB33BUKB20201555555555 please": "IBAN {{IBAN}} please",
    "server at 192.168.1.20.": "server at {{IP_ADDRESS}}.",
}
NOT_PII = [
    "pi is 3.1415926535 and 2**31-1 = 2147483647",
    "version 1.2.3.4.5, thresholds 900/1400/1800/2300, fire at 1800-2100°F",
    "the sequence 6 8 4 2 4 6 3 1 continues",
    "card 4111 1111 1111 1112 fails the Luhn check",
]


@pytest.mark.parametrize("text", sorted(PII_CASES))
def test_pii_is_removed(text: str) -> None:
    counts: dict[str, int] = {}
    assert scrub_pii(text, counts) == PII_CASES[text]
    assert sum(counts.values()) >= 1


@pytest.mark.parametrize("text", NOT_PII)
def test_numbers_that_are_not_pii_stay(text: str) -> None:
    counts: dict[str, int] = {}
    assert scrub_pii(text, counts) == text and counts == {}


def test_hash_voter() -> None:
    assert hash_voter("arena_user_1", SALT) == hmac.new(SALT.encode(), b"arena_user_1", hashlib.sha256).hexdigest()
    assert hash_voter("arena_user_1", SALT) != hash_voter("arena_user_1", SALT + "x")
    assert hash_voter(None, SALT) is None
    with pytest.raises(DataError, match="salt"):
        hash_voter("x", "short")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    with open(shared_file(LABELED), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    frame = pd.DataFrame(rows)
    frame["judge"] = [f"arena_user_{i % 7}" for i in range(len(frame))]
    # plant personal data in one prompt and one answer
    first = frame.at[0, "conversation_a"]
    frame.at[0, "conversation_a"] = [
        {"role": "user", "content": "Mail me at jane.roe@example.net, phone +44 20 7946 0958."},
        {"role": "assistant", "content": "Sure. Use key sk-abcdefghijklmnopqrstuvwxyz012345 for the API."},
    ] + first[2:]
    table, _ = dedup_prompts(BattleTable(frame, "labeled.jsonl"))
    out = tmp_path_factory.mktemp("release")
    return table, export_release(table, out, salt=SALT, name="test-release")


def test_release_parquet_schema_and_content(released) -> None:
    table, res = released
    t = pq.read_table(res.parquet)
    assert tuple(t.column_names) == RELEASE_COLUMNS and t.num_rows == 100 == res.rows
    df = t.to_pandas()
    assert df["judge_hash"].tolist() == [hash_voter(j, SALT) for j in table.frame["judge"]]
    assert df["judge_hash"].nunique() == 7 and not any("arena_user" in h for h in df["judge_hash"])
    text = json.dumps(t.column("conversation_a").to_pylist()) + json.dumps(t.column("conversation_b").to_pylist())
    assert "jane.roe@example.net" not in text and "7946 0958" not in text and "sk-abcdefghij" not in text
    assert "{{EMAIL}}" in text and "{{PHONE}}" in text and "{{SECRET}}" in text
    assert res.pii == {"EMAIL": 1, "PHONE": 1, "SECRET": 1}  # nothing else in the 100 real battles
    # style counts recomputed on the released text agree with the file's own num_tokens
    meta = df["conv_metadata"].iloc[5]
    conv = table.frame["conversation_a"].iloc[5]
    assert meta["sum_assistant_a_tokens"] == sum(m["num_tokens"] for m in conv if m["role"] == "assistant")
    assert df["dedup_tag"].iloc[0] == {"high_freq": False, "sampled": True}
    assert df["is_code"].sum() == 14 and df["is_refusal"].sum() == 11  # the file's own labels
    assert (res.first_date, res.last_date) == ("2024-06-20", "2024-08-19")


def test_release_round_trip_through_reader(released) -> None:
    readers = pytest.importorskip("openarena.data.readers")
    if not hasattr(readers, "read_battles"):
        pytest.skip("read_battles not available yet")
    table, res = released
    back = readers.read_battles(res.parquet)
    f, g = back.frame, table.frame
    assert len(back) == 100
    for col in ("model_a", "model_b", "winner"):
        assert f[col].astype(str).tolist() == g[col].astype(str).tolist()
    assert f["judge"].tolist() == [hash_voter(j, SALT) for j in g["judge"]]
    assert f["tstamp"].tolist() == pytest.approx(g["tstamp"].tolist())
    assert f["language"].astype(str).tolist() == g["language"].astype(str).tolist()
    assert f["dedup_sampled"].tolist() == [True] * 100


def test_data_card(released) -> None:
    _, res = released
    card = res.card.read_text()
    for needle in ("battles: 100", "models: 49", "2024-06-20 to 2024-08-19", "distinct voters: 7", "| dedup | 0 | 100 |", "HMAC-SHA256", "EMAIL 1", "CC-BY-4.0", "Not caught: personal names"):
        assert needle in card


def test_export_errors(tmp_path) -> None:
    t = BattleTable(pd.DataFrame({"model_a": ["a"], "model_b": ["b"], "winner": ["tie"]}))
    with pytest.raises(DataError, match="salt"):
        export_release(t, tmp_path, salt="")
    res = export_release(t, tmp_path, salt=SALT)  # no conversations: columns written as nulls
    row = pq.read_table(res.parquet).to_pylist()[0]
    assert row["conversation_a"] is None and row["judge_hash"] is None and row["winner"] == "tie"


@pytest.mark.parametrize("name", ["../../evil", "", ".hidden", "a/b"])
def test_release_name_must_be_a_plain_file_name(tmp_path, name) -> None:
    t = BattleTable(pd.DataFrame({"model_a": ["a"], "model_b": ["b"], "winner": ["tie"]}))
    with pytest.raises(DataError, match="plain file name"):
        export_release(t, tmp_path / "out", salt=SALT, name=name)
    assert not (tmp_path / "evil.parquet").exists() and not any(tmp_path.rglob("*.parquet"))
