"""Benchmark quality on the bootstrap statistics of the Arena-Hard paper's notebook.

Separability is checked against every output printed in arena-hard-auto's
notebook/benchmark_statistics.ipynb (commit bd52a78): those must match exactly. Agreement,
Spearman and Brier are computed against the 20k-vote arena statistics (the notebook used the full
arena leaderboard elo_results_20240329.pkl, which is not available here), so they are pinned to
our own values and compared with the published ones in the report."""

from __future__ import annotations

import numpy as np
import pytest

from openarena.errors import DataError
from openarena.judging.quality import (
    BenchmarkStats,
    align,
    benchmark_quality,
    brier_score,
    confidence_agreement,
    load_name_map,
    overlaps,
    quality_table,
    read_bootstrap_stats,
    separability,
    spearman,
)
from tests.conftest import shared_file

NB = "arena_hard_auto/notebook"


def stats(name: str) -> BenchmarkStats:
    return read_bootstrap_stats(shared_file(f"{NB}/bootstrap_stats_{name}.jsonl"))


def name_map(name: str) -> dict[str, str]:
    return load_name_map(shared_file(f"{NB}/{name}.json"))


@pytest.fixture(scope="module")
def data() -> dict:
    return {
        "arena_hard": (stats("arena_hard"), name_map("arena_to_arena_hard")),
        "mt_bench": (stats("mt_bench"), name_map("arena_to_mt_bench")),
        "alpaca_LC": (stats("alpaca_LC"), name_map("alpaca_to_arena")),
        "alpaca": (stats("alpaca"), name_map("alpaca_to_arena")),
        "ref": stats("20k_votes"),
    }


# (file, level or None for the stored bounds, shared-20 subset?) -> overlapping pairs, pairs
NOTEBOOK_OVERLAPS = [
    ("arena_hard", None, False, 76, 378),  # "Overlapped: 20.11%"
    ("arena_hard", None, True, 30, 190),  # 84.21% confidence
    ("mt_bench", None, False, 197, 300),
    ("mt_bench", None, True, 121, 190),
    ("alpaca_LC", None, True, 23, 190),
    ("alpaca", None, True, 55, 190),
    ("20k_votes", None, False, 59, 190),
    ("arena_hard", 0.8, True, 17, 190),  # "Separability with 80% Confidence"
    ("mt_bench", 0.8, True, 85, 190),
    ("alpaca_LC", 0.8, True, 13, 190),
    ("alpaca", 0.8, True, 33, 190),
    ("20k_votes_elo", 0.8, False, 34, 190),
    ("arena_hard_distribution_elo", None, False, 927, 3003),
]


@pytest.mark.parametrize("name, level, shared, overlapping, pairs", NOTEBOOK_OVERLAPS)
def test_separability_reproduces_the_notebook(data: dict, name: str, level: float | None, shared: bool, overlapping: int, pairs: int) -> None:
    s = data[name][0] if name in data and name != "ref" else stats(name)
    if shared:
        s, _ = align(s, data["ref"], data[name][1])
    sep = separability(s, level)
    assert (sep.pairs - sep.separated, sep.pairs) == (overlapping, pairs)


def test_stored_bounds_are_the_95_percent_percentiles(data: dict) -> None:
    ah = data["arena_hard"][0]
    lo, hi = ah.intervals(0.95)
    assert np.allclose(lo, ah.lower) and np.allclose(hi, ah.upper)


