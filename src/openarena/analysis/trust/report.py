"""The trust analyses of one vote set side by side, as the arena's Trust page shows them:
provider vote shares, provisional scores, drift alarms, the cost-vs-score Pareto frontier and
simultaneous rank intervals. Each part comes from its own module of this package; a part that
the data cannot support is left out with a reason code (``TrustReport.missing``), never an
exception, so one missing ingredient (no prices, too short a history) does not hide the rest.

Reason codes (the web page turns them into plain words): ``no_timestamps`` (votes without
times), ``not_enough_data`` (too few votes per window, or no model comparable across
windows), ``no_prices`` (no price configured), ``few_prices`` (fewer than two rated models
with a price), ``no_intervals`` (the board has no simultaneous rank intervals).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from openarena.data.battles import BattleTable, PairCounts, as_pair_counts
from openarena.errors import DataError

log = logging.getLogger("openarena.trust")

__all__ = ["TrustReport", "build_trust_report"]


@dataclass(frozen=True)
class TrustReport:
    """Result of :func:`build_trust_report` (and :func:`openarena.api.trust_report`).

    Attributes:
        n_votes: votes analysed.
        providers: :class:`~openarena.analysis.trust.providers.ProviderReport` (vote share per
            provider and per model; ``(unknown)`` for a model without an organisation).
        provisional: DataFrame model, votes, fresh_votes, since, provisional
            (:func:`~openarena.analysis.trust.variants.provisional_flags`); provisional_votes: N.
        drift: :class:`~openarena.analysis.trust.drift.DriftResult` or None; window: its
            window ('7d'); alpha: its family level (Holm-adjusted).
        frontier: :class:`~openarena.analysis.trust.frontier.Frontier` or None.
        ranks: DataFrame model, rating, rating_q025, rating_q975, rank_ub, rank_lower,
            rank_upper (simultaneous, anchor-free) or None; rank_level: their coverage.
        missing: {part: reason code} for the parts left out (see the module docstring).
    """

    n_votes: int
    providers: object
    provisional: pd.DataFrame
    provisional_votes: int
    drift: object | None
    window: str
    alpha: float
    frontier: object | None
    ranks: pd.DataFrame | None
    rank_level: float
    missing: dict[str, str] = field(default_factory=dict)


def build_trust_report(
    data: BattleTable | PairCounts,
    board,
    *,
    organizations: dict[str, str] | None = None,
    prices: pd.DataFrame | None = None,
    price_weights: tuple[float, float] = (3.0, 1.0),
    provisional_votes: int | None = None,
    released_at: dict[str, str] | None = None,
    window: str = "7d",
    alpha: float = 0.05,
    drift_min_votes: int = 50,
) -> TrustReport:
    """Assemble the trust analyses of ``data`` around its leaderboard ``board``.

    Parameters:
        data: the votes (battle rows; timestamps in ``tstamp`` enable drift and first-seen dates).
        board: the :class:`~openarena.analysis.leaderboard.Leaderboard` of ``data`` (its
            ratings and intervals feed the frontier; its ``rank_lower``/``rank_upper`` columns,
            when present, the rank intervals).
        organizations: {model: provider}; prices: DataFrame model, input_price, output_price
            (USD per million tokens), or None; price_weights: input:output weights of the
            blended price (3:1).
        provisional_votes: N fresh votes before a score stops being provisional (default
            2,000); released_at: {model: ISO date} of releases (optional).
        window: drift windows ('7d', '12h', ...); alpha: family level of the drift alarms
            (Holm-adjusted p-values); drift_min_votes: a model's window with fewer votes is
            left out of its test.
    Returns: TrustReport. Raises: DataError for malformed options (window, weights, N, dates);
        a part the data cannot support is reported in ``missing`` instead.
    """
    from openarena.analysis.trust.drift import drift_test, parse_window
    from openarena.analysis.trust.frontier import build_frontier
    from openarena.analysis.trust.providers import provider_report
    from openarena.analysis.trust.variants import PROVISIONAL_VOTES, provisional_flags

    parse_window(window)  # a malformed window is the caller's error, not "not enough data"
    n_prov = PROVISIONAL_VOTES if provisional_votes is None else int(provisional_votes)
    missing: dict[str, str] = {}
    providers = provider_report(data, dict(organizations or {}))
    provisional = provisional_flags(data, released_at=released_at, provisional_votes=n_prov)

    drift = None
    if not isinstance(data, BattleTable) or "tstamp" not in data.frame.columns:
        missing["drift"] = "no_timestamps"
    else:
        try:
            drift = drift_test(data, window=window, alpha=alpha, adjustment="holm", min_votes=drift_min_votes)
        except DataError as e:
            log.info("drift: %s", e)
            missing["drift"] = "not_enough_data"
        else:
            if drift.table["delta"].isna().all() or len(drift.windows) < 2:
                drift, missing["drift"] = None, "not_enough_data"

    frontier = None
    if prices is None or len(prices) == 0:
        missing["frontier"] = "no_prices"
    else:
        ratings = board.table[["model", "rating", "rating_q025", "rating_q975"]].copy()
        for lo_hi in ("rating_q025", "rating_q975"):
            ratings[lo_hi] = ratings[lo_hi].fillna(ratings["rating"])
        try:
            frontier = build_frontier(ratings, prices[["model", "input_price", "output_price"]], price_weights)
        except DataError as e:
            log.info("frontier: %s", e)
            missing["frontier"] = "few_prices"

    ranks = None
    cols = ["model", "rating", "rating_q025", "rating_q975", "rank_ub", "rank_lower", "rank_upper"]
    if "rank_lower" in board.table.columns:
        ranks = board.table[cols].sort_values(["rank_lower", "rank_upper", "rating"], ascending=[True, True, False], ignore_index=True)
    else:
        missing["ranks"] = "no_intervals"
    return TrustReport(
        n_votes=int(round(float(as_pair_counts(data).total))), providers=providers, provisional=provisional, provisional_votes=n_prov,
        drift=drift, window=window, alpha=alpha, frontier=frontier, ranks=ranks, rank_level=float(board.level), missing=missing,
    )
