"""Leaderboard output formats: csv, json, markdown and a self-contained html page.

The CSV starts with exactly ``rank_ub,model,rating,rating_q025,rating_q975,num_battles``
(then variance, win_rate). JSON holds {"leaderboard": [...rows], "provenance": {...}}.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: leaderboard.py calls these functions from its methods
    import pandas as pd

    from openarena.analysis.leaderboard import Leaderboard

FORMATS = ("table", "csv", "json", "markdown", "html")


def _clean(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


#: printf format of the floats of a leaderboard CSV (full precision, no trailing zeros)
CSV_FLOAT_FORMAT = "%.10g"


def to_csv(lb: Leaderboard) -> str:
    """CSV text, full float precision: pandas' ``to_csv(index=False, float_format="%.10g")``
    of the table (floats as %.10g, missing values empty, "\n" line ends, fields quoted when
    they need it). A board not yet read as a DataFrame is written from its columns with the
    csv module (the same bytes, without importing pandas)."""
    columns = lb.columns()
    if columns is None:
        return lb.table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT)
    return csv_text(columns)


def csv_text(columns: dict) -> str:
    """CSV text of {column name: values} (equal lengths): a header row, then one row per
    position; float values as :data:`CSV_FLOAT_FORMAT` (NaN empty), other values as ``str``
    (None, NaN or pd.NA in an object column empty);
    the bytes of pandas' ``DataFrame.to_csv(index=False, float_format=CSV_FLOAT_FORMAT)``."""
    import csv
    import io

    def cells(values) -> list[str]:
        array = np.asarray(values)
        if array.dtype.kind == "f":
            return ["" if v != v else CSV_FLOAT_FORMAT % v for v in array.tolist()]
        if array.dtype.kind in "iub":
            return [str(v) for v in array.tolist()]
        # an object column: a missing value (None, NaN, pd.NA) is an empty field, as in pandas
        return ["" if v is None or type(v).__name__ == "NAType" or (isinstance(v, float) and v != v) else str(v) for v in values]

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(list(columns))
    writer.writerows(zip(*(cells(v) for v in columns.values())))
    return out.getvalue()


def to_records(lb: Leaderboard) -> list[dict]:
    """Rows as plain dicts (NaN -> None)."""
    return [{k: _clean(v) for k, v in row.items()} for row in lb.table.to_dict(orient="records")]


def to_json(lb: Leaderboard, indent: int | None = 2) -> str:
    """JSON text: leaderboard rows, the tie parameter (if any) and the provenance."""
    doc = {"leaderboard": to_records(lb), "provenance": lb.provenance}
    if lb.tie_param is not None:
        doc["tie_param"] = {"model": lb.ties, "value": lb.tie_param}
    return json.dumps(doc, indent=indent, default=_clean)


def _fmt_ci(row: pd.Series) -> str:
    lo, hi, r = row["rating_q025"], row["rating_q975"], row["rating"]
    if np.isnan(lo) or np.isnan(hi):
        return ""
    # an unbounded side (no finite rating in enough bootstrap resamples) shows as inf
    up = "+inf" if np.isinf(hi) else f"+{hi - r:.1f}"
    down = "-inf" if np.isinf(lo) else f"-{r - lo:.1f}"
    return f"{up}/{down}"


def display_frame(lb: Leaderboard) -> pd.DataFrame:
    """The human view: Rank (UB), Model, Arena Score, 95% CI, Votes, as strings (and Rank
    change, overall rank (UB) - category rank (UB), on a category board)."""
    import pandas as pd

    pct = f"{lb.level * 100:g}% CI"
    t = lb.table
    d = pd.DataFrame(
        {
            "Rank (UB)": t["rank_ub"].astype(str),
            "Model": t["model"],
            "Arena Score": t["rating"].map(lambda v: f"{v:.1f}"),
            pct: t.apply(_fmt_ci, axis=1),
            "Votes": t["num_battles"].map(lambda v: f"{v:,.0f}"),
        }
    )
    if "rank_delta" in t.columns:
        d["Rank change"] = t["rank_delta"].map(lambda v: "" if pd.isna(v) else f"{int(v):+d}" if v else "0")
    if "robustness" in t.columns:  # red-team robustness beside the arena score (api.with_robustness)
        d["Robustness (red team)"] = t.apply(lambda r: "" if pd.isna(r["robustness"]) else f"{r['robustness']:.0f} ({r['robustness_q025']:.0f} to {r['robustness_q975']:.0f})", axis=1)
    return d


