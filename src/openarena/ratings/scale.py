"""The Elo scale and anchoring of log-strengths.

rating = POINTS_PER_LOGIT * theta + offset, with POINTS_PER_LOGIT = 400 / ln 10 (about 173.72
Elo points per logit: a 400-point gap means 10:1 odds). The offset pins either one anchor model
to a value (LMSYS: mixtral-8x7b-instruct-v0.1 = 1114) or the mean rating to 1000.

Source: FastChat ``compute_mle_elo`` (SCALE=400, BASE=10, INIT_RATING=1000, the mixtral anchor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from openarena.errors import DataError

SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
POINTS_PER_LOGIT = SCALE / math.log(BASE)
DEFAULT_ANCHOR_MODEL = "mixtral-8x7b-instruct-v0.1"
DEFAULT_ANCHOR_VALUE = 1114.0


@dataclass(frozen=True)
class Anchor:
    """Where the scale is pinned: ``model`` (None = the mean of all models) gets ``value``."""

    model: str | None = None
    value: float = INIT_RATING

    def describe(self) -> str:
        return f"{self.model} = {self.value:g}" if self.model else f"mean = {self.value:g}"

    def contrast(self, models: tuple[str, ...] | list[str]) -> np.ndarray:
        """Matrix A, shape (n_models, n_models), with ratings = POINTS_PER_LOGIT * A @ theta
        + value. For an anchor model a: A = I - 1 e_a^T; for the mean: A = I - 11^T / n.
        Raises: DataError if the anchor model is not among ``models``."""
        return np.eye(len(models)) - self.weights(models)[None, :]

    def weights(self, models: tuple[str, ...] | list[str]) -> np.ndarray:
        """Vector c, shape (n_models,), with :meth:`contrast` = I - 1 c^T: the anchor's
        indicator, or 1/n for the mean. Raises: DataError as :meth:`contrast`."""
        n = len(models)
        if self.model is None:
            return np.full(n, 1.0 / n)
        try:
            a = list(models).index(self.model)
        except ValueError:
            raise DataError(f"anchor model {self.model!r} is not in the data", field="anchor", expected="a model present in the battles") from None
        c = np.zeros(n)
        c[a] = 1.0
        return c


def resolve_anchor(spec: str | Anchor | None, models: tuple[str, ...] | list[str]) -> Anchor:
    """The anchor to use: ``spec`` as 'MODEL=VALUE', 'mean', 'mean=VALUE' or an Anchor; by
    default mixtral-8x7b-instruct-v0.1 = 1114 when that model is present, else mean = 1000.
    Raises: DataError for a malformed spec or an anchor model absent from ``models``."""
    if isinstance(spec, Anchor):
        anchor = spec
    elif spec is None or spec == "":
        if DEFAULT_ANCHOR_MODEL in models:
            return Anchor(DEFAULT_ANCHOR_MODEL, DEFAULT_ANCHOR_VALUE)
        return Anchor(None, INIT_RATING)
    else:
        name, sep, value = spec.rpartition("=")
        if not sep:
            name, value = spec, ""
        name = name.strip()
        try:
            val = float(value) if value.strip() else INIT_RATING
        except ValueError:
            raise DataError(f"cannot read anchor {spec!r}", field="anchor", expected="MODEL=VALUE, e.g. mixtral-8x7b-instruct-v0.1=1114") from None
        if not name:
            raise DataError(f"cannot read anchor {spec!r}", field="anchor", expected="MODEL=VALUE")
        if not np.isfinite(val):
            raise DataError(f"anchor value {value.strip()!r} is not a finite number", field="anchor", expected="MODEL=VALUE with a finite VALUE, e.g. 1114")
        anchor = Anchor(None if name == "mean" else name, val)
    anchor.contrast(models)  # validates the model
    return anchor


def to_elo(theta: np.ndarray, models: tuple[str, ...] | list[str], anchor: Anchor) -> np.ndarray:
    """Elo-scale ratings from log-strengths.

    Parameters: theta, shape (n_models,) or (R, n_models), natural-log odds units.
    Returns: ratings of the same shape, in Elo points.
    """
    A = anchor.contrast(models)
    return POINTS_PER_LOGIT * (np.asarray(theta) @ A.T) + anchor.value
