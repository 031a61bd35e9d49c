"""Drift: did a model's endpoint change? Time-varying strengths fitted jointly, and the expected
variation of a published cumulative board.

Windowed test (timestamped votes). For each model m in turn, its votes are split by time window
into pseudo-models m@0, m@1, ..., while every other model keeps one strength over the whole
period and serves as the reference (a time-varying coefficient for m; not separate
leaderboards, whose scales would not be comparable). One Bradley-Terry fit per model, on pair
counts. A second pass refits with the models flagged by the first split by window as well, so
that a model that did change does not move the reference of the others (at most M - 2 flagged
models, the most significant first, so that every test keeps a reference). The change delta = theta(m@last) - theta(m@first) in Elo points has a sandwich standard
error; the p-value is the Wald test that all of m's window strengths are equal (chi-square
with W - 1 df; the two-sided z-test of delta when there are two windows). p-values are adjusted
across models by Holm (family-wise error, the default) or Benjamini-Hochberg (false discovery
rate).

Cumulative board (published history). A snapshot at time t rates a model on all its votes so
far. Between snapshots with n1 and n2 >= n1 votes of an unchanged model, the rating moves by
noise with standard deviation s1 * sqrt(1 - n1 / n2) (s1 = the first snapshot's standard error:
the later estimate shares the first n1 votes). A change of strength after n1 votes moves a
cumulative rating by only (n2 - n1) / n2 of the change: the cumulative board dilutes it, which
is why the windowed test is the one that sees it.

Source: White (1982) sandwich; Holm (1979); Benjamini & Hochberg (1995); Chiang et al. (2024)
on cumulative leaderboards; LMArena's discussion of "nerfed" endpoints ("a closed-form number").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from openarena.data.battles import BattleTable, PairCounts
from openarena.data.schema import factorize_models, winner_codes
from openarena.errors import DataError
from openarena.ratings.bradley_terry import fit_bradley_terry
from openarena.ratings.scale import POINTS_PER_LOGIT

COLUMNS = ["model", "delta", "se", "p_value", "p_adjusted", "drifted"]
ADJUSTMENTS = ("holm", "bh")


@dataclass(frozen=True)
class DriftResult:
    """Result of :func:`drift_test`: ``table`` (:data:`COLUMNS`, sorted by p_value, then
    ``n_windows`` and ``votes_first``, ``votes_last``), ``path`` (model, window, start, rating,
    se, votes: each model's rating per window in points relative to the mean of the other
    models, + 1000), ``windows`` (window starts as UTC timestamps), alpha, adjustment."""

    table: pd.DataFrame
    path: pd.DataFrame
    windows: list
    alpha: float
    adjustment: str


def parse_window(spec: str) -> float:
    """'7d', '12h', '2w', '3600s' -> seconds. Raises DataError (field window)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    s = spec.strip().lower()
    try:
        value = float(s[:-1]) if s[-1] in units else float(s)
        unit = units.get(s[-1], 86400)
    except (ValueError, IndexError):
        raise DataError(f"cannot read window {spec!r}", field="window", expected="a length like 7d, 12h or 2w") from None
    if not value > 0:
        raise DataError(f"window {spec!r} is not positive", field="window", expected="a length like 7d")
    return value * unit


def _timestamp(value: str, field: str) -> float:
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(f"cannot read date {value!r}", field=field, expected="an ISO date, e.g. 2024-06-01") from None
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return t.timestamp()


def window_index(tstamp: np.ndarray, *, window: str | None = None, split: str | None = None) -> tuple[np.ndarray, list[float]]:
    """Window number of each vote (int64 (n,)) and the window starts (Unix seconds).

    Exactly one of ``window`` (fixed-length windows from the first vote) or ``split`` (one or
    more comma-separated dates: before / after each) is used; default: split at the median time.
    """
    t = np.asarray(tstamp, dtype=float)
    if split:
        cuts = sorted(_timestamp(s.strip(), "split") for s in split.split(",") if s.strip())
        return np.searchsorted(np.asarray(cuts), t, side="right").astype(np.int64), [float(t.min())] + cuts
    if window:
        w = parse_window(window)
        t0 = float(t.min())
        idx = np.floor((t - t0) / w).astype(np.int64)
        return idx, [t0 + k * w for k in range(int(idx.max()) + 1)]
    med = float(np.median(t))
    return (t >= med).astype(np.int64), [float(t.min()), med]