def to_markdown(lb: Leaderboard) -> str:
    """GitHub-flavoured markdown table."""
    d = display_frame(lb)
    head = "| " + " | ".join(d.columns) + " |\n|" + "|".join("---" for _ in d.columns) + "|\n"
    body = "".join("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |\n" for row in d.itertuples(index=False))
    return head + body


def to_html(lb: Leaderboard, title: str = "OpenArena leaderboard", plot: bool = True, png: bytes | None = None) -> str:
    """A self-contained HTML page: the table, the whisker plot (inline PNG; ``png`` reuses an
    already rendered one) and provenance."""
    d = display_frame(lb)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in d.itertuples(index=False)
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in d.columns)
    figure = ""
    if plot and lb.intervals is not None:
        from openarena.analysis.plots import whisker_plot  # matplotlib: only when a plot is written

        png = png or whisker_plot(lb.table, title=_plot_title(lb), top=None, fmt="png")
        figure = f'<figure><img alt="ratings with confidence intervals" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'
    prov = html.escape(json.dumps(lb.provenance, indent=2, default=_clean))
    opts = lb.provenance.get("options", {})
    subtitle = (
        f"{lb.provenance.get('n_battles', 0):,.0f} votes, {lb.provenance.get('n_models', 0)} models; "
        f"{'Bradley-Terry' if lb.rating_system == 'bt' else 'online Elo'}, ties: {lb.ties}, "
        f"intervals: {lb.ci}, anchor: {opts.get('anchor', '')}"
    )
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in lb.notes)
    if lb.category:
        title = f"{title}: category {lb.category}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}}
