"""The cost-vs-score Pareto frontier, and price as a covariate of the contextual fit.

Blended price = (w_in * input + w_out * output) / (w_in + w_out) USD per million tokens, with
input:output weights 3:1 by default (Artificial Analysis' and LMArena's convention). A model is
on the frontier when no other model is at least as good for no more money (price <= and
rating >=, one of them strictly). A model that is not, but whose interval reaches the frontier
at its price (its upper bound >= the best rating available at its price or less), is "possibly
on the frontier": the data cannot tell it apart from the frontier.

Readers: our leaderboard CSV/JSON, the arena's ``leaderboard-text.json`` (one category, 'full'
by default), price tables as the arena publishes them (``pricing_table.json`` /
``pricing_table.csv`` / ``scatterplot-data.json`` / FastChat ``pricing_data.json``), litellm's
``model_prices_and_context_window`` (USD per token, provider/model keys), or any CSV with
model, input_price, output_price (or price).

Source: LMArena, "Chatbot Arena price analysis" / price control blog (Dec 2024) and the
arena-catalog scatter plot; Pareto (1906).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from openarena.errors import DataError

COLUMNS = ["model", "rating", "price", "on_frontier"]
FRONTIER, POSSIBLY, DOMINATED = "frontier", "possibly on the frontier", "dominated"


def parse_weights(spec: str) -> tuple[float, float]:
    """'3:1' -> (3.0, 1.0). Raises DataError (field price_weights)."""
    try:
        a, b = (float(x) for x in spec.split(":"))
    except ValueError:
        raise DataError(f"cannot read price weights {spec!r}", field="price_weights", expected="INPUT:OUTPUT, e.g. 3:1") from None
    if a < 0 or b < 0 or a + b <= 0 or not np.isfinite(a + b):
        raise DataError(f"price weights {spec!r}", field="price_weights", expected="two non-negative numbers, not both zero")
    return a, b


def _num(value, path, row, field) -> float:
    if isinstance(value, str) and value.strip().lower() in ("null", "none", "nan", "n/a", ""):
        return float("nan")  # arena-catalog's JSON tables write an unknown price as the string "null"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DataError(f"price {value!r} is not a number", str(path), row=row, field=field, expected="USD per million tokens") from None
    if not np.isfinite(v) or v < 0:
        raise DataError(f"price {value!r} is negative or not finite", str(path), row=row, field=field, expected="USD per million tokens >= 0")
    return v


def read_prices(path: str | Path) -> pd.DataFrame:
    """Per-model prices: DataFrame model, input_price, output_price (USD / 1M tokens), source.

    Entries with a missing (null / empty) price are skipped; a malformed one is an error.
    Raises: DataError naming the file, row and field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DataError(f"cannot read: {err.strerror}", str(path)) from None
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text file", str(path), expected="a price table (CSV or JSON)") from None
    rows: list[tuple[str, float, float]] = []
    later: list[tuple[str, float, float]] = []  # litellm provider/model keys: after the plain ones
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON ({err.msg}, line {err.lineno})", str(path)) from None
        if not isinstance(doc, (dict, list)):
            raise DataError(f"a JSON {type(doc).__name__} at the top", str(path), expected="a JSON object or list of per-model prices")
        items = list(doc.items()) if isinstance(doc, dict) else [(None, d) for d in doc]
        for r, (key, d) in enumerate(items):
            if not isinstance(d, dict):
                continue
            if "input_cost_per_token" in d or "output_cost_per_token" in d:  # litellm, per token
                if d.get("input_cost_per_token") is None or d.get("output_cost_per_token") is None or d.get("mode", "chat") != "chat":
                    continue
                name = str(key).split("/")[-1]
                (rows if "/" not in str(key) else later).append((name, _num(d["input_cost_per_token"], path, r, "input_cost_per_token") * 1e6, _num(d["output_cost_per_token"], path, r, "output_cost_per_token") * 1e6))
                continue
            name = d.get("model_key") or d.get("model_api_name") or d.get("model") or key
            ip, op = d.get("input_token_price"), d.get("output_token_price")
            if name is None or ip in (None, "", "null") or op in (None, "", "null"):  # arena-catalog writes unknown prices as "null"
                continue
            rows.append((str(name), _num(ip, path, r, "input_token_price"), _num(op, path, r, "output_token_price")))
    else:
        try:
            frame = pd.read_csv(io.StringIO(text))
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
            raise DataError(f"not a readable CSV table ({str(err).splitlines()[0][:120]})", str(path), expected="a CSV price table with a header") from None
        low = {c.lower(): c for c in frame.columns}
        mcol = low.get("model_key") or low.get("model")
        icol = low.get("input_token_price") or low.get("input_price")
        ocol = low.get("output_token_price") or low.get("output_price")
        pcol = low.get("price")
        if mcol is None or not ((icol and ocol) or pcol):
            raise DataError("missing columns", str(path), field="header", expected="model (or model_key) and input_price, output_price (or price)")
        for r, row in enumerate(frame.itertuples(index=False)):
            d = row._asdict()
            if pcol:
                if pd.isna(d[pcol]):
                    continue
                p = _num(d[pcol], path, r, pcol)
                rows.append((str(d[mcol]), p, p))
            else:
                if pd.isna(d[icol]) or pd.isna(d[ocol]):
                    continue
                rows.append((str(d[mcol]), _num(d[icol], path, r, icol), _num(d[ocol], path, r, ocol)))
    rows += later
    if not rows:
        raise DataError("no prices found", str(path), expected="a price table (arena pricing_table / scatterplot-data / litellm JSON, or CSV model,input_price,output_price)")
    out = pd.DataFrame(rows, columns=["model", "input_price", "output_price"]).drop_duplicates("model", keep="first")
    out["source"] = path.name
    return out.reset_index(drop=True)


