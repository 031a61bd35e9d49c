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
from typing import Callable, NoReturn

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable
from openarena.data.schema import OUTCOME_SCORE, STYLE_FEATURES, factorize_models
from openarena.errors import DataError
from openarena.ratings.contextual import ContextualData
from openarena.ratings.parallel import map_threads

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


def ratio_difference(fa: np.ndarray, fb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(f_A - f_B) / (f_A + f_B + 1), elementwise, float64; counts must be >= 0.

    Integer (or float) counts are cast element by element inside the arithmetic, so no float
    copy of the inputs is made; the result equals converting both to float64 first. The
    denominator is formed in chunks of :data:`_CHUNK` values (elementwise: the same numbers,
    without a second full-length array). ``out``: an optional float64 array of the same
    length to write the result into."""
    fa, fb = _float_or_int(fa), _float_or_int(fb)
    num = np.subtract(fa, fb, out=out, dtype=np.float64)
    if num.ndim != 1 or fa.shape != fb.shape:  # scalars, matrices, broadcasting: in one go
        den = np.add(fa, fb, dtype=np.float64)
        den += 1.0
        num /= den
        return num
    den = np.empty(min(len(num), _CHUNK))
    for s0 in range(0, len(num), _CHUNK):
        d = den[: len(num[s0 : s0 + _CHUNK])]
        np.add(fa[s0 : s0 + _CHUNK], fb[s0 : s0 + _CHUNK], out=d, dtype=np.float64)
        d += 1.0
        num[s0 : s0 + _CHUNK] /= d
    return num


#: Values per chunk of the elementwise covariate arithmetic (a few hundred kB of float64).
_CHUNK = 1 << 16


def _float_or_int(x) -> np.ndarray:
    """``x`` as an integer or float array as it is, anything else converted to float64."""
    x = np.asarray(x)
    return x if x.dtype.kind in "iuf" else x.astype(np.float64)


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
    """The values of ``frame[col]`` as numbers (N,): a numpy integer column as it is (a view),
    anything else as float64. Raises DataError naming the first value that is not a finite
    number."""
    series = frame[col]
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iu":
        return series.to_numpy()  # integers, always finite: no copy, no coercion, no check
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        _bad_rows(frame, col, bad, source, "value {value} is not a number", "a finite number")
    return values


def _bad_rows(frame: pd.DataFrame, col: str, bad: np.ndarray, source: str, message: str, expected: str) -> NoReturn:
    """Raise the DataError naming the first row of ``bad`` (its index label when an integer) and
    how many rows are like it; ``message`` has a ``{value}`` field for that row's value."""
    r = int(np.flatnonzero(bad)[0])
    label = frame.index[r]
    raise DataError(
        f"{message.format(value=repr(frame[col].iloc[r]))} ({int(bad.sum())} row(s) like this)",
        source,
        row=int(label) if isinstance(label, (int, np.integer)) else r,
        field=col,
        expected=expected,
    )


def _count(frame: pd.DataFrame, col: str, source: str) -> np.ndarray:
    """:func:`_numeric` for a style count (the operand of :func:`ratio_difference`, whose
    denominator f_a + f_b + 1 is zero at f_a + f_b = -1). Raises DataError naming the first
    value that is not a finite number or is negative."""
    values = _numeric(frame, col, source)
    if len(values) and values.min() < 0:
        _bad_rows(frame, col, values < 0, source, "count {value} is negative", "a count >= 0")
    return values


def battle_covariates(
    battles: BattleTable,
    controls: list[str] | str | None,
    model_values: dict[str, dict[str, float]] | None = None,
) -> tuple[np.ndarray, list[CovariateInfo]]:
    """The covariate matrix of ``battles``.

    Parameters: battles (N rows); controls, see the module docstring; model_values, per-model
    covariates {name: {model: value}}.
    Returns: (X, infos): X float64 of shape (N, K) z-scored, column-major (the transpose of a
    C-contiguous (K, N) array: each covariate contiguous); infos, one CovariateInfo per kept
    column (zero-variance covariates are dropped with a warning).
    Raises: DataError naming the missing column (and which columns would do), the first
    non-numeric value or negative style count, or a model without a per-model value.
    """
    frame = battles.frame
    N = len(frame)
    source = battles.source
    # one row per covariate (K, N), each written in place (X is returned as the transposed
    # view); fills[k] writes row k
    fills: list[Callable[[np.ndarray], object]] = []
    infos: list[CovariateInfo] = []
    for name in expand_controls(controls):
        if f"{name}_a" in frame.columns and f"{name}_b" in frame.columns:
            fills.append(lambda row, c=name: ratio_difference(_count(frame, f"{c}_a", source), _count(frame, f"{c}_b", source), out=row))
            kind = "ratio"
        elif name in frame.columns:
            fills.append(lambda row, c=name: np.copyto(row, _numeric(frame, c, source)))
            kind = "column"
        else:
            hint = "style feature columns (compute them with openarena.data.style)" if name in STYLE_FEATURES else "a numeric column"
            raise DataError(
                f"cannot control for {name!r}: the battles have no columns {name}_a/{name}_b or {name}",
                source,
                field=name,
                expected=hint,
            )
        infos.append(CovariateInfo(name, kind, 0.0, 1.0))
    if model_values:
        codes, models = factorize_models(frame)
        for name, mapping in model_values.items():
            missing = [m for m in models if m not in mapping]
            if missing:
                raise DataError(f"no {name!r} value for model {missing[0]!r} ({len(missing)} model(s) without one)", source, field=name, expected="a value for every model")
            v = np.array([float(mapping[m]) for m in models])
            fills.append(lambda row, v=v: np.subtract(v[codes[0]], v[codes[1]], out=row))
            infos.append(CovariateInfo(name, "model", 0.0, 1.0))
    if not infos:
        return np.zeros((N, 0)), []
    XT = np.empty((len(infos), N))

    def build(k: int) -> tuple[float, float, bool]:
        # per-model differences keep their natural zero (centring them would add a model_a
        # position effect that makes a collinear covariate look identified); ratios and
        # columns are centred in place and their sd is that of the centred row (np.std's
        # arithmetic: the same bits)
        row = XT[k]
        fills[k](row)
        if infos[k].kind == "model":
            mean, sd = 0.0, float(np.sqrt(np.dot(row, row) / N))
        else:
            mean = float(row.mean())
            row -= mean
            sd = float(np.sqrt(np.multiply(row, row).sum() / N))
        keep = sd > 1e-12 * max(1.0, abs(mean))
        if keep:
            row /= sd
        return mean, sd, keep

    # the covariates on the worker threads (numpy releases the GIL); the first failing one raises
    stats = map_threads(build, range(len(infos)))
    for info, (_, _, keep) in zip(infos, stats):
        if not keep:
            warnings.warn(f"covariate {info.name!r} has no variance in these battles and is left out", stacklevel=2)
    kept = [k for k, (_, _, keep) in enumerate(stats) if keep]
    if len(kept) < len(infos):
        XT = XT[kept]
    infos = [CovariateInfo(infos[k].name, infos[k].kind, stats[k][0], stats[k][1]) for k in kept]
    return XT.T, infos


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
