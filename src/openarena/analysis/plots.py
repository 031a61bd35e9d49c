"""Static plots of a leaderboard (matplotlib, PNG/SVG; no display needed).

- :func:`whisker_plot`: rating and confidence interval of each model, best at the top, the
  view of FastChat's "bootstrap_elo_rating" figure.
- :func:`win_rate_heatmap`: a pairwise matrix (observed or predicted win rates).
- :func:`count_heatmap`: the battle-count matrix (FastChat's "battle count" figure).
- :func:`coefficient_plot`: style-control coefficients with their intervals.
- :func:`interactive_heatmap`: any of the matrices as an interactive HTML page (plotly).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def finish_figure(fig, path: str | Path | None, fmt: str = "png") -> bytes:
    """Lay out, render to bytes (``fmt``: 'png' or 'svg'), close the figure, and write ``path``
    when given; every plot of the package ends here. Returns the bytes."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def whisker_plot(table: pd.DataFrame, title: str = "Arena score with confidence interval", top: int | None = 60, path: str | Path | None = None, fmt: str = "png") -> bytes:
    """Horizontal whisker plot of ``rating`` with ``rating_q025``..``rating_q975``.

    Parameters: table, leaderboard table (sorted best first); top, how many models to show
    (None = all); path, where to write the image (optional); fmt, 'png' or 'svg'.
    Returns: the image bytes.
    """
    t = table.head(top) if top else table
    n = len(t)
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.24 * n + 1.2)), dpi=90)
    y = np.arange(n)[::-1]
    r = t["rating"].to_numpy(float)
    lo = t["rating_q025"].to_numpy(float)
    hi = t["rating_q975"].to_numpy(float)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    err = np.vstack([np.where(has_ci, r - lo, 0), np.where(has_ci, hi - r, 0)])
    ax.errorbar(r, y, xerr=err, fmt="o", ms=4, color="#1f5fa8", ecolor="#7aa6d6", elinewidth=2, capsize=2)
    ax.set_yticks(y)
    ax.set_yticklabels(t["model"].tolist(), fontsize=8)
    ax.set_xlabel("arena score (Elo scale)")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.set_ylim(-1, n)
    return finish_figure(fig, path, fmt)


def _heatmap_inches(n: int) -> float:
    """Side of a model x model heat map in inches: 0.16 in per model (a 7-point label fits),
    4 in at least. The figure's size is what drawing and saving cost: at 0.28 in per model a
    129-model win-rate heat map took 5.7 s here and the count map 4.6 s (4.3 s and 3.7 s at 0.16 in,
    cells drawn unresampled); most of the rest is the 2 x 129 tick labels."""
    return max(4.0, 0.16 * n + 2)


def win_rate_heatmap(matrix: pd.DataFrame, title: str = "Win rate of model A over model B", path: str | Path | None = None, fmt: str = "png") -> bytes:
    """Heat map of a square model x model matrix with values in [0, 1]; returns image bytes."""
    n = len(matrix)
    size = _heatmap_inches(n)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    im = ax.imshow(matrix.to_numpy(float), cmap="RdBu", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(matrix.columns, rotation=90, fontsize=7)
    ax.set_yticklabels(matrix.index, fontsize=7)
    ax.set_xlabel("model B")
    ax.set_ylabel("model A")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return finish_figure(fig, path, fmt)


def count_heatmap(matrix: pd.DataFrame, title: str = "Battles between model A and model B", path: str | Path | None = None, fmt: str = "png") -> bytes:
    """Heat map of the battle counts (model x model, symmetric); numbers written in the cells up
    to 30 models. Returns image bytes."""
    n = len(matrix)
    size = _heatmap_inches(n)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    values = matrix.to_numpy(float)
    im = ax.imshow(values, cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(matrix.columns, rotation=90, fontsize=7)
    ax.set_yticklabels(matrix.index, fontsize=7)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if values[i, j] > 0:
                    ax.text(j, i, f"{values[i, j]:.0f}", ha="center", va="center", fontsize=6, color="w")
    ax.set_xlabel("model B")
    ax.set_ylabel("model A")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return finish_figure(fig, path, fmt)


def coefficient_plot(coefficients: pd.DataFrame, level: float = 0.95, path: str | Path | None = None, fmt: str = "png") -> bytes:
    """Style-control coefficients (logits per standard deviation) with their intervals
    (columns name, coef, coef_q025, coef_q975). Returns image bytes."""
    c = coefficients
    n = len(c)
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.45 * n + 1.2)), dpi=90)
    y = np.arange(n)[::-1]
    coef = c["coef"].to_numpy(float)
    err = np.vstack([coef - c["coef_q025"].to_numpy(float), c["coef_q975"].to_numpy(float) - coef])
    ax.errorbar(coef, y, xerr=err, fmt="o", color="#1f5fa8", ecolor="#7aa6d6", elinewidth=2, capsize=3)
    ax.axvline(0, color="#999", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels(c["name"].tolist(), fontsize=9)
    ax.set_xlabel(f"coefficient (logits per standard deviation), {level * 100:g}% interval")
    ax.set_title("Style control coefficients", fontsize=11)
    return finish_figure(fig, path, fmt)


def interactive_heatmap(matrix: pd.DataFrame, title: str, path: str | Path, counts: bool = False) -> Path:
    """Write ``matrix`` as an interactive heat map (hover shows model A, model B, value): a
    HTML page made with plotly, whose JavaScript is written once beside it (plotly.min.js in the
    same folder; works offline, keep the two together).
    Returns the path written."""
    import plotly.graph_objects as go

    z = matrix.to_numpy(float)
    fig = go.Figure(
        go.Heatmap(
            z=z, x=list(matrix.columns), y=list(matrix.index),
            colorscale="Viridis" if counts else "RdBu", zmin=None if counts else 0, zmax=None if counts else 1,
            hovertemplate="model A: %{y}<br>model B: %{x}<br>" + ("battles: %{z:.0f}" if counts else "win rate: %{z:.3f}") + "<extra></extra>",
        )
    )
    size = max(500, 14 * len(matrix) + 250)
    fig.update_layout(title=title, width=size, height=size, xaxis_title="model B", yaxis_title="model A", yaxis_autorange="reversed")
    fig.write_html(str(path), include_plotlyjs="directory", full_html=True)
    return Path(path)
