"""The red-team leaderboards: players (skill), models (robustness) and targets (difficulty),
each with a confidence interval and its number of rounds, from one extended Bradley-Terry fit.

Ratings are on the Elo scale around 1000 (400 points = 10:1 odds): a player rated 1000 wins half
of the rounds against the average model on the average target; a model 100 points more robust
than another cuts every player's odds against it by a factor 10^(100/400) = 1.78.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from openarena.data.rounds import RoundTable
from openarena.errors import DataError
from openarena.ratings.extended_bt import (
    KINDS,
    ExtendedBTFit,
    bootstrap_extended_bt,
    fit_extended_bt,
    online_extended_bt,
    to_points,
)

COLUMNS = ("kind", "name", "rating", "rating_q025", "rating_q975", "num_rounds")
CI_METHODS = ("auto", "sandwich", "bootstrap", "none")


@dataclass(frozen=True)
class RedTeamLeaderboard:
    """Three boards in one table.

    Attributes: frame, DataFrame with :data:`COLUMNS` (kind 'player' | 'model' | 'target'),
    sorted by kind then rating (best player first, most robust model first, hardest target
    first); fit, the ExtendedBTFit; options, what was done (method, interval, level, prior,
    bootstrap rounds and failed resamples) for the provenance.
    """

    frame: pd.DataFrame
    fit: ExtendedBTFit
    options: dict = field(default_factory=dict)

    def board(self, kind: str) -> pd.DataFrame:
        """The rows of one kind ('player', 'model' or 'target'). Raises DataError otherwise."""
        if kind not in KINDS:
            raise DataError(f"unknown kind {kind!r}", field="kind", expected="player, model or target")
        return self.frame[self.frame["kind"] == kind].reset_index(drop=True)

    def to_frame(self) -> pd.DataFrame:
        """A copy of the whole table (columns :data:`COLUMNS`)."""
        return self.frame.copy()

    def to_csv(self, path: str | Path | None = None) -> str:
        """The table as CSV text; also written to ``path`` when given."""
        text = self.frame.to_csv(index=False, float_format="%.4f")
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_json(self) -> str:
        """``{"options": {...}, "players": [...], "models": [...], "targets": [...]}``."""
        def rows(kind: str) -> list[dict]:
            out = self.board(kind).drop(columns=["kind"]).to_dict(orient="records")
            for r in out:
                for k, v in r.items():
                    if isinstance(v, float) and not np.isfinite(v):
                        r[k] = None
            return out

        return json.dumps({"options": self.options, "players": rows("player"), "models": rows("model"), "targets": rows("target")}, indent=1)


def redteam_leaderboard(
    rounds: RoundTable,
    *,
    ci: str = "auto",
    level: float = 0.95,
    player_prior: float | str = "auto",
    bootstrap_rounds: int = 100,
    seed: int = 0,
    online: bool = False,
    progress=None,
) -> RedTeamLeaderboard:
    """Fit the extended Bradley-Terry model to red-team rounds and build the three boards.

    Parameters:
        rounds: RoundTable (player, model, target, won[, tstamp]).
        ci: 'auto' (players: exact posterior quantiles under the empirical-Bayes prior, or
            sandwich without a prior; models and targets: sandwich), 'sandwich', 'bootstrap'
            (percentiles of ``bootstrap_rounds`` resamples of the rounds) or 'none'.
        level: confidence level in (0, 1).
        player_prior: 'auto' or lambda >= 0 (see :func:`fit_extended_bt`).
        online: rate with one pass of online logistic regression in time order instead (the
            live-page estimate; no intervals).
        progress: optional callable(n) advanced once per bootstrap resample.
    Returns: RedTeamLeaderboard.
    Raises: DataError for a bad option; ConvergenceError when the model cannot be fitted.
    """
    if ci not in CI_METHODS:
        raise DataError(f"unknown interval method {ci!r}", field="ci", expected=", ".join(CI_METHODS))
    if not 0 < level < 1:
        raise DataError(f"level {level!r}", field="level", expected="a number strictly between 0 and 1")
    options = {"method": "online" if online else "extended-bt", "ci": "none" if online else ci, "level": level}
    if online:
        fit = online_extended_bt(rounds)
        lo = hi = np.full(len(fit.params), np.nan)
    else:
        fit = fit_extended_bt(rounds, player_prior=player_prior)
        options["player_prior_sd_logits"] = None if fit.player_prior == 0 else round(fit.tau, 6)
        n_players = len(fit.skill)
        z = norm.ppf(0.5 + level / 2)
        if ci == "none":
            lo = hi = np.full(len(fit.params), np.nan)
        elif ci == "bootstrap":
            draws = bootstrap_extended_bt(fit, bootstrap_rounds, seed=seed, progress=progress)
            failed = int(np.isnan(draws).any(axis=1).sum())
            options.update(bootstrap_rounds=bootstrap_rounds, seed=seed, failed_resamples=failed)
            ok = draws[~np.isnan(draws).any(axis=1)]
            if len(ok) == 0:
                lo = np.full(len(fit.params), -np.inf)
                hi = np.full(len(fit.params), np.inf)
            else:
                lo, hi = np.quantile(ok, [(1 - level) / 2, (1 + level) / 2], axis=0)
        else:
            se = np.sqrt(np.diag(fit.cov_robust))
            lo, hi = fit.params - z * se, fit.params + z * se
            if ci == "auto":
                iv = fit.skill_intervals(level)
                lo[:n_players], hi[:n_players] = iv[:, 0], iv[:, 1]
        options["interval"] = {"auto": "players: posterior quantiles" if fit.player_prior else "sandwich", "sandwich": "sandwich", "bootstrap": "bootstrap percentiles", "none": "none"}[ci]
    counts = fit.counts
    n_rounds = np.concatenate([counts.rounds_per("player"), counts.rounds_per("model"), counts.rounds_per("target")])
    names = fit.names()
    frame = pd.DataFrame({
        "kind": [k for k, _ in names], "name": [n for _, n in names],
        "rating": to_points(fit.params), "rating_q025": to_points(lo), "rating_q975": to_points(hi),
        "num_rounds": n_rounds.astype(int),
    })
    order = {"player": 0, "model": 1, "target": 2}
    frame = frame.assign(_k=frame["kind"].map(order)).sort_values(["_k", "rating", "name"], ascending=[True, False, True], kind="stable").drop(columns="_k").reset_index(drop=True)
    return RedTeamLeaderboard(frame, fit, options)


def robustness_by_model(board: RedTeamLeaderboard) -> dict[str, float]:
    """{model: robustness rating} to show beside the chat arena score."""
    models = board.board("model")
    return dict(zip(models["name"], models["rating"]))


__all__ = ["COLUMNS", "RedTeamLeaderboard", "redteam_leaderboard", "robustness_by_model"]
