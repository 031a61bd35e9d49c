"""Covariates of the contextual Bradley-Terry fit, built from battle rows.

Style features (FastChat's definition): for a feature with per-answer counts f_A and f_B,
the battle covariate is (f_A - f_B) / (f_A + f_B + 1), then z-scored over the data set
(population standard deviation). A covariate without variance is dropped with a warning, never
turned into NaN.

``controls`` names what to control for:
- 'length' -> tokens; 'markdown' -> headers, lists, bold; 'style' -> all four
  (per-answer columns ``<feature>_a`` / ``<feature>_b`` on the battle table, see
  :data:`openarena.data.schema.STYLE_FEATURES`);
- any other name ``c``: columns ``c_a`` and ``c_b`` (per-answer, ratio difference as above),
  else a numeric per-battle column ``c`` (used as is, then z-scored);
- per-model covariates (price, parameter count) come as ``model_values={name: {model: value}}``
  and enter as the difference value(model_a) - value(model_b), scaled to unit root mean square
  but not centred. They are collinear with
  the model identities, so they are only identified with a prior on the model strengths.

Source: FastChat ``construct_style_matrices`` (apply_ratio, add_one, z-scoring); LMSYS blog
"Does style matter?" (2024-08-28).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable
from openarena.data.schema import OUTCOME_SCORE, STYLE_FEATURES, factorize_models
from openarena.errors import DataError
from openarena.ratings.contextual import ContextualData

CONTROL_GROUPS: dict[str, tuple[str, ...]] = {
    "length": ("tokens",),
    "markdown": ("headers", "lists", "bold"),
    "style": STYLE_FEATURES,
}


@dataclass(frozen=True)
class CovariateInfo:
    """How each covariate was built: name, kind ('ratio' | 'column' | 'model'), mean and sd
    used for z-scoring (in the raw unit of the kind)."""

    name: str
    kind: str
    mean: float
    sd: float


def ratio_difference(fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """(f_A - f_B) / (f_A + f_B + 1), elementwise; counts must be >= 0."""
    fa = np.asarray(fa, dtype=float)
    fb = np.asarray(fb, dtype=float)
    num = fa - fb
    den = fa + fb
    den += 1.0
    num /= den
    return num


def expand_controls(controls: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """'length,markdown' or ['style'] -> ['tokens', 'headers', 'lists', 'bold'] (order kept,
    duplicates removed)."""
    if controls is None:
        return []
    if isinstance(controls, str):
        controls = [c for c in controls.split(",")]
    out: list[str] = []
    for c in controls:
        c = c.strip()
        if not c:
            continue
        for f in CONTROL_GROUPS.get(c, (c,)):
            if f not in out:
                out.append(f)
    return out


def _numeric(frame: pd.DataFrame, col: str, source: str) -> np.ndarray:
    series = frame[col]
    if pd.api.types.is_integer_dtype(series.dtype) and not series.hasnans:
        return series.to_numpy(dtype=float)  # always finite: no coercion, no check
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        label = frame.index[r]
        raise DataError(
            f"value {frame[col].iloc[r]!r} is not a number ({int(bad.sum())} row(s) like this)",
            source,
            row=int(label) if isinstance(label, (int, np.integer)) else r,
            field=col,
            expected="a finite number",
        )
    return values


def battle_covariates(
    battles: BattleTable,
    controls: list[str] | str | None,
    model_values: dict[str, dict[str, float]] | None = None,
) -> tuple[np.ndarray, list[CovariateInfo]]:
    """The covariate matrix of ``battles``.

    Parameters: battles (N rows); controls, see the module docstring; model_values, per-model
    covariates {name: {model: value}}.
    Returns: (X, infos): X float64 of shape (N, K) z-scored; infos, one CovariateInfo per
    kept column (zero-variance covariates are dropped with a warning).
    Raises: DataError naming the missing column (and which columns would do) or the first
    non-numeric value, or a model without a per-model value.
    """
    frame = battles.frame
    cols: list[np.ndarray] = []
    infos: list[CovariateInfo] = []
    for name in expand_controls(controls):
        if f"{name}_a" in frame.columns and f"{name}_b" in frame.columns:
            raw = ratio_difference(_numeric(frame, f"{name}_a", battles.source), _numeric(frame, f"{name}_b", battles.source))
            kind = "ratio"
        elif name in frame.columns:
            raw = _numeric(frame, name, battles.source).copy()  # z-scored in place below
            kind = "column"
        else:
            hint = "style feature columns (compute them with openarena.data.style)" if name in STYLE_FEATURES else "a numeric column"
            raise DataError(
                f"cannot control for {name!r}: the battles have no columns {name}_a/{name}_b or {name}",
                battles.source,
                field=name,
                expected=hint,
            )
        cols.append(raw)
        infos.append(CovariateInfo(name, kind, 0.0, 1.0))
    if model_values:
        codes, models = factorize_models(frame)
        for name, mapping in model_values.items():
            missing = [m for m in models if m not in mapping]
            if missing:
                raise DataError(f"no {name!r} value for model {missing[0]!r} ({len(missing)} model(s) without one)", battles.source, field=name, expected="a value for every model")
            v = np.array([float(mapping[m]) for m in models])
            cols.append(v[codes[0]] - v[codes[1]])
            infos.append(CovariateInfo(name, "model", 0.0, 1.0))
    if not cols:
        return np.zeros((len(frame), 0)), []
    # per-model differences keep their natural zero (centring them would add a model_a
    # position effect that makes a collinear covariate look identified); statistics per
    # contiguous column, then one (N, K) array written column by column
    is_model = np.array([i.kind == "model" for i in infos])
    mean = np.array([0.0 if m else c.mean() for c, m in zip(cols, is_model)])
    sd = np.array([np.sqrt(np.dot(c, c) / len(c)) if m else c.std() for c, m in zip(cols, is_model)])
    keep = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
    for k in np.flatnonzero(~keep):
        warnings.warn(f"covariate {infos[k].name!r} has no variance in these battles and is left out", stacklevel=2)
    kept = np.flatnonzero(keep)
    X = np.empty((len(frame), len(kept)))
    for out, k in enumerate(kept):
        c = cols[k]
        c -= mean[k]
        c /= sd[k]
        X[:, out] = c
    infos = [CovariateInfo(i.name, i.kind, float(m), float(s)) for i, m, s, k in zip(infos, mean, sd, keep) if k]
    return X, infos


def contextual_data(
    battles: BattleTable,
    controls: list[str] | str | None,
    model_values: dict[str, dict[str, float]] | None = None,
    weights: np.ndarray | None = None,
) -> tuple[ContextualData, list[CovariateInfo]]:
    """Battle rows -> :class:`ContextualData` (model indices, half-win scores, covariates)."""
    codes, models = factorize_models(battles.frame)
    y = battles.frame["winner"].map(OUTCOME_SCORE).to_numpy(dtype=float)
    X, infos = battle_covariates(battles, controls, model_values)
    data = ContextualData(
        models=tuple(str(m) for m in models),
        a=codes[0],
        b=codes[1],
        y=y,
        X=X,
        names=tuple(i.name for i in infos),
        weights=weights,
        source=battles.source,
    )
    return data, infos
