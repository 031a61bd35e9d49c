"""The Trust page's payload: the trust analyses of the arena's counted anonymous votes
(:func:`openarena.api.trust_report`: provider vote shares, provisional scores, drift alarms,
the cost-vs-score Pareto frontier, simultaneous rank intervals), recomputed with the
leaderboard (:meth:`openarena.serving.leaderboard_cache.LeaderboardCache.refresh`, off the
event loop, in the leaderboard's process) and turned into plain JSON for the template and
``/trust.json``.

Nothing here computes a statistic: it reads the report and lays it out (table rows, the
plot's coordinates, plain words for what is missing). Organisations and prices come from the
model registry (``organization``, ``price.input_per_million`` / ``output_per_million``).
A visitor never sees an exception, a flag or a path: every failure becomes one of the
sentences below (the details go to the server log).
"""

from __future__ import annotations

import logging
import math
from typing import Any

log = logging.getLogger("openarena.serving")

__all__ = ["MESSAGES", "compute_trust", "trust_options", "trust_payload"]

#: plain words for a part the data cannot support (reason codes of
#: :class:`openarena.analysis.trust.report.TrustReport`), and for a whole report that failed
MESSAGES = {
    "no_timestamps": "Drift cannot be checked: these votes carry no times.",
    "not_enough_data": "Not enough data yet to check for drift: a model needs at least {min_votes} votes in each of two {window} windows.",
    "no_prices": "No prices are configured for the arena's models, so there is no cost-versus-score plot. The operator can add prices to the model registry.",
    "few_prices": "Fewer than two rated models have a price, so there is no cost-versus-score plot yet.",
    "no_intervals": "Rank intervals are not available for this board.",
    "not_enough_votes": "Not enough votes yet to rate the models against each other; the trust figures appear once the leaderboard does.",
    "failed": "The trust figures could not be computed this time; they will be retried at the next refresh.",
}
DRIFT_MIN_VOTES = 50
PLOT = {"width": 640, "height": 380, "left": 56, "right": 28, "top": 16, "bottom": 44}
WINDOW_WORDS = {"d": "day", "h": "hour", "w": "week", "m": "minute", "s": "second"}


def trust_options(registry, *, window: str = "7d", provisional_votes: int = 2000) -> dict[str, Any]:
    """What the refresh needs to know besides the votes (plain data, sent to the leaderboard
    process): organisations and prices from the registry, the drift window, N of provisional.
    Raises: DataError for a window that cannot be read or N < 1 (at start-up, not at a refresh)."""
    from openarena.analysis.trust.drift import parse_window
    from openarena.errors import DataError

    parse_window(window)
    if int(provisional_votes) < 1:
        raise DataError(f"provisional_votes {provisional_votes}", field="provisional_votes", expected="a number of votes >= 1, e.g. 2000")
    orgs = {m.name: m.organization for m in registry if getattr(m, "organization", None)}
    prices = [(m.name, float(m.price.input_per_million), float(m.price.output_per_million)) for m in registry if getattr(m, "price", None) is not None]
    return {"organizations": orgs, "prices": prices, "window": window, "provisional_votes": int(provisional_votes)}


def compute_trust(votes, options: dict[str, Any]) -> dict[str, Any]:
    """The payload (see :func:`trust_payload`) of ``votes`` (the counted anonymous votes, a
    BattleTable), or ``{"error": plain sentence}`` when the board cannot be fitted yet or the
    analyses fail (logged)."""
    import pandas as pd

    from openarena import api
    from openarena.errors import OpenArenaError

    prices = pd.DataFrame(options.get("prices") or [], columns=["model", "input_price", "output_price"])
    try:
        report = api.trust_report(
            votes, organizations=options.get("organizations") or {}, prices=prices if len(prices) else None,
            window=options.get("window", "7d"), provisional_votes=options.get("provisional_votes"),
        )
    except OpenArenaError as e:
        log.info("trust page: %s", e)
        return {"error": MESSAGES["not_enough_votes"]}
    except Exception:  # noqa: BLE001 - a bug: logged with its traceback, the page stays up
        log.exception("trust page failed")
        return {"error": MESSAGES["failed"]}
    return trust_payload(report)


