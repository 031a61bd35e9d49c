"""Figures of the trust analyses (matplotlib PNG, no display needed): rating over time with
bands (drift), published rating paths."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from openarena.analysis.plots import finish_figure  # noqa: E402


def drift_plot(result, path: str | Path | None = None, top: int = 8) -> bytes:
    """Rating per window with 95% bands for the drifted models and the smallest p-values
    (at most ``top``); ``result`` is a DriftResult. Returns PNG bytes (written to ``path``)."""

    names = result.table.dropna(subset=["p_value"]).head(top)["model"].tolist()
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=100)
    for name in names:
        g = result.path[result.path["model"] == name].sort_values("start")
        drifted = bool(result.table.set_index("model").loc[name, "drifted"])
        line = ax.plot(g["start"], g["rating"], marker="o", lw=2 if drifted else 1, label=name + (" (drifted)" if drifted else ""))[0]
        ax.fill_between(g["start"], g["rating"] - 1.96 * g["se"], g["rating"] + 1.96 * g["se"], color=line.get_color(), alpha=0.15)
    ax.set_ylabel("rating (points; other models' mean = 1000)")
    ax.set_xlabel("window start (UTC)")
    ax.set_title(f"Rating per window with 95% bands ({'Holm' if result.adjustment == 'holm' else 'Benjamini-Hochberg'}, alpha {result.alpha:g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.autofmt_xdate()
    return finish_figure(fig, path)


def history_plot(history: pd.DataFrame, models: list[str], path: str | Path | None = None, title: str = "Published rating over time") -> bytes:
    """Published rating paths of ``models`` (history: model, date, rating[, ci_half]) with
    95% bands when the snapshots have intervals. Returns PNG bytes."""

    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=100)
    for name in models:
        g = history[history["model"] == name].sort_values("date")
        if g.empty:
            continue
        line = ax.plot(g["date"], g["rating"], marker=".", label=name)[0]
        if "ci_half" in g and g["ci_half"].notna().any():
            ax.fill_between(g["date"], g["rating"] - g["ci_half"], g["rating"] + g["ci_half"], color=line.get_color(), alpha=0.15)
    ax.set_ylabel("arena score")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return finish_figure(fig, path)


def frontier_history_plot(frontiers: pd.DataFrame, path: str | Path | None = None, dates: int = 6) -> bytes:
    """The Pareto frontier (score vs blended price, log axis) at ``dates`` evenly spaced dates
    of ``frontiers`` (date, model, rating, price). Returns PNG bytes."""

    all_dates = sorted(frontiers["date"].unique())
    pick = [all_dates[int(i)] for i in np.linspace(0, len(all_dates) - 1, min(dates, len(all_dates)))] if all_dates else []
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    cmap = plt.get_cmap("viridis")
    for k, d in enumerate(pick):
        g = frontiers[frontiers["date"] == d].sort_values("price")
        ax.step(np.maximum(g["price"], 0.01), g["rating"], where="post", marker="o", ms=3, color=cmap(k / max(len(pick) - 1, 1)), label=str(pd.Timestamp(d).date()))
    ax.set_xscale("log")
    ax.set_xlabel("blended price, USD per million tokens (log scale; today's prices)")
    ax.set_ylabel("arena score")
    ax.set_title("Cost-vs-score frontier over time")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return finish_figure(fig, path)