def test_quality_table_against_the_20k_vote_arena(data: dict) -> None:
    df = quality_table([data["arena_hard"], data["mt_bench"], data["alpaca_LC"], data["alpaca"]], data["ref"]).set_index("benchmark")
    assert df.loc["20k_votes (reference)", "separability"] == pytest.approx(131 / 190)
    ah, mt, lc, al = (df.loc[n] for n in ("arena_hard", "mt_bench", "alpaca_LC", "alpaca"))
    assert (ah.models, mt.models, lc.models, al.models) == (20, 20, 20, 20)
    assert int(ah.reference_separated) == 131
    # agreement with confidence (paper rule): (agree - disagree) / pairs the arena separates
    assert (int(ah.agree), int(ah.disagree), int(ah.undecided)) == (123, 1, 7)
    assert ah.agreement == pytest.approx(122 / 131)
    assert (int(mt.agree), int(mt.disagree), int(mt.undecided)) == (63, 0, 68)
    assert mt.agreement == pytest.approx(63 / 131)
    assert lc.agreement == pytest.approx(121 / 131) and al.agreement == pytest.approx(99 / 131)
    assert ah.agreement_notebook == pytest.approx((123 + 3.5) / 131)
    assert ah.spearman == pytest.approx(0.92932, abs=1e-5)
    assert mt.spearman == pytest.approx(0.86316, abs=1e-5)
    assert lc.spearman == pytest.approx(0.87820, abs=1e-5)
    assert ah.brier == pytest.approx(0.0797, abs=1e-4)
    assert mt.brier == pytest.approx(0.1206, abs=1e-4)
    # the ordering the paper reports: Arena-Hard separates and agrees far better than MT-Bench
    assert ah.separability > 2 * mt.separability and ah.agreement > mt.agreement and ah.brier < mt.brier


def test_overlap_rule_and_anchored_models() -> None:
    assert overlaps(0, 2, 1, 3) and not overlaps(0, 1, 1, 2)  # touching = separated (strict)
    assert overlaps(1114, 1114, 1100, 1120)  # an anchored (zero-width) model inside an interval
    assert not overlaps(1114, 1114, 1115, 1120)
    assert overlaps(0, 5, 0, 1) and overlaps(0, 1, 0, 5)


def toy(name: str, centers: list[float], width: float = 1.0) -> BenchmarkStats:
    samples = [c + width * np.linspace(-1, 1, 41) for c in centers]
    return BenchmarkStats.from_samples(name, [f"m{i}" for i in range(len(centers))], samples, centers)


def test_agreement_rules_and_brier_on_toy_benchmarks() -> None:
    ref = toy("ref", [0, 10, 20, 30])  # every pair separated
    same = toy("same", [1, 11, 21, 31])
    flipped = toy("flip", [31, 21, 11, 1])
    vague = toy("vague", [0, 1, 2, 3], width=5)
    assert confidence_agreement(same, ref).score == 1.0
    assert confidence_agreement(flipped, ref).score == -1.0
    assert confidence_agreement(flipped, ref, rule="notebook").score == 0.0
    v = confidence_agreement(vague, ref)
    assert v.undecided == 6 and v.score == 0.0
    assert confidence_agreement(vague, ref, rule="notebook").score == 0.5
    assert spearman(flipped, ref) == -1.0
    assert brier_score(same, ref) < 1e-6 and brier_score(flipped, ref) > 0.99
    assert 0.0 < brier_score(vague, ref) < 0.25
    with pytest.raises(DataError):
        confidence_agreement(same, toy("other", [0, 1, 2]))
    with pytest.raises(ValueError):
        confidence_agreement(same, ref, rule="x")


def test_align_maps_names_both_ways_and_case(data: dict) -> None:
    b, r = align(data["mt_bench"][0], data["ref"], data["mt_bench"][1])
    assert b.models == r.models and len(b) == 20 and "gemini-pro" in b.models
    # the same with the map inverted
    inv = {v: k for k, v in data["mt_bench"][1].items()}
    b2, _ = align(data["mt_bench"][0], data["ref"], inv)
    assert b2.models == b.models and np.array_equal(b2.score, b.score)
    with pytest.raises(DataError):
        align(toy("x", [1, 2]), data["ref"])


def test_benchmark_quality_row_and_errors(tmp_path) -> None:
    q = benchmark_quality(toy("a", [1, 11, 21, 31]), toy("ref", [0, 10, 20, 30]))
    assert q["separability"] == 1.0 and q["agreement"] == 1.0 and q["spearman"] == 1.0
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"model": "x", "score": 1}\n')
    with pytest.raises(DataError) as e:
        read_bootstrap_stats(bad)
    assert e.value.row == 0 and e.value.field == "results"