def _window_words(spec: str) -> str:
    s = spec.strip().lower()
    unit = WINDOW_WORDS.get(s[-1], "day") if s else "day"
    num = s[:-1] if s and s[-1] in WINDOW_WORDS else s
    return f"{num}-{unit}"


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def trust_payload(report) -> dict[str, Any]:
    """A :class:`~openarena.analysis.trust.report.TrustReport` as plain JSON types:

    ``n_votes``; ``providers`` [{provider, models, battles, share}] (share of all votes in
    which a model of the provider took part); ``provisional`` {threshold, models: [{model,
    votes, since (ISO date or None), provisional}]}; ``drift`` {window, alpha, tested,
    alarms: [{model, delta, se, p_adjusted}]} or None; ``frontier`` {weights, points: [{model,
    rating, lower, upper, price, status}], unpriced, plot} or None (``plot``: SVG coordinates,
    see :func:`_plot`); ``ranks`` {level, rows: [{model, rating, rank_lower, rank_upper}]} or
    None; ``missing`` {part: plain sentence}.
    """
    missing = {}
    for part, code in report.missing.items():
        missing[part] = MESSAGES[code].format(min_votes=DRIFT_MIN_VOTES, window=_window_words(report.window))
    prov = report.providers.providers
    providers = [
        {"provider": str(r.provider), "models": int(r.models), "battles": int(round(float(r.battles))), "share": float(r.vote_share)}
        for r in prov.itertuples(index=False)
    ]
    provisional = {
        "threshold": int(report.provisional_votes),
        "models": [
            {"model": str(r.model), "votes": int(round(float(r.votes))), "since": (r.since.strftime("%Y-%m-%d") if r.since is not None and r.since == r.since else None),
             "provisional": bool(r.provisional)}
            for r in report.provisional.itertuples(index=False)
        ],
    }
    drift = None
    if report.drift is not None:
        t = report.drift.table
        tested = t[t["delta"].notna()]
        alarms = tested[tested["drifted"]]
        drift = {
            "window": _window_words(report.window), "alpha": float(report.alpha), "windows": len(report.drift.windows), "tested": int(len(tested)),
            "alarms": [{"model": str(r.model), "delta": float(r.delta), "se": float(r.se), "p_adjusted": float(r.p_adjusted)} for r in alarms.itertuples(index=False)],
        }
    frontier = None
    if report.frontier is not None:
        fr = report.frontier
        points = [
            {"model": str(r.model), "rating": float(r.rating), "lower": float(r.rating_q025), "upper": float(r.rating_q975), "price": float(r.price), "status": str(r.status)}
            for r in fr.table.itertuples(index=False)
        ]
        wi, wo = fr.weights
        frontier = {"weights": f"{wi:g}:{wo:g}", "points": points, "unpriced": list(fr.unpriced), "plot": _plot(points)}
    ranks = None
    if report.ranks is not None:
        ranks = {
            "level": float(report.rank_level),
            "rows": [{"model": str(r.model), "rating": float(r.rating), "rank_lower": int(r.rank_lower), "rank_upper": int(r.rank_upper)}
                     for r in report.ranks.itertuples(index=False)],
        }
    return {"n_votes": int(report.n_votes), "providers": providers, "provisional": provisional, "drift": drift,
            "frontier": frontier, "ranks": ranks, "missing": missing}


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _plot(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Coordinates of the cost-vs-score plot for an inline SVG (viewBox ``width`` x
    ``height``): log10 blended price across (a free model at $0.01), arena score up, each
    model a dot with its confidence interval, the frontier a step line. Returns {width,
    height, box: {x0, x1, y0, y1}, xticks, yticks: [{pos, label}], dots: [{x, y, y_lo, y_hi,
    status, model, label?}], frontier: SVG path data}."""
    W, H = PLOT["width"], PLOT["height"]
    x0, x1, y0, y1 = PLOT["left"], W - PLOT["right"], PLOT["top"], H - PLOT["bottom"]
    lx = [math.log10(max(p["price"], 0.01)) for p in points]
    lo = min(min(p["lower"], p["rating"]) for p in points)
    hi = max(max(p["upper"], p["rating"]) for p in points)
    xmin, xmax = math.floor(min(lx)), math.ceil(max(lx))
    if xmax - xmin < 1:
        xmax = xmin + 1
    pad = max((hi - lo) * 0.08, 5.0)
    step = _nice_step(hi - lo + 2 * pad)
    ymin, ymax = math.floor((lo - pad) / step) * step, math.ceil((hi + pad) / step) * step

    def X(v: float) -> float:
        return round(x0 + (v - xmin) / (xmax - xmin) * (x1 - x0), 1)

    def Y(v: float) -> float:
        return round(y1 - (v - ymin) / (ymax - ymin) * (y1 - y0), 1)

    xticks = [{"pos": X(e), "label": f"${10.0 ** e:g}"} for e in range(xmin, xmax + 1)]
    yticks = []
    v = ymin
    while v <= ymax + 1e-9:
        yticks.append({"pos": Y(v), "label": f"{v:g}"})
        v += step
    dots = []
    for p, x in zip(points, lx):
        d = {"x": X(x), "y": Y(p["rating"]), "y_lo": Y(p["lower"]), "y_hi": Y(p["upper"]), "status": p["status"].replace(" ", "-"), "model": p["model"]}
        if p["status"] == "frontier":
            d["label"] = p["model"]
            d["anchor"] = "end" if d["x"] > (x0 + x1) / 2 else "start"
        dots.append(d)
    front = sorted(((X(x), Y(p["rating"])) for p, x in zip(points, lx) if p["status"] == "frontier"))
    path = ""
    if front:
        path = f"M{front[0][0]},{front[0][1]}" + "".join(f" H{fx} V{fy}" for fx, fy in front[1:])
    return {"width": W, "height": H, "box": {"x0": x0, "x1": x1, "y0": y0, "y1": y1}, "xticks": xticks, "yticks": yticks, "dots": dots, "frontier": path}
