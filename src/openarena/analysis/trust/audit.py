"""Audit of a vote set: is this data fit to rank models?

- Connectivity of the comparison graph (components, observed pairs, models without a finite
  rating).
- Significant intransitive triads: cycles i > j > k > i of pairwise win rates (ties as half)
  where every edge is significant (intersection-union test), Bonferroni across the triads with
  all three pairs observed.
- Position bias: P(model_a wins | decisive vote) with a Wilson interval (sides are randomised,
  so 0.5 is expected).
- Tie rates (tie, tie (bothbad)).
- Votes per voter: the share of votes cast by the top 1% of voters (needs a ``judge`` column).
- Sampling share per model against its target (uniform over models by default).
- Sensitivity to the top voters: the models whose rating moves by more than its interval
  half-width when the top 1% voters' votes are removed.

Source: Chiang et al. (2024), Chatbot Arena, sections 4-6; Singh et al. (2025), "The Leaderboard
Illusion" (sampling shares); Wilson (1927); Berger (1982) intersection-union tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import norm

from openarena.data.battles import BattleTable, PairCounts, as_pair_counts
from openarena.data.schema import winner_codes
from openarena.ratings.bradley_terry import unrated_models


@dataclass
class Audit:
    """Findings of :func:`audit_votes`: ``summary`` (dict of scalar figures), ``triads``
    (DataFrame i, j, k, z_min, p_value of the significant cycles), ``models`` (per-model votes,
    share, target share, ratio), ``sensitivity`` (per-model rating with and without the top
    voters, or None), ``voters`` (votes per voter, sorted, or None)."""

    summary: dict
    triads: pd.DataFrame
    models: pd.DataFrame
    sensitivity: pd.DataFrame | None = None
    voters: pd.Series | None = None
    notes: list[str] = field(default_factory=list)


def wilson(successes: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion."""
    if n <= 0:
        return (float("nan"), float("nan"))
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def intransitive_triads(counts: PairCounts, alpha: float = 0.05, max_models: int = 400) -> tuple[pd.DataFrame, int]:
    """Cycles i > j > k > i in which each pairwise win rate (ties as half) is significantly above
    0.5 (one-sided z), Bonferroni across all triads with three observed pairs.

    Returns: (DataFrame model_i, model_j, model_k, z_min, p_value (adjusted), number of triads
    tested). O(n^3) memory in chunks; at most ``max_models`` models.
    """
    n = counts.n_models
    if n > max_models:
        raise ValueError(f"{n} models: the triad scan is limited to {max_models}")
    c = counts.counts
    i, j = counts.pairs[:, 0], counts.pairs[:, 1]
    N = np.zeros((n, n))
    S = np.zeros((n, n))
    tot = c.sum(axis=1)
    s_ij = c[:, 0] + 0.5 * (c[:, 2] + c[:, 3])
    N[i, j] = N[j, i] = tot
    S[i, j], S[j, i] = s_ij, tot - s_ij
    with np.errstate(invalid="ignore", divide="ignore"):
        Z = np.where(N > 0, (S / np.where(N > 0, N, 1) - 0.5) / np.sqrt(0.25 / np.where(N > 0, N, 1)), 0.0)
    obs = N > 0
    # triads with all three pairs observed (each unordered triad once: i < j < k)
    A = obs.astype(np.int64)
    n_triads = int(np.trace(A @ A @ A) // 6)
    if n_triads == 0:
        return pd.DataFrame(columns=["model_i", "model_j", "model_k", "z_min", "p_value"]), 0
    zcrit = norm.isf(alpha / n_triads)
    big = Z > zcrit  # i significantly beats j
    rows = []
    for a in range(n):
        # cycles a > b > c > a with a the smallest index of the cycle (each cycle once)
        bs = np.flatnonzero(big[a] & (np.arange(n) > a))
        for b in bs:
            cs = np.flatnonzero(big[b] & big[:, a] & (np.arange(n) > a))
            for cc in cs:
                zmin = min(Z[a, b], Z[b, cc], Z[cc, a])
                rows.append((counts.models[a], counts.models[b], counts.models[cc], zmin, min(1.0, norm.sf(zmin) * n_triads)))
    return pd.DataFrame(rows, columns=["model_i", "model_j", "model_k", "z_min", "p_value"]), n_triads


def audit_votes(data: BattleTable | PairCounts, *, target: dict[str, float] | None = None, top_share: float = 0.01, alpha: float = 0.05, level: float = 0.95) -> Audit:
    """Run every check that the data allows (voter checks need a ``judge`` column; the others
    work on pair counts too).

    Parameters: target, the intended share of battles per model (normalised; default uniform);
    top_share, the share of most active voters examined (1%); alpha, level of the triad test.
    Returns: Audit.
    """
    from openarena.analysis.leaderboard import build_leaderboard

    counts = as_pair_counts(data)
    n = counts.n_models
    c = counts.counts
    g = coo_matrix((np.ones(len(counts.pairs)), (counts.pairs[:, 0], counts.pairs[:, 1])), shape=(n, n))
    n_comp, _ = connected_components(g, directed=False)
    unrated = unrated_models(counts)
    total = c.sum()
    summary: dict = {
        "votes": float(total),
        "models": n,
        "pairs_observed": int(len(counts.pairs)),
        "pairs_possible": n * (n - 1) // 2,
        "components": int(n_comp),
        "models_without_finite_rating": len(unrated),
        "tie_rate": float(c[:, 2].sum() / total),
        "tie_bothbad_rate": float(c[:, 3].sum() / total),
    }
    notes = []
    # position bias needs the side of each vote
    if isinstance(data, BattleTable):
        w = winner_codes(data.frame["winner"], data.source)
        a_wins, b_wins = float((w == 0).sum()), float((w == 1).sum())
        lo, hi = wilson(a_wins, a_wins + b_wins, level)
        summary.update({"model_a_win_share": a_wins / max(a_wins + b_wins, 1), "model_a_win_share_lower": lo, "model_a_win_share_upper": hi})
    else:
        notes.append("position bias needs one row per vote (pair counts do not keep sides)")
    triads, n_triads = intransitive_triads(counts, alpha)
    summary.update({"triads_tested": n_triads, "significant_intransitive_triads": int(len(triads))})
    votes = counts.num_battles()
    share = votes / (2 * total)
    tgt = np.full(n, 1.0 / n) if target is None else np.array([float(target.get(m, 0.0)) for m in counts.models])
    if tgt.sum() > 0:
        tgt = tgt / tgt.sum()
    models = pd.DataFrame({"model": counts.models, "votes": votes, "share": share, "target_share": tgt})
    models["ratio"] = models["share"] / models["target_share"].replace(0, np.nan)
    models = models.sort_values("votes", ascending=False, ignore_index=True)
    summary["max_over_min_share"] = float(share.max() / max(share.min(), 1e-300))
    sens = voters = None
    if isinstance(data, BattleTable) and "judge" in data.frame.columns:
        per = data.frame["judge"].astype(str).value_counts()
        voters = per
        k = max(1, int(np.ceil(top_share * len(per))))
        top = set(per.index[:k])
        summary.update({"voters": int(len(per)), "top_voters": k, "top_voter_vote_share": float(per.iloc[:k].sum() / per.sum())})
        keep = ~data.frame["judge"].astype(str).isin(top)
        try:
            full = build_leaderboard(data, level=level).table.set_index("model")
            rest = build_leaderboard(data.with_frame(data.frame[keep].reset_index(drop=True)), level=level, drop_unrated=True).table.set_index("model")
            both = full.join(rest[["rating"]].rename(columns={"rating": "rating_without_top"}), how="inner")
            half = (both["rating_q975"] - both["rating_q025"]) / 2
            both["moved"] = both["rating_without_top"] - both["rating"]
            both["beyond_half_width"] = both["moved"].abs() > half
            sens = both.reset_index()[["model", "rating", "rating_q025", "rating_q975", "rating_without_top", "moved", "beyond_half_width"]]
            summary["models_moving_beyond_half_width"] = int(both["beyond_half_width"].sum())
        except Exception as err:  # a refit without the top voters may lose identifiability
            notes.append(f"sensitivity to the top voters not computed: {err}")
    else:
        notes.append("votes per voter need a judge column (hashed voter id)")
    return Audit(summary, triads, models, sens, voters, notes)


def audit_html(audit: Audit, title: str = "OpenArena vote-set audit") -> str:
    """Self-contained HTML report: the summary, sampling shares, triads, sensitivity, with
    inline PNG plots."""
    import base64
    import html
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def png(fig) -> str:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'

    figs = []
    m = audit.models.head(60)
    fig, ax = plt.subplots(figsize=(9, max(3, 0.2 * len(m) + 1)))
    ax.barh(m["model"][::-1], m["share"][::-1], color="#1f5fa8", label="share of battles")
    ax.plot(m["target_share"][::-1], m["model"][::-1], "|", color="#c0392b", ms=10, label="target")
    ax.set_xlabel("share of battles")
    ax.legend()
    ax.tick_params(axis="y", labelsize=7)
    figs.append(png(fig))
    if audit.voters is not None:
        v = np.sort(audit.voters.to_numpy())[::-1]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(np.arange(1, len(v) + 1) / len(v), np.cumsum(v) / v.sum())
        ax.set_xlabel("share of voters (most active first)")
        ax.set_ylabel("share of votes")
        ax.grid(alpha=0.3)
        figs.append(png(fig))

    def table(df: pd.DataFrame | None, limit: int = 100) -> str:
        if df is None or df.empty:
            return "<p>none</p>"
        return df.head(limit).to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0)

    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(f'{v:.4g}' if isinstance(v, float) else str(v))}</td></tr>" for k, v in audit.summary.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in audit.notes)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}} table{{border-collapse:collapse;font-size:.9rem}} th,td{{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}} img{{max-width:100%}}</style></head><body>
<h1>{html.escape(title)}</h1><table>{rows}</table><ul>{notes}</ul>
<h2>Sampling share per model vs target</h2>{figs[0]}{table(audit.models)}
<h2>Significant intransitive triads</h2>{table(audit.triads)}
<h2>Votes per voter</h2>{figs[1] if len(figs) > 1 else '<p>no voter ids</p>'}
<h2>Ratings without the top voters</h2>{table(None if audit.sensitivity is None else audit.sensitivity.sort_values('moved', key=abs, ascending=False))}
</body></html>"""
