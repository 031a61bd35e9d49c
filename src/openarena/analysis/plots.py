"""Static plots of a leaderboard (matplotlib, PNG/SVG; no display needed).

- :func:`whisker_plot`: rating and confidence interval of each model, best at the top, the
  view of FastChat's "bootstrap_elo_rating" figure.
- :func:`win_rate_heatmap`: a pairwise matrix (observed or predicted win rates).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _finish(fig, path: str | Path | None, fmt: str) -> bytes:
    """Lay out, render to bytes, close the figure, and write ``path`` when given."""
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
    return _finish(fig, path, fmt)


def win_rate_heatmap(matrix: pd.DataFrame, title: str = "Win rate of model A over model B", path: str | Path | None = None, fmt: str = "png") -> bytes:
    """Heat map of a square model x model matrix with values in [0, 1]; returns image bytes."""
    n = len(matrix)
    size = max(4.0, 0.28 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    im = ax.imshow(matrix.to_numpy(float), cmap="RdBu", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(matrix.columns, rotation=90, fontsize=7)
    ax.set_yticklabels(matrix.index, fontsize=7)
    ax.set_xlabel("model B")
    ax.set_ylabel("model A")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _finish(fig, path, fmt)
