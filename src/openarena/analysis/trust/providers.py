"""Per-provider transparency report: who gets how many battles, how that changes over time,
which models were tested without appearing on the public board, which stopped being sampled.

Organisation map: any table with a model key column (``key``, ``model`` or ``model_key``) and
an ``Organization`` / ``organization`` column: the arena's ``leaderboard_table_*.csv`` metadata
tables, jasontrigg0's ``alltime.csv`` / ``key_to_model.csv``, or our registry's
``organization`` field, merged (the later file wins for a key listed twice).

Source: Singh et al. (2025), "The Leaderboard Illusion" (unequal sampling rates and data access
per provider, private testing, silent deprecation); LMArena's public sampling policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable, PairCounts, as_pair_counts
from openarena.errors import DataError

UNKNOWN = "(unknown)"


def read_org_map(paths: list[str | Path]) -> dict[str, str]:
    """{model key: organisation} from metadata tables (CSV) or a folder of them.

    Raises: DataError naming a file without a key or organisation column."""
    out: dict[str, str] = {}
    files: list[tuple[Path, bool]] = []
    for p in map(Path, paths):
        files += [(f, True) for f in sorted(p.glob("*.csv"))] if p.is_dir() else [(p, False)]
    for f, in_folder in files:
        try:
            t = pd.read_csv(f)
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise DataError(f"cannot read ({err})", str(f)) from None
        low = {c.lower(): c for c in t.columns}
        k = low.get("key") or low.get("model_key") or low.get("model")
        o = low.get("organization") or low.get("organisation") or low.get("org")
        if k is None or o is None:
            if in_folder:
                continue  # a folder may hold other tables
            raise DataError("no model key or organization column", str(f), field="header", expected="key (or model) and Organization")
        for key, org in zip(t[k].astype(str), t[o]):
            if isinstance(org, str) and org.strip():
                out[key.strip()] = org.strip()
    if not out:
        raise DataError("no organisations found", ", ".join(map(str, paths)), expected="tables with key and Organization columns")
    return out


@dataclass(frozen=True)
class ProviderReport:
    """``providers``: provider, models, battles, vote_share (a battle between two models of the
    provider counts once in battles, twice in appearances), appearances, appearance_share;
    ``models``: model, provider, votes, share, first_seen, last_seen, on_public_board,
    status ('public', 'tested privately', 'deprecated' (no votes in the last ``stale_days``));
    ``over_time``: period, provider, share of appearances (or None without timestamps)."""

    providers: pd.DataFrame
    models: pd.DataFrame
    over_time: pd.DataFrame | None


def provider_report(data: BattleTable | PairCounts, orgs: dict[str, str], *, public: set[str] | None = None, period: str = "W", stale_days: float = 30.0) -> ProviderReport:
    """Battles, vote shares, sampling rate over time and model status per provider.

    Parameters: data, battle rows (timestamps give first/last seen, deprecations and the rate
    over time) or pair counts; orgs, {model: provider}; public, the model keys of the public
    leaderboard (models absent from it are 'tested privately'); period, pandas period for the
    rate over time ('W' weeks, 'M' months); stale_days, no vote in this many days before the
    last vote = 'deprecated'.
    Returns: ProviderReport.
    """
    counts = as_pair_counts(data)
    prov = np.array([orgs.get(m, UNKNOWN) for m in counts.models], dtype=object)
    votes = counts.num_battles()
    total = counts.total
    pi, pj = prov[counts.pairs[:, 0]], prov[counts.pairs[:, 1]]
    per_pair = counts.counts.sum(axis=1)
    battles: dict[str, float] = {}
    for p in np.unique(prov):
        battles[p] = float(per_pair[(pi == p) | (pj == p)].sum())
    models = pd.DataFrame({"model": counts.models, "provider": prov, "votes": votes, "share": votes / (2 * total)})
    over_time = None
    if isinstance(data, BattleTable) and "tstamp" in data.frame.columns:
        f = data.frame
        t = pd.to_datetime(pd.to_numeric(f["tstamp"], errors="coerce"), unit="s", utc=True)
        long = pd.DataFrame({"model": pd.concat([f["model_a"].astype(str), f["model_b"].astype(str)], ignore_index=True), "t": pd.concat([t, t], ignore_index=True)})
        span = long.groupby("model")["t"].agg(["min", "max"])
        models["first_seen"] = models["model"].map(span["min"])
        models["last_seen"] = models["model"].map(span["max"])
        end = long["t"].max()
        long["provider"] = long["model"].map(lambda m: orgs.get(m, UNKNOWN))
        long["period"] = long["t"].dt.tz_localize(None).dt.to_period(period).astype(str)
        g = long.groupby(["period", "provider"]).size().rename("appearances").reset_index()
        g["share"] = g["appearances"] / g.groupby("period")["appearances"].transform("sum")
        over_time = g
        stale = models["last_seen"] < end - pd.Timedelta(days=stale_days)
    else:
        stale = pd.Series(False, index=models.index)
    models["on_public_board"] = models["model"].isin(public) if public is not None else np.nan
    status = np.where(stale, "deprecated", "active")
    if public is not None:
        status = np.where(~models["model"].isin(public), "tested privately", status)
    models["status"] = status
    app_ = models.groupby("provider").agg(models=("model", "size"), appearances=("votes", "sum")).reset_index()
    app_["battles"] = app_["provider"].map(battles)
    app_["vote_share"] = app_["battles"] / total
    app_["appearance_share"] = app_["appearances"] / (2 * total)
    if public is not None:
        priv = models[models["status"] == "tested privately"].groupby("provider").size()
        app_["tested_privately"] = app_["provider"].map(priv).fillna(0).astype(int)
    if "last_seen" in models:
        dep = models[models["status"] == "deprecated"].groupby("provider").size()
        app_["deprecated"] = app_["provider"].map(dep).fillna(0).astype(int)
    app_ = app_.sort_values("battles", ascending=False, ignore_index=True)
    return ProviderReport(app_, models.sort_values("votes", ascending=False, ignore_index=True), over_time)
