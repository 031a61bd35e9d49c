"""Anomalous voters: a sequential test of each voter's votes against everybody else's votes on
the same model pairs, and how much the leaderboard moves without the flagged voters.

For a vote v (the score of the pair's first model: 1, 1/2 or 0) on pair (i, j), the history H
is every other voter's votes on that pair. Under the null hypothesis (the voter behaves like
the crowd), v is exchangeable with H, so the randomised rank p-value

    p_up = (#{h in H : h > v} + U * (#{h in H : h = v} + 1)) / (|H| + 1),  U ~ Uniform(0, 1)

is exactly Uniform(0, 1); we use the two-sided p = 2 min(p_up, 1 - p_up), so voting against
the crowd in either direction counts. A voter's p-values are combined by Fisher's method,
M_j = -2 sum_{i <= j} log p_i ~ chi^2 with 2j degrees of freedom, and tested at a few "looks"
j (by default after 5, 10, 20, 50 and 100 votes, in time order, and after all of the voter's
votes) at level alpha / (number of looks + 1) each (Bonferroni), so an honest voter is flagged
with probability at most alpha.

Source: Chiang et al. (2024), Chatbot Arena, section 5 "Detecting anomalous users"
(exchangeability p-values, Fisher combination, Bonferroni over the looks); Vovk et al. (2005)
for randomised conformal p-values. FastChat's ``outlier_detect`` is an e-value variant of the
same idea.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable, FilterStep
from openarena.data.schema import OUTCOME_SCORE, factorize_models
from openarena.errors import DataError, OpenArenaError

DEFAULT_LOOKS = (5, 10, 20, 50, 100)


@dataclass
class VoterReport:
    """Per-voter results: DataFrame ``voters`` with columns judge, votes, statistic (M at the
    deciding look, or at the last look), looks_tested, min_adjusted_p (smallest Bonferroni-
    adjusted p-value over the looks), flagged (bool); ``alpha``; ``looks``; ``pvalues``: the
    per-vote two-sided p-values aligned with the battle rows (NaN where the pair had no other
    voter)."""

    voters: pd.DataFrame
    alpha: float
    looks: tuple[int, ...]
    pvalues: np.ndarray

    @property
    def flagged(self) -> list[str]:
        return self.voters.loc[self.voters["flagged"], "judge"].tolist()


def vote_pvalues(battles: BattleTable, seed: int | None = 0) -> np.ndarray:
    """Two-sided randomised exchangeability p-value of every vote against the other voters'
    votes on the same unordered pair; shape (n_battles,), NaN when there is no such vote.

    Raises: DataError if the battles have no ``judge`` column.
    """
    frame = battles.frame
    if "judge" not in frame.columns:
        raise DataError("no voter ids", battles.source, field="judge", expected="a judge column (hashed voter id)")
    codes, _ = factorize_models(frame)
    a, b = codes
    score = frame["winner"].map(OUTCOME_SCORE).to_numpy(dtype=float)
    swap = a > b
    v = np.where(swap, 1.0 - score, score)  # score of the pair's first (lower-index) model
    level = np.rint(v * 2).astype(np.int64)  # 0, 1, 2
    n_models = int(max(a.max(), b.max())) + 1
    pair = np.minimum(a, b) * n_models + np.maximum(a, b)
    judge = pd.factorize(frame["judge"].astype(str))[0]
    n = len(frame)
    # counts per (pair, level) over everyone, and per (judge, pair, level) for the voter's own
    pair_id, pair_inv = np.unique(pair, return_inverse=True)
    tot = np.zeros((len(pair_id), 3))
    np.add.at(tot, (pair_inv, level), 1.0)
    jp = judge.astype(np.int64) * len(pair_id) + pair_inv
    jp_id, jp_inv = np.unique(jp, return_inverse=True)
    own = np.zeros((len(jp_id), 3))
    np.add.at(own, (jp_inv, level), 1.0)
    hist = tot[pair_inv] - own[jp_inv]  # (n, 3) other voters' votes on this pair by level
    size = hist.sum(axis=1)
    greater = np.where(level == 0, hist[:, 1] + hist[:, 2], np.where(level == 1, hist[:, 2], 0.0))
    equal = hist[np.arange(n), level]
    u = np.random.default_rng(seed).random(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_up = (greater + u * (equal + 1.0)) / (size + 1.0)
    p = 2.0 * np.minimum(p_up, 1.0 - p_up)
    p = np.clip(p, 1e-300, 1.0)
    return np.where(size > 0, p, np.nan)


def detect_anomalous_voters(
    battles: BattleTable,
    alpha: float = 0.05,
    looks: tuple[int, ...] = DEFAULT_LOOKS,
    min_votes: int | None = None,
    seed: int | None = 0,
) -> VoterReport:
    """Flag voters whose votes are unlike everybody else's on the same pairs.

    Parameters: battles with a ``judge`` column (and ``tstamp`` to order each voter's votes;
    row order otherwise); alpha, the family-wise level per voter; looks, numbers of votes at
    which to test (plus the voter's last vote); min_votes, voters with fewer usable votes are not tested (default: the
    first look); seed for the randomised p-values.
    Returns: VoterReport.
    Raises: DataError without a judge column.
    """
    looks = tuple(sorted(set(int(j) for j in looks)))
    if not looks or looks[0] < 1:
        raise OpenArenaError(f"looks {looks}: expected at least one positive number of votes")
    if not 0 < alpha < 1:
        raise OpenArenaError(f"alpha {alpha}: expected a level between 0 and 1")
    min_votes = looks[0] if min_votes is None else min_votes
    p = vote_pvalues(battles, seed)
    frame = battles.frame
    order_key = frame["tstamp"].to_numpy(dtype=float) if "tstamp" in frame.columns else np.arange(len(frame), dtype=float)
    df = pd.DataFrame({"judge": frame["judge"].astype(str).to_numpy(), "p": p, "t": order_key, "row": np.arange(len(frame))})
    df = df[np.isfinite(df["p"])].sort_values(["judge", "t", "row"], kind="stable")
    df["m"] = df.groupby("judge", sort=False)["p"].transform(lambda s: np.cumsum(-2.0 * np.log(s.to_numpy())))
    df["j"] = df.groupby("judge", sort=False).cumcount() + 1
    n_tests = len(looks) + 1
    per_look = alpha / n_tests
    last = df["j"] == df.groupby("judge", sort=False)["j"].transform("max")
    at_looks = df[df["j"].isin(looks) | last].copy()
    from scipy.stats import chi2  # imported here: scipy.stats costs ~0.6 s at start-up

    at_looks["p_look"] = chi2.sf(at_looks["m"].to_numpy(), 2 * at_looks["j"].to_numpy())
    counts = df.groupby("judge", sort=True).size().rename("votes")
    out = pd.DataFrame(counts).reset_index()
    agg = at_looks.groupby("judge").agg(min_p=("p_look", "min"), looks_tested=("j", "size"), statistic=("m", "last"))
    out = out.merge(agg, on="judge", how="left")
    out["looks_tested"] = out["looks_tested"].fillna(0).astype(int)
    out["min_adjusted_p"] = np.minimum(out["min_p"] * n_tests, 1.0)
    out["flagged"] = (out["votes"] >= min_votes) & (out["min_p"] <= per_look)
    out = out.drop(columns="min_p")[["judge", "votes", "statistic", "looks_tested", "min_adjusted_p", "flagged"]]
    return VoterReport(out, alpha, looks, p)


def drop_voters(battles: BattleTable, judges: list[str], reason: str = "anomalous voters") -> BattleTable:
    """The battles without the votes of ``judges``; the removal is recorded as a FilterStep."""
    keep = ~battles.frame["judge"].astype(str).isin(set(judges)).to_numpy()
    removed = int((~keep).sum())
    step = FilterStep("anomalous_voters", removed, int(keep.sum()), f"{len(judges)} {reason}")
    return battles.with_frame(battles.frame[keep], step)


def leaderboard_shift(battles: BattleTable, judges: list[str], **options) -> pd.DataFrame:
    """How the leaderboard moves when the votes of ``judges`` are removed.

    Parameters: battles; judges to remove; options passed to build_leaderboard (e.g. anchor,
    control). Returns: DataFrame (model, rating_before, rating_after, delta, rank_before,
    rank_after), sorted by |delta| descending. Rank = position by rating.
    """
    from openarena.analysis.leaderboard import build_leaderboard

    options.setdefault("ci", "none")
    before = build_leaderboard(battles, **options).table[["model", "rating"]]
    after = build_leaderboard(drop_voters(battles, judges), **options).table[["model", "rating"]]
    before = before.assign(rank_before=np.arange(1, len(before) + 1))
    after = after.assign(rank_after=np.arange(1, len(after) + 1))
    out = before.merge(after, on="model", how="outer", suffixes=("_before", "_after"))
    out["delta"] = out["rating_after"] - out["rating_before"]
    out = out[["model", "rating_before", "rating_after", "delta", "rank_before", "rank_after"]]
    return out.reindex(out["delta"].abs().sort_values(ascending=False).index).reset_index(drop=True)
