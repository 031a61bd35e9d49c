"""Fidelity on real data: the 1,670,250 public Chatbot Arena votes up to 2024-08-14 against the
official Bradley-Terry leaderboard published on 2024-08-13.

The published board used votes up to 2024-08-12 09:20 PDT and the public release runs to
08-14, so a small difference remains; see ../shared/data/SOURCES.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from openarena.analysis.leaderboard import build_leaderboard
from openarena.data.filters import apply_filters
from openarena.data.readers import read_battles

ALIAS = {"chatgpt-4o-latest": "chatgpt-4o-latest-2024-08-08"}


@pytest.fixture(scope="module")
def counts(arena_20240814):
    return apply_filters(read_battles(arena_20240814), aliases=ALIAS)


@pytest.fixture(scope="module")
def published(published_20240813):
    return pd.read_csv(published_20240813).set_index("model")


def _joined(lb, published):
    ours = lb.table.set_index("model")
    return published.merge(ours, left_index=True, right_index=True, how="inner", suffixes=("", "_ours"))


def test_ratings_match_the_published_board(counts, published):
    lb = build_leaderboard(counts, ci="sandwich")
    assert lb.anchor.model == "mixtral-8x7b-instruct-v0.1" and lb.anchor.value == 1114
    j = _joined(lb, published)
    assert len(j) == 128
    diff = (j["rating_ours"] - j["rating"]).abs()
    assert diff.mean() <= 0.3, diff.mean()
    assert diff.max() <= 3.0, diff.max()
    assert spearmanr(j["rating_ours"], j["rating"]).statistic >= 0.9999
    # measured: mean 0.201, max 2.626 (athene-70b-0725)
    assert diff.mean() == pytest.approx(0.2012, abs=5e-4)
    # vote totals: the release runs two days past the published cut-off and its dedup sample
    # differs slightly, so totals are equal for 30 of 128 models and within 0.02% at the
    # median; the largest gap is the newest model, chatgpt-4o-latest-2024-08-08 (+26%)
    rel = ((j["num_battles_ours"] - j["num_battles"]) / j["num_battles"]).abs()
    assert (j["num_battles_ours"] == j["num_battles"]).sum() == 30
    assert rel.median() < 0.001
    assert rel.quantile(0.9) < 0.03


@pytest.mark.slow
def test_bootstrap_interval_widths_match_the_published_ones(counts, published):
    lb = build_leaderboard(counts, ci="bootstrap", rounds=100, seed=0)
    j = _joined(lb, published).drop(index="mixtral-8x7b-instruct-v0.1")
    ours = (j["rating_q975_ours"] - j["rating_q025_ours"]) / 2
    theirs = (j["rating_q975"] - j["rating_q025"]) / 2
    ratio = float(np.median(ours / theirs))
    assert 0.85 <= ratio <= 1.15, ratio


def test_sandwich_interval_widths_match_the_published_bootstrap(counts, published):
    lb = build_leaderboard(counts, ci="sandwich")
    j = _joined(lb, published).drop(index="mixtral-8x7b-instruct-v0.1")
    ratio = float(np.median((j["rating_q975_ours"] - j["rating_q025_ours"]) / (j["rating_q975"] - j["rating_q025"])))
    assert 0.85 <= ratio <= 1.15, ratio