def adjust_pvalues(p: np.ndarray, method: str = "holm") -> np.ndarray:
    """Holm (step-down, family-wise) or Benjamini-Hochberg (step-up, FDR) adjusted p-values.

    Source: Holm (1979); Benjamini & Hochberg (1995). NaN stays NaN.
    """
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    m = len(q)
    if m == 0:
        return out
    order = np.argsort(q)
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
    elif method == "bh":
        adj = np.minimum.accumulate((m / np.arange(m, 0, -1) * q[order][::-1]))[::-1]
    else:
        raise ValueError(f"unknown adjustment {method!r}; expected holm or bh")
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def _split_counts(a, b, w, win, split: list[int], n: int, n_win: int) -> tuple[PairCounts, np.ndarray]:
    """Pair counts with each model of ``split`` replaced by pseudo-models, one per window
    (index n + position * n_win + window); the other models are unchanged. Returns the counts
    and, for each of their models, its index in that numbering."""
    a2, b2 = a.copy(), b.copy()
    for pos, m in enumerate(split):
        a2 = np.where(a == m, n + pos * n_win + win, a2)
        b2 = np.where(b == m, n + pos * n_win + win, b2)
    lo, hi = np.minimum(a2, b2), np.maximum(a2, b2)
    swap = a2 > b2
    ww = np.where(swap & (w < 2), 1 - w, w)
    N = n + len(split) * n_win
    key = lo * N + hi
    uniq, inv = np.unique(key, return_inverse=True)
    flat = np.bincount(inv * 4 + ww, minlength=len(uniq) * 4).astype(float)
    present = np.unique(np.concatenate([lo, hi]))
    # re-index to the models present (a pseudo-model of an empty window drops out)
    remap = np.full(N, -1)
    remap[present] = np.arange(len(present))
    pairs = np.column_stack([remap[uniq // N], remap[uniq % N]])
    return PairCounts(tuple(f"#{i}" for i in present), pairs, flat.reshape(-1, 4)), present


def drift_test(
    data: BattleTable,
    *,
    window: str | None = None,
    split: str | None = None,
    alpha: float = 0.05,
    adjustment: str = "holm",
    models: list[str] | None = None,
    min_votes: int = 50,
    refine: bool = True,
    progress=None,
) -> DriftResult:
    """Per-model test of a change of strength over time, with the others as the reference.

    Parameters: data, battle rows with ``tstamp`` (Unix seconds); window ('7d') or split
    ('2024-06-01'; default: at the median vote time); alpha, family level; adjustment, 'holm'
    or 'bh'; models, the models to test (default all); min_votes, a window with fewer votes
    of the model is merged out (the model is not split there; its votes are dropped from the
    test); refine, a second pass in which the models flagged by the first are split by window
    too, so a drifting model does not shift the reference of the others; progress, called
    with 1 per model (first pass).
    Returns: DriftResult. Raises: DataError without a tstamp column or a malformed option.
    """
    if not isinstance(data, BattleTable) or "tstamp" not in data.frame.columns:
        src = getattr(data, "source", "")
        raise DataError("drift needs one row per vote with a timestamp", src, field="tstamp", expected="a tstamp column (Unix seconds)")
    if adjustment not in ADJUSTMENTS:
        raise DataError(f"unknown adjustment {adjustment!r}", field="adjust", expected="holm or bh")
    if not 0 < alpha < 1:
        raise DataError(f"alpha {alpha}", field="alpha", expected="a number between 0 and 1, e.g. 0.05")
    f = data.frame
    t = pd.to_numeric(f["tstamp"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(t).all():
        r = int(np.flatnonzero(~np.isfinite(t))[0])
        raise DataError("tstamp is missing or not a number", data.source, row=r, field="tstamp", expected="Unix seconds")
    (a, b), names = factorize_models(f)
    names = [str(x) for x in names]
    w = winner_codes(f["winner"], data.source).astype(np.int64)
    win, starts = window_index(t, window=window, split=split)
    n, n_win = len(names), len(starts)
    targets = models or names
    for m in targets:
        if m not in names:
            raise DataError(f"model {m!r} is not in the data", data.source, field="models", expected="model keys present in the battles")
    def one_pass(drifting: set[int], report: bool):
        rows, path = [], []
        for name in targets:
            m = names.index(name)
            mine = (a == m) | (b == m)
            votes = np.bincount(win[mine], minlength=n_win)
            good = votes >= min_votes
            keep = ~mine | good[win]
            if progress and report:
                progress(1)
            if good.sum() < 2:
                rows.append((name, np.nan, np.nan, np.nan, int(good.sum()), int(votes[good][0]) if good.any() else 0, 0))
                continue
            split_set = [m] + sorted(drifting - {m})
            counts, present = _split_counts(a[keep], b[keep], w[keep], win[keep], split_set, n, n_win)
            fit = fit_bradley_terry(counts)
            V = fit.covariance(robust=True)
            cols = [int(np.flatnonzero(present == n + k)[0]) for k in np.flatnonzero(good)]
            others = np.flatnonzero(present < n)
            # ratings relative to the mean of the unsplit models (anchor-free contrasts)
            C = np.zeros((len(cols), len(present)))
            for r_, c in enumerate(cols):
                C[r_, c] = 1.0
                C[r_, others] -= 1.0 / len(others)
            est = C @ fit.theta
            cov = C @ V @ C.T
            for r_, k in enumerate(np.flatnonzero(good)):
                path.append((name, int(k), starts[k], 1000 + POINTS_PER_LOGIT * est[r_], POINTS_PER_LOGIT * np.sqrt(max(cov[r_, r_], 0)), int(votes[k])))
            d = est[-1] - est[0]
            var_d = cov[0, 0] + cov[-1, -1] - 2 * cov[0, -1]
            # Wald test of equal window strengths: differences to the first window
            D = np.zeros((len(cols) - 1, len(cols)))
            D[:, 0] = -1.0
            D[np.arange(len(cols) - 1), np.arange(1, len(cols))] = 1.0
            diffs = D @ est
            S = D @ cov @ D.T
            stat = float(diffs @ np.linalg.solve(S, diffs))
            p = float(chi2.sf(stat, len(cols) - 1)) if len(cols) > 2 else float(2 * norm.sf(abs(d) / np.sqrt(var_d)))
            rows.append((name, d * POINTS_PER_LOGIT, np.sqrt(var_d) * POINTS_PER_LOGIT, p, len(cols), int(votes[good][0]), int(votes[good][-1])))
        table = pd.DataFrame(rows, columns=["model", "delta", "se", "p_value", "n_windows", "votes_first", "votes_last"])
        table["p_adjusted"] = adjust_pvalues(table["p_value"].to_numpy(), adjustment)
        table["drifted"] = (table["p_adjusted"] <= alpha).fillna(False).astype(bool)
        return table, path

    table, path = one_pass(set(), True)
    # the most significant flagged models first; at most n - 2 of them, so that every model's
    # test keeps at least one unsplit reference model (else the windows never meet: in a small
    # arena, one model's change moves every other model against the mean of the rest)
    order = table.loc[table["drifted"]].sort_values("p_value")["model"]
    flagged = {names.index(x) for x in list(order)[: max(n - 2, 0)]}
    if flagged and refine:
        # second pass: the models found drifting no longer serve as a fixed reference
        table, path = one_pass(flagged, False)
    table = table[COLUMNS + ["n_windows", "votes_first", "votes_last"]].sort_values(["p_value", "model"], ignore_index=True, na_position="last")
    if len(table) and table["delta"].isna().all():
        raise DataError(f"no model could be compared across windows ({len(starts)} windows): too few votes per window for a fit in at least two of them",
                        field="window", expected="longer windows (or a split date) with enough votes per window")
    path_df = pd.DataFrame(path, columns=["model", "window", "start", "rating", "se", "votes"])
    path_df["start"] = pd.to_datetime(path_df["start"], unit="s", utc=True)
    return DriftResult(table, path_df, [pd.Timestamp(s, unit="s", tz="UTC") for s in starts], alpha, adjustment)


def cumulative_expected_sd(se1: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Standard deviation of the move of an unchanged model between two snapshots of a cumulative
    board: se1 * sqrt(1 - n1 / n2) (n2 >= n1 votes; shapes broadcast). Same unit as se1."""
    se1 = np.asarray(se1, dtype=float)
    frac = np.clip(np.asarray(n1, dtype=float) / np.asarray(n2, dtype=float), 0.0, 1.0)
    return se1 * np.sqrt(1.0 - frac)


def history_moves(history: pd.DataFrame, *, z: float = 3.0) -> pd.DataFrame:
    """Moves between consecutive snapshots of a published cumulative board against the closed-form
    expected variation.

    Parameters: history, one row per (model, date) with columns model, date, rating, votes and
    either se or ci_half (95% half-width, points); z, the flag threshold on |move| / expected sd.
    Returns: DataFrame model, date_from, date_to, rating_from, rating_to, move, votes_from,
    votes_to, expected_sd, z, exceeds — one row per consecutive pair with more votes later.
    """
    h = history.copy()
    if "se" not in h:
        h["se"] = h["ci_half"] / 1.959964
    h = h.sort_values(["model", "date"])
    g = h.groupby("model", sort=False)
    nxt = g.shift(-1)
    ok = nxt["rating"].notna() & (nxt["votes"] > h["votes"])
    out = pd.DataFrame(
        {
            "model": h["model"],
            "date_from": h["date"],
            "date_to": nxt["date"],
            "rating_from": h["rating"],
            "rating_to": nxt["rating"],
            "move": nxt["rating"] - h["rating"],
            "votes_from": h["votes"],
            "votes_to": nxt["votes"],
        }
    )[ok]
    out["expected_sd"] = cumulative_expected_sd(h.loc[ok, "se"], out["votes_from"], out["votes_to"])
    out["z"] = out["move"] / out["expected_sd"]
    out["exceeds"] = out["z"].abs() > z
    return out.reset_index(drop=True)


def read_board_history(path: str) -> pd.DataFrame:
    """Published leaderboard snapshots -> DataFrame model, date, rating, votes, ci_half.

    Reads a folder of fboulnois/llm-leaderboard-csv scrapes (``lmsys_YYYY.MM.DD.csv``: model
    display name, arena_score rounded to integers, ``95_pct_ci`` as '+5/-4', votes), or
    jasontrigg0's ``alltime.csv`` (key, rating, date; no votes or intervals: votes and ci_half
    are NaN). Raises: DataError naming the file, row and field.
    """
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.csv"))
        if not files:
            raise DataError("no CSV snapshots in this folder", str(p), expected="files like lmsys_2024.07.07.csv")
        parts = []
        for f in files:
            try:
                date = pd.Timestamp(f.stem.split("_")[-1].replace(".", "-"))
            except ValueError:
                raise DataError("cannot read the date in the file name", str(f), expected="NAME_YYYY.MM.DD.csv") from None
            t = pd.read_csv(f)
            for col in ("model", "arena_score", "95_pct_ci", "votes"):
                if col not in t.columns:
                    raise DataError(f"no column {col!r}", str(f), field=col, expected="rank, model, arena_score, 95_pct_ci, votes")
            ci = t["95_pct_ci"].astype(str).str.extract(r"\+\s*([\d.]+)\s*/\s*-\s*([\d.]+)").astype(float)
            parts.append(pd.DataFrame({"model": t["model"].astype(str), "date": date, "rating": pd.to_numeric(t["arena_score"], errors="coerce"), "votes": pd.to_numeric(t["votes"].astype(str).str.replace(",", ""), errors="coerce"), "ci_half": ci.mean(axis=1)}))
        h = pd.concat(parts, ignore_index=True)
        return h.dropna(subset=["rating", "votes", "ci_half"]).drop_duplicates(["model", "date"]).reset_index(drop=True)
    try:
        t = pd.read_csv(p)
    except OSError as err:
        raise DataError(f"cannot read: {err.strerror}", str(p)) from None
    for col in ("key", "rating", "date"):
        if col not in t.columns:
            raise DataError(f"no column {col!r}", str(p), field=col, expected="key, rating, date (alltime.csv)")
    return pd.DataFrame({"model": t["key"].astype(str), "date": pd.to_datetime(t["date"].astype(str), format="%Y%m%d"), "rating": t["rating"].astype(float), "votes": np.nan, "ci_half": np.nan})


def board_moves(history: pd.DataFrame, *, z: float = 3.0, rounding: float = 1.0) -> pd.DataFrame:
    """:func:`history_moves` on a published board, relative to the board: the median move of
    all models between the two snapshots (a shift of the anchor or of the whole scale) is
    subtracted, and ratings rounded to ``rounding`` points add 2 * rounding^2 / 12 to the
    variance. Columns as history_moves plus board_shift."""
    m = history_moves(history, z=np.inf)
    shift = m.groupby(["date_from", "date_to"])["move"].transform("median")
    m["board_shift"] = shift
    m["move"] = m["move"] - shift
    m["expected_sd"] = np.sqrt(m["expected_sd"] ** 2 + 2 * rounding**2 / 12)
    m["z"] = m["move"] / m["expected_sd"]
    m["exceeds"] = m["z"].abs() > z
    return m
