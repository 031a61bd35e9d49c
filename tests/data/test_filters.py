"""FastChat filters: exact counts on the clean_battle fixture (expected values computed from the
JSON with plain Python) and on the real leaderbot aggregate; nothing dropped without a step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openarena.data.battles import BattleTable, PairCounts, aggregate
from openarena.data.filters import (
    apply_filters,
    filter_aliases,
    filter_anony,
    filter_dates,
    filter_dedup,
    filter_exclude,
    filter_min_battles,
    parse_time,
)
from openarena.data.readers import read_battles
from openarena.errors import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLE = FIXTURES / "clean_battle_sample.json"
ALIAS = {"chatgpt-4o-latest": "chatgpt-4o-latest-2024-08-08"}


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return json.loads(SAMPLE.read_text())


@pytest.fixture()
def table() -> BattleTable:
    return read_battles(SAMPLE)


@pytest.fixture(scope="module")
def arena(arena_20240814) -> PairCounts:
    return read_battles(arena_20240814)


def check_conservation(before: float, data) -> None:
    """Every step's removed + remaining equals what it received; nothing vanishes."""
    n = before
    for step in data.steps:
        assert step.removed + step.remaining == pytest.approx(n), step
        n = step.remaining
    size = len(data) if isinstance(data, BattleTable) else data.total
    assert n == pytest.approx(size)


def test_anony(table, records):
    out = filter_anony(table)
    assert len(out) == sum(r["anony"] for r in records) == 10
    assert out.steps[-1].name == "anony" and out.steps[-1].removed == 2
    assert out.frame["anony"].all()
    assert isinstance(out, BattleTable) and len(table) == 12  # input untouched


def test_dedup(table, records):
    out = filter_dedup(table)
    assert len(out) == sum(r["dedup_tag"]["sampled"] for r in records) == 9
    assert out.steps[-1].removed == 3


