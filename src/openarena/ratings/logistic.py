"""The logistic function and its logarithm in plain numpy, stable for any argument.

The pair-level fits call these on arrays of n_pairs entries, where scipy.special's ufuncs save
nothing, while importing scipy.special costs a large part of the CLI's start-up. They agree with
scipy.special.expit / log_expit to a few units in the last place (tested).
"""

from __future__ import annotations

import numpy as np


def expit(x):
    """1 / (1 + exp(-x)), elementwise, without overflow. Same shape as ``x``."""
    x = np.asarray(x, dtype=float)
    e = np.exp(-np.abs(x))
    with np.errstate(invalid="ignore"):
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log_expit(x):
    """log(1 / (1 + exp(-x))), elementwise, accurate for large |x|. Same shape as ``x``."""
    x = np.asarray(x, dtype=float)
    e = np.log1p(np.exp(-np.abs(x)))
    return np.where(x >= 0, -e, x - e)
