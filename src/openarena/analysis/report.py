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

import numpy as np
import pandas as pd

from openarena.analysis.leaderboard import Leaderboard

FORMATS = ("table", "csv", "json", "markdown", "html")


def _clean(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def to_csv(lb: Leaderboard) -> str:
    """CSV text, full float precision."""
    return lb.table.to_csv(index=False, float_format="%.10g")


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
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ""
    return f"+{hi - r:.1f}/-{r - lo:.1f}"


def display_frame(lb: Leaderboard) -> pd.DataFrame:
    """The human view: Rank (UB), Model, Arena Score, 95% CI, Votes, as strings."""
    pct = f"{lb.level * 100:g}% CI"
    t = lb.table
    return pd.DataFrame(
        {
            "Rank (UB)": t["rank_ub"].astype(str),
            "Model": t["model"],
            "Arena Score": t["rating"].map(lambda v: f"{v:.1f}"),
            pct: t.apply(_fmt_ci, axis=1),
            "Votes": t["num_battles"].map(lambda v: f"{v:,.0f}"),
        }
    )


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

        png = png or whisker_plot(lb.table, fmt="png")
        figure = f'<figure><img alt="ratings with confidence intervals" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'
    prov = html.escape(json.dumps(lb.provenance, indent=2, default=_clean))
    opts = lb.provenance.get("options", {})
    subtitle = (
        f"{lb.provenance.get('n_battles', 0):,.0f} votes, {lb.provenance.get('n_models', 0)} models; "
        f"{'Bradley-Terry' if lb.rating_system == 'bt' else 'online Elo'}, ties: {lb.ties}, "
        f"intervals: {lb.ci}, anchor: {opts.get('anchor', '')}"
    )
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


def write_outputs(lb: Leaderboard, out_dir: str | Path, stem: str = "leaderboard") -> dict[str, Path]:
    """Write <stem>.csv, <stem>.json, <stem>.html, <stem>_ci.png (with intervals) and
    <stem>_coefficients.csv (style control) into ``out_dir``.

    Returns: {kind: path} of the files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / f"{stem}.csv",
        "json": out / f"{stem}.json",
        "html": out / f"{stem}.html",
    }
    from openarena.analysis.plots import whisker_plot  # matplotlib: only when a plot is written

    png = whisker_plot(lb.table) if lb.intervals is not None else None
    paths["csv"].write_text(to_csv(lb))
    paths["json"].write_text(to_json(lb))
    paths["html"].write_text(to_html(lb, png=png))
    if png is not None:
        paths["plot"] = out / f"{stem}_ci.png"
        paths["plot"].write_bytes(png)
    if lb.coefficients is not None:
        paths["coefficients"] = out / f"{stem}_coefficients.csv"
        lb.coefficients.to_csv(paths["coefficients"], index=False, float_format="%.10g")
    return paths