table{{border-collapse:collapse;font-size:.9rem}} th,td{{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right}}
td:nth-child(2),th:nth-child(2){{text-align:left}} th{{background:#f3f5f8;position:sticky;top:0}}
figure{{margin:1.5rem 0}} img{{max-width:100%}} pre{{background:#f6f6f6;padding:1rem;overflow:auto;font-size:.8rem}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(subtitle)}</p>
{notes}
<table><thead><tr>{head}</tr></thead><tbody>
{rows}
</tbody></table>
{figure}
<h2>Provenance</h2><pre>{prov}</pre>
</body></html>
"""


def render(lb: Leaderboard, fmt: str) -> str:
    """Render in one of csv, json, markdown, html (the terminal 'table' is the CLI's job)."""
    if fmt == "csv":
        return to_csv(lb)
    if fmt == "json":
        return to_json(lb)
    if fmt == "markdown":
        return to_markdown(lb)
    if fmt == "html":
        return to_html(lb)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


#: figure kinds of :func:`figure` / :meth:`Leaderboard.plot`
FIGURES = ("ci", "predicted", "observed", "counts")


def _plot_title(lb: Leaderboard) -> str:
    what = "Arena score with confidence interval" if lb.intervals is not None else "Arena score"
    if lb.category:
        what += f": category {lb.category}"
    if lb.coefficients is not None:
        what += " (style control)"
    return what


def matrices(lb: Leaderboard) -> dict[str, pd.DataFrame]:
    """The pairwise matrices of the board, models in leaderboard order (rows = model A):
    'predicted' (P(A beats B) from the ratings: 1 / (1 + 10^((R_B - R_A) / 400)), ties aside),
    'observed' (A's share of the decisive votes against B, NaN where they never met) and
    'counts' (votes between A and B)."""
    import pandas as pd

    from openarena.analysis.matrices import battle_counts, observed_win_rates

    order = lb.models
    r = lb.table["rating"].to_numpy(float)
    pred = 1.0 / (1.0 + 10.0 ** ((r[None, :] - r[:, None]) / 400.0))
    np.fill_diagonal(pred, np.nan)
    predicted = pd.DataFrame(pred, index=order, columns=order)
    predicted.index.name, predicted.columns.name = "model_a", "model_b"
    return {
        "predicted": predicted,
        "observed": observed_win_rates(lb.counts, order),
        "counts": battle_counts(lb.counts, order),
    }


def figure(lb: Leaderboard, kind: str = "ci", *, path=None, fmt: str = "png") -> bytes:
    """Render one figure of the board as PNG/SVG bytes: 'ci' (every model's rating and
    interval), 'predicted' / 'observed' (win-rate heatmaps), 'counts' (battle-count matrix).
    Raises: ValueError for an unknown kind."""
    from openarena.analysis import plots

    if kind == "ci":
        return plots.whisker_plot(lb.table, title=_plot_title(lb), top=None, path=path, fmt=fmt)
    if kind not in FIGURES:
        raise ValueError(f"unknown figure {kind!r}; expected one of {', '.join(FIGURES)}")
    m = matrices(lb)[kind]
    suffix = f" (category {lb.category})" if lb.category else ""
    if kind == "counts":
        return plots.count_heatmap(m, title=f"Battles between model A and model B{suffix}", path=path, fmt=fmt)
    title = ("Predicted win rate of model A over model B" if kind == "predicted" else "Observed win rate of model A over model B (ties excluded)") + suffix
    return plots.win_rate_heatmap(m, title=title, path=path, fmt=fmt)


def write_outputs(lb: Leaderboard, out_dir: str | Path, stem: str = "leaderboard") -> dict[str, Path]:
    """Write into ``out_dir``: <stem>.csv, <stem>.json, <stem>.html; the CI whisker plot of every
    model <stem>_ci.png (with intervals); the predicted and observed win-rate heatmaps and the
    battle-count matrix as PNG and interactive HTML (<stem>_predicted.png/.html,
    <stem>_observed.*, <stem>_counts.*); <stem>_coefficients.csv and
    <stem>_coefficients.png (style control: coefficients with their intervals).

    Returns: {kind: path} of the files written.
    """
    from openarena.analysis import plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / f"{stem}.csv",
        "json": out / f"{stem}.json",
        "html": out / f"{stem}.html",
    }
    from openarena.analysis.plots import whisker_plot  # matplotlib: only when a plot is written

    png = whisker_plot(lb.table, title=_plot_title(lb), top=None) if lb.intervals is not None else None
    paths["csv"].write_text(to_csv(lb))
    paths["json"].write_text(to_json(lb))
    paths["html"].write_text(to_html(lb, png=png))
    if png is not None:
        paths["plot"] = out / f"{stem}_ci.png"
        paths["plot"].write_bytes(png)
    for kind, m in matrices(lb).items():
        paths[f"{kind} heatmap"] = out / f"{stem}_{kind}.png"
        figure(lb, kind, path=paths[f"{kind} heatmap"])
        paths[f"{kind} heatmap (interactive)"] = out / f"{stem}_{kind}.html"
        title = {"predicted": "Predicted win rate of model A over model B", "observed": "Observed win rate of model A over model B (ties excluded)",
                 "counts": "Battles between model A and model B"}[kind]
        if lb.category:
            title += f" (category {lb.category})"
        plots.interactive_heatmap(m, title, paths[f"{kind} heatmap (interactive)"], counts=(kind == "counts"))
    if lb.coefficients is not None:
        paths["coefficients"] = out / f"{stem}_coefficients.csv"
        lb.coefficients.to_csv(paths["coefficients"], index=False, float_format="%.10g")
        paths["coefficients plot"] = out / f"{stem}_coefficients.png"
        plots.coefficient_plot(lb.coefficients, level=lb.level, path=paths["coefficients plot"])
    return paths