def read_ratings(path: str | Path, category: str = "full") -> pd.DataFrame:
    """Ratings with intervals: DataFrame model, rating, rating_q025, rating_q975.

    Reads our leaderboard CSV / JSON ({"leaderboard": [...]}) or the arena's
    ``leaderboard-text.json`` ({category: {model: {rating, rating_q025, rating_q975}}}).
    Raises: DataError naming the file and the missing field or category.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and "leaderboard" in doc:
                frame = pd.DataFrame(doc["leaderboard"])
            elif isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()):
                if category not in doc:
                    raise DataError(f"no category {category!r}", str(path), field="category", expected="one of " + ", ".join(list(doc)[:8]))
                frame = pd.DataFrame.from_dict(doc[category], orient="index").rename_axis("model").reset_index()
            else:
                raise DataError("unknown JSON layout", str(path), expected="our leaderboard JSON or the arena's leaderboard-text.json")
        else:
            frame = pd.read_csv(path)
    except OSError as err:
        raise DataError(f"cannot read: {err.strerror}", str(path)) from None
    except (json.JSONDecodeError, pd.errors.ParserError) as err:
        raise DataError(f"cannot parse ({err})", str(path)) from None
    for col in ("model", "rating"):
        if col not in frame.columns:
            raise DataError(f"no column {col!r}", str(path), field=col, expected="model, rating[, rating_q025, rating_q975]")
    for col in ("rating_q025", "rating_q975"):
        if col not in frame.columns:
            frame[col] = frame["rating"]
    frame = frame[["model", "rating", "rating_q025", "rating_q975"]].copy()
    frame["model"] = frame["model"].astype(str)
    for col in ("rating", "rating_q025", "rating_q975"):
        vals = pd.to_numeric(frame[col], errors="coerce")
        bad = vals.isna()
        if bad.any():
            r = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{col} {frame[col].iloc[r]!r} is not a number", str(path), row=r, field=col, expected="a rating in points")
        frame[col] = vals.astype(float)
    return frame


def pareto_frontier(price: np.ndarray, rating: np.ndarray, upper: np.ndarray | None = None) -> np.ndarray:
    """Status of each model: 'frontier', 'possibly on the frontier' or 'dominated'.

    Parameters: price, rating (n,); upper (n,), the upper interval bounds (default = rating).
    Returns: object array (n,).
    """
    price = np.asarray(price, dtype=float)
    rating = np.asarray(rating, dtype=float)
    upper = rating if upper is None else np.asarray(upper, dtype=float)
    n = len(price)
    le_p = price[None, :] <= price[:, None]  # [i, j]: j costs no more than i
    ge_r = rating[None, :] >= rating[:, None]
    strict = (price[None, :] < price[:, None]) | (rating[None, :] > rating[:, None])
    dominated = (le_p & ge_r & strict).any(axis=1)
    best_at_price = np.where(le_p, rating[None, :], -np.inf).max(axis=1)
    out = np.full(n, DOMINATED, dtype=object)
    out[~dominated] = FRONTIER
    out[dominated & (upper >= best_at_price)] = POSSIBLY
    return out


@dataclass(frozen=True)
class Frontier:
    """``table``: model, rating, price, on_frontier (bool), status, rating_q025, rating_q975,
    input_price, output_price, sorted by price; ``unpriced``: models without a price;
    ``weights``: (input, output)."""

    table: pd.DataFrame
    unpriced: list[str]
    weights: tuple[float, float]


def build_frontier(ratings: pd.DataFrame, prices: pd.DataFrame | list[pd.DataFrame], weights: tuple[float, float] = (3.0, 1.0)) -> Frontier:
    """Join ratings and prices (the first price table that has a model wins) and mark the
    frontier. Free models (price 0) are kept; the log axis of the plots puts them at $0.01.
    Raises: DataError when fewer than two models have a price."""
    tables = prices if isinstance(prices, list) else [prices]
    p = pd.concat(tables, ignore_index=True).drop_duplicates("model", keep="first")
    t = ratings.merge(p, on="model", how="left")
    unpriced = t.loc[t["input_price"].isna(), "model"].tolist()
    t = t.dropna(subset=["input_price"]).copy()
    if len(t) < 2:
        raise DataError(f"only {len(t)} model(s) of the leaderboard have a price", expected="price tables whose model keys match the leaderboard's (see prices)")
    wi, wo = weights
    t["price"] = (wi * t["input_price"] + wo * t["output_price"]) / (wi + wo)
    t["status"] = pareto_frontier(t["price"].to_numpy(), t["rating"].to_numpy(), t["rating_q975"].to_numpy())
    t["on_frontier"] = t["status"] == FRONTIER
    t = t.sort_values(["price", "rating"], ascending=[True, False], ignore_index=True)
    cols = COLUMNS + ["status", "rating_q025", "rating_q975", "input_price", "output_price"]
    return Frontier(t[cols], unpriced, weights)


def frontier_png(fr: Frontier, path: str | Path | None = None, title: str = "Arena score vs price") -> bytes:
    """Matplotlib PNG: log price axis, error bars, frontier as a step line; returns bytes."""
    import matplotlib.pyplot as plt

    from openarena.analysis.plots import finish_figure  # selects the Agg backend

    t = fr.table
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=100)
    colors = {FRONTIER: "#c0392b", POSSIBLY: "#e67e22", DOMINATED: "#7f8c8d"}
    for status, g in t.groupby("status"):
        gx = np.maximum(g["price"].to_numpy(), 0.01)
        ax.errorbar(gx, g["rating"], yerr=[g["rating"] - g["rating_q025"], g["rating_q975"] - g["rating"]], fmt="o", ms=4, color=colors[status], alpha=0.85, label=status, capsize=2, lw=1)
    f = t[t["on_frontier"]]
    ax.step(np.maximum(f["price"], 0.01), f["rating"], where="post", color=colors[FRONTIER], lw=1.5)
    for _, r in t[t["on_frontier"]].iterrows():
        ax.annotate(r["model"], (max(r["price"], 0.01), r["rating"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    wi, wo = fr.weights
    ax.set_xlabel(f"blended price, USD per million tokens (input:output {wi:g}:{wo:g}, log scale)")
    ax.set_ylabel("arena score")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    return finish_figure(fig, path)


def frontier_html(fr: Frontier, title: str = "Arena score vs price") -> str:
    """Interactive, self-contained plotly HTML page (plotly.js embedded, works offline)."""
    import plotly.graph_objects as go

    t = fr.table
    fig = go.Figure()
    colors = {FRONTIER: "#c0392b", POSSIBLY: "#e67e22", DOMINATED: "#7f8c8d"}
    for status in (FRONTIER, POSSIBLY, DOMINATED):
        g = t[t["status"] == status]
        if g.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=np.maximum(g["price"], 0.01), y=g["rating"], mode="markers", name=status, marker={"color": colors[status], "size": 8},
                error_y={"type": "data", "symmetric": False, "array": g["rating_q975"] - g["rating"], "arrayminus": g["rating"] - g["rating_q025"], "thickness": 1},
                text=g["model"], customdata=np.column_stack([g["input_price"], g["output_price"]]),
                hovertemplate="%{text}<br>score %{y:.1f}<br>blended $%{x:.3g}/M (in $%{customdata[0]:.3g}, out $%{customdata[1]:.3g})<extra></extra>",
            )
        )
    f = t[t["on_frontier"]]
    fig.add_trace(go.Scatter(x=np.maximum(f["price"], 0.01), y=f["rating"], mode="lines", line={"shape": "hv", "color": colors[FRONTIER]}, name="Pareto frontier", hoverinfo="skip"))
    wi, wo = fr.weights
    fig.update_layout(title=title, xaxis={"type": "log", "title": f"blended price, USD per million tokens (input:output {wi:g}:{wo:g})"}, yaxis={"title": "arena score"}, template="plotly_white", height=700)
    return fig.to_html(include_plotlyjs=True, full_html=True)


def frontier_over_time(history: pd.DataFrame, prices: pd.DataFrame, weights: tuple[float, float] = (3.0, 1.0)) -> pd.DataFrame:
    """The frontier at each date of a leaderboard history (model, rating, date columns), with
    today's prices: DataFrame date, model, rating, price of the frontier models (the
    "intelligence per dollar" chart)."""
    out = []
    for date, g in history.groupby("date"):
        g = g.assign(rating_q025=g["rating"], rating_q975=g["rating"])[["model", "rating", "rating_q025", "rating_q975"]]
        try:
            fr = build_frontier(g, prices, weights)
        except DataError:
            continue
        f = fr.table[fr.table["on_frontier"]]
        out.append(f[["model", "rating", "price"]].assign(date=date))
    if not out:
        return pd.DataFrame(columns=["date", "model", "rating", "price"])
    return pd.concat(out, ignore_index=True)[["date", "model", "rating", "price"]]


def price_control(data, prices: pd.DataFrame, *, weights: tuple[float, float] = (3.0, 1.0), prior: float = 1.0, level: float = 0.95):
    """Leaderboard controlled for log10(blended price) as a per-model covariate of the
    contextual Bradley-Terry fit (the published "price control").

    Parameters: data, battle rows (the models without a price are left out); prices, from
    :func:`read_prices`; prior, L2 penalty on the model strengths (needed: a per-model
    covariate is collinear with the model identities, so only the prior identifies it).
    Returns: (controlled Leaderboard, plain Leaderboard on the same models and prior, excluded
    models). The coefficient is in ``lb.coefficients``
    (logits per root-mean-square difference of log10 price).
    """
    from openarena.analysis.leaderboard import build_leaderboard
    from openarena.data.filters import filter_exclude

    wi, wo = weights
    p = prices.drop_duplicates("model").set_index("model")
    blended = (wi * p["input_price"] + wo * p["output_price"]) / (wi + wo)
    models = set(data.models) if hasattr(data, "models") else set()
    excluded = sorted(m for m in models if m not in blended.index or not blended[m] > 0)
    if excluded:
        data = filter_exclude(data, excluded)
    values = {"log_price": {m: float(np.log10(blended[m])) for m in data.models}}
    lb = build_leaderboard(data, model_values=values, prior=prior, level=level)
    plain = build_leaderboard(data, prior=prior, level=level)
    return lb, plain, excluded


def read_model_values(path: str | Path, column: str, *, log: bool = False) -> dict[str, float]:
    """{model: value} of one per-model column (latency, parameter count, price, ...) of a CSV
    with a ``model`` (or ``key``) column; log=True takes log10 (values must be > 0).
    Rows with an empty value are skipped. Raises: DataError naming the file, row and field."""
    path = Path(path)
    try:
        t = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as err:
        raise DataError(f"cannot read ({err})", str(path)) from None
    low = {c.lower(): c for c in t.columns}
    mcol = low.get("model") or low.get("key") or low.get("model_key")
    if mcol is None or column not in t.columns:
        raise DataError(f"no column {'model' if mcol is None else column!r}", str(path), field="header", expected=f"model and {column}")
    out = {}
    for r, (m, v) in enumerate(zip(t[mcol].astype(str), t[column])):
        if pd.isna(v):
            continue
        x = _num(v, path, r, column)
        if log:
            if x <= 0:
                raise DataError(f"{column} {v!r} cannot be logged", str(path), row=r, field=column, expected="a value > 0 with log=True")
            x = float(np.log10(x))
        out[m] = x
    if not out:
        raise DataError(f"no values in column {column!r}", str(path), field=column)
    return out


def covariate_control(data, values: dict[str, float], name: str, *, prior: float = 1.0, level: float = 0.95):
    """Leaderboard controlled for one per-model covariate (see :func:`price_control`); models
    without a value are left out. Returns (controlled, plain, excluded)."""
    from openarena.analysis.leaderboard import build_leaderboard
    from openarena.data.filters import filter_exclude

    excluded = sorted(m for m in data.models if m not in values)
    if excluded:
        data = filter_exclude(data, excluded)
    lb = build_leaderboard(data, model_values={name: {m: values[m] for m in data.models}}, prior=prior, level=level)
    plain = build_leaderboard(data, prior=prior, level=level)
    return lb, plain, excluded