def test_dates_are_utc_and_half_open(table, records):
    out = filter_dates(table, since="2024-08-11", until="2024-08-14")
    want = [r for r in records if 1723334400 <= r["tstamp"] < 1723593600]
    assert len(out) == len(want) == 4  # includes 2024-08-13 23:59:59Z, excludes 2024-08-14 00:00:00Z
    assert out.frame["tstamp"].max() == 1723593599.0
    assert "tstamp >= 2024-08-11T00:00:00Z and tstamp < 2024-08-14T00:00:00Z" in out.steps[-1].detail
    # an explicit zone is honoured: 2024-08-13 17:00 PDT = 2024-08-14 00:00 UTC
    assert len(filter_dates(table, until="2024-08-13T17:00:00-07:00")) == 5
    assert len(filter_dates(table, since=1723593600)) == 7  # Unix seconds
    assert parse_time("2024-08-14") == 1723593600.0 == parse_time("1723593600")
    # a plain DataFrame with ISO strings in tstamp is understood too
    frame = table.frame.assign(tstamp=pd.to_datetime(table.frame["tstamp"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S"))
    assert len(filter_dates(BattleTable(frame, "iso"), since="2024-08-11", until="2024-08-14")) == 4
    with pytest.raises(DataError, match="not a date/time") as info:
        filter_dates(table, since="last tuesday")
    assert info.value.field == "since"
    with pytest.raises(DataError, match="is not before"):
        filter_dates(table, since="2024-08-14", until="2024-08-01")


def test_exclude(table, records):
    out = filter_exclude(table, ["gemma-2-9b-it", "not-a-model"])
    assert len(out) == sum("gemma-2-9b-it" not in (r["model_a"], r["model_b"]) for r in records) == 10
    assert out.steps[-1].detail == "excluded gemma-2-9b-it; not in the data: not-a-model"
    assert "gemma-2-9b-it" not in out.models


def test_aliases_merge_and_report_self_battles(table):
    # chatgpt-4o-latest renamed onto gpt-4o-2024-05-13: their 2 mutual battles become self-battles
    out = filter_aliases(table, {"chatgpt-4o-latest": "gpt-4o-2024-05-13", "nobody": "x"})
    step = out.steps[-1]
    assert step.name == "aliases" and step.removed == 2 and step.remaining == 10
    assert "merged chatgpt-4o-latest + gpt-4o-2024-05-13 into gpt-4o-2024-05-13" in step.detail
    assert "removed 2 battle(s) that became self-battles" in step.detail
    assert "not in the data: nobody" in step.detail
    assert "chatgpt-4o-latest" not in out.models
    assert (out.frame["model_a"] != out.frame["model_b"]).all()
    # the merged model's battles are the union of both, minus the self-battles
    n = lambda t, m: int(((t.frame["model_a"] == m) | (t.frame["model_b"] == m)).sum())  # noqa: E731
    assert n(out, "gpt-4o-2024-05-13") == n(table, "gpt-4o-2024-05-13") + n(table, "chatgpt-4o-latest") - 2 * 2


def test_aliases_on_rows_and_counts_agree(table):
    mapping = {"chatgpt-4o-latest": "gpt-4o-2024-05-13"}
    via_rows = aggregate(filter_aliases(table, mapping))
    via_counts = filter_aliases(aggregate(table), mapping)
    assert via_rows.models == via_counts.models
    np.testing.assert_array_equal(via_rows.pairs, via_counts.pairs)
    np.testing.assert_array_equal(via_rows.counts, via_counts.counts)
    assert via_counts.steps[-1].removed == 2


def test_aliases_keep_categorical_columns():
    pc = read_battles(FIXTURES / "pair_counts_small.json")
    rows = pc.to_battles(seed=1)
    out = filter_aliases(rows, {"alpha-model": "mid-model"})
    assert isinstance(out.frame["model_a"].dtype, pd.CategoricalDtype)
    assert out.steps[-1].removed == pc.counts[0].sum()  # the alpha-mid pair became self-battles
    assert sorted(out.models) == ["mid-model", "zeta-model"]


def test_min_battles_one_pass_and_iterated():
    frame = pd.DataFrame(
        {
            "model_a": ["a", "a", "a", "b", "b", "c", "d"],
            "model_b": ["b", "c", "b", "c", "c", "d", "a"],
            "winner": ["model_a", "tie", "model_b", "model_a", "model_a", "tie", "model_b"],
        }
    )
    t = BattleTable(frame, "mem")
    # battles: a 4, b 4, c 4, d 2
    one = filter_min_battles(t, 3)
    assert len(one) == 5 and one.steps[-1].detail.startswith("dropped 1 model(s) with < 3 battles: d (2)")
    # after d goes, c has 3 battles: still >= 3; with threshold 4 the one pass leaves c with 3
    four = filter_min_battles(t, 4)
    assert sorted(four.models) == ["a", "b", "c"] and len(four) == 5
    stable = filter_min_battles(t, 4, iterate=True)
    # iterating: a and c fall to 3 once d is gone, then b has no battle left
    assert len(stable) == 0 and stable.steps[-1].removed == 7
    assert "(2 pass(es) until stable)" in stable.steps[-1].detail
    assert filter_min_battles(t, 0).steps[-1].removed == 0


def test_row_filters_refuse_pair_counts(arena):
    for f, field in ((filter_anony, "anony"), (filter_dedup, "dedup_sampled")):
        with pytest.raises(DataError, match="aggregated per model pair") as info:
            f(arena)
        assert info.value.field == field and "chatbotarena_20240814.json" in str(info.value)
    with pytest.raises(DataError, match="aggregated") as info:
        filter_dates(arena, since="2024-01-01")
    assert info.value.field == "tstamp"
    with pytest.raises(DataError, match="aggregated"):
        apply_filters(arena, anony_only=True)


def test_missing_column_strict_and_lenient():
    t = read_battles(FIXTURES / "arena_55k_sample.csv")  # no anony, no dedup, no tstamp
    with pytest.raises(DataError) as info:
        filter_anony(t)
    assert info.value.field == "anony" and "arena_55k_sample.csv" in str(info.value)
    with pytest.raises(DataError, match="dedup_tag.sampled"):
        filter_dedup(t)
    out = apply_filters(t, anony_only=True, dedup=True, since="2024-01-01", lenient=True)
    assert len(out) == 6
    assert [s.name for s in out.steps] == ["dates", "anony", "dedup"]
    assert all(s.removed == 0 and s.detail.startswith("skipped") for s in out.steps)


def test_missing_values_strict_and_lenient(tmp_path, records):
    recs = [dict(r) for r in records[:4]]
    recs[2].pop("anony")
    recs[3]["tstamp"] = None
    p = tmp_path / "holes.json"
    p.write_text(json.dumps(recs))
    t = read_battles(p)
    with pytest.raises(DataError) as info:
        filter_anony(t)
    assert (info.value.row, info.value.field) == (2, "anony") and "holes.json: row 3" in str(info.value)
    out = filter_anony(t, lenient=True)
    assert len(out) == 3 - sum(not r.get("anony", True) for r in recs[:2] + recs[3:])
    assert "1 row(s) without a value removed" in out.steps[-1].detail
    with pytest.raises(DataError) as info:
        filter_dates(t, since="2024-01-01")
    assert (info.value.row, info.value.field) == (3, "tstamp")
    assert len(filter_dates(t, since="2024-01-01", lenient=True)) == 3


def test_apply_filters_order_and_conservation(table, records):
    out = apply_filters(
        table,
        anony_only=True,
        dedup=True,
        since="2024-08-10",
        until="2024-08-15",
        exclude=["gemma-2-9b-it"],
        min_battles=3,
        aliases=ALIAS,
    )
    assert [s.name for s in out.steps] == ["aliases", "dates", "exclude", "anony", "dedup", "min_battles"]
    check_conservation(12, out)
    keep = [
        r for r in records
        if r["anony"] and r["dedup_tag"]["sampled"] and "gemma-2-9b-it" not in (r["model_a"], r["model_b"])
        and 1723248000 <= r["tstamp"] < 1723680000
    ]
    before_min = len(keep)
    assert out.steps[-2].remaining == before_min == 7
    assert out.steps[-1].removed == 0  # every remaining model has >= 3 battles
    assert "chatgpt-4o-latest-2024-08-08" in out.models and "chatgpt-4o-latest" not in out.models
    assert apply_filters(table).steps == []  # nothing asked, nothing recorded


def test_leaderbot_aliases_and_model_filters(arena):
    out = apply_filters(arena, aliases=ALIAS, exclude=["gpt-4o-2024-08-06"], min_battles=5000)
    assert isinstance(out, PairCounts)
    assert [s.name for s in out.steps] == ["aliases", "exclude", "min_battles"]
    check_conservation(1_670_250, out)
    assert out.steps[0].removed == 0
    renamed = apply_filters(arena, aliases=ALIAS)
    assert renamed.n_models == 129 and renamed.total == 1_670_250
    assert "chatgpt-4o-latest" not in renamed.models
    assert renamed.num_battles()[renamed.index("chatgpt-4o-latest-2024-08-08")] == arena.num_battles()[arena.index("chatgpt-4o-latest")]
    # exclusion removes exactly that model's votes
    gone = arena.num_battles()[arena.index("gpt-4o-2024-08-06")]
    assert out.steps[1].removed == gone
    # one pass: the dropped models are exactly those under 5000 votes after the exclusion
    mid = filter_exclude(renamed, ["gpt-4o-2024-08-06"])
    low = {m for m, n in zip(mid.models, mid.num_battles()) if n < 5000}
    assert set(mid.models) - set(out.models) == low and len(low) == 24
    assert out.steps[2].remaining == out.total == mid.total - out.steps[2].removed


def test_merging_two_real_models_conserves_votes(arena):
    a, b = "claude-3-opus-20240229", "claude-3-sonnet-20240229"
    out = filter_aliases(arena, {a: "claude-3", b: "claude-3"})
    mutual = arena.counts[(arena.pairs[:, 0] == arena.index(a)) & (arena.pairs[:, 1] == arena.index(b))].sum()
    assert mutual > 0
    assert out.steps[-1].removed == mutual
    assert out.total == arena.total - mutual
    assert out.n_models == 128
    nb = out.num_battles()[out.index("claude-3")]
    assert nb == arena.num_battles()[arena.index(a)] + arena.num_battles()[arena.index(b)] - 2 * mutual


def test_dataframe_input_is_accepted():
    frame = pd.DataFrame({"model_a": ["x", "y"], "model_b": ["y", "z"], "winner": ["tie", "model_a"]})
    out = apply_filters(frame, exclude=["z"])
    assert isinstance(out, BattleTable) and len(out) == 1
