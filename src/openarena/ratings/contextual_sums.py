"""The contextual Bradley-Terry fit from sums computed elsewhere (a database, a cluster): the
Newton step is local, the data never is.

A ``sums`` object gives, for strengths theta (n_models,) and coefficients beta (K,):
``loglik(theta, beta)`` (float) and ``grad_hess(theta, beta)``: a DataFrame with one row per
ordered pair (a, b) present and the sums over its rows of r = y - p, v = p (1 - p), v z_k,
r z_k and v z_k z_l (k <= l), p = s(theta_a - theta_b + z . beta). From these

    grad_theta = sum_pairs r (e_a - e_b)           grad_beta = sum_pairs r z
    H_theta    = -sum_pairs v (e_a - e_b)(e_a - e_b)^T
    H_theta,beta = -sum_pairs v z (e_a - e_b)       H_beta = -sum_pairs v z z^T

the same damped Newton iteration as :func:`openarena.ratings.contextual.fit_contextual_bt`
runs on the (n_models - 1 + K)-square system (theta of the most-battled model held at 0), so
the estimates equal the in-memory fit to rounding (tested to 1e-8).
:class:`openarena.engines.contextual.DuckDBContextualSums` provides the sums from Parquet files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from openarena.errors import ConvergenceError

STEP_TOL = 1e-10
MAX_ITER = 50


@dataclass(frozen=True)
class ContextualSumsFit:
    """theta (n_models,), mean zero, logits; beta (K,), logits per standard deviation of each
    covariate; hessian of the reduced parameters; models; names; loglik; n_iter."""

    models: tuple[str, ...]
    names: tuple[str, ...]
    theta: np.ndarray
    beta: np.ndarray
    hessian: np.ndarray
    loglik: float
    n_iter: int


def _assemble(sums: pd.DataFrame, n: int, K: int, ref: int):
    a = sums["a"].to_numpy(np.int64)
    b = sums["b"].to_numpy(np.int64)
    r = sums["r"].to_numpy(float)
    v = sums["v"].to_numpy(float)
    keep = np.delete(np.arange(n), ref)
    g_theta = np.bincount(a, r, n) - np.bincount(b, r, n)
    L = np.zeros((n, n))
    np.add.at(L, (a, a), v)
    np.add.at(L, (b, b), v)
    np.add.at(L, (a, b), -v)
    np.add.at(L, (b, a), -v)
    m1 = n - 1
    H = np.zeros((m1 + K, m1 + K))
    g = np.zeros(m1 + K)
    g[:m1] = g_theta[keep]
    H[:m1, :m1] = -L[np.ix_(keep, keep)]
    for k in range(K):
        vz = sums[f"vz{k}"].to_numpy(float)
        col = np.bincount(a, vz, n) - np.bincount(b, vz, n)
        H[:m1, m1 + k] = H[m1 + k, :m1] = -col[keep]
        g[m1 + k] = sums[f"rz{k}"].sum()
        for m in range(k, K):
            H[m1 + k, m1 + m] = H[m1 + m, m1 + k] = -sums[f"vzz{k}_{m}"].sum()
    return g, H


def fit_contextual_sums(sums, *, ref: int | None = None, max_iter: int = MAX_ITER) -> ContextualSumsFit:
    """Maximum-likelihood contextual Bradley-Terry by Newton's method on remote sums.

    Parameters: sums, an object with ``models``, ``names``, ``loglik`` and ``grad_hess`` (see
    the module docstring); ref, model held at 0 (default: the most-battled model).
    Returns: ContextualSumsFit. Raises: ConvergenceError for a singular Hessian or no
    convergence in ``max_iter`` iterations. Each iteration costs one pass over the rows for the
    sums and one or more for the line search.
    """
    n, K = len(sums.models), len(sums.names)
    theta = np.zeros(n)
    beta = np.zeros(K)
    first = sums.grad_hess(theta, beta)
    if ref is None:
        # at theta = beta = 0, p = 1/2 and v = rows / 4: the most-battled model from the sums
        w = first["v"].to_numpy(float)
        per = np.bincount(first["a"].to_numpy(np.int64), w, n) + np.bincount(first["b"].to_numpy(np.int64), w, n)
        ref = int(np.argmax(per))
    keep = np.delete(np.arange(n), ref)
    m1 = n - 1
    ll = sums.loglik(theta, beta)
    table = first
    for it in range(1, max_iter + 1):
        g, H = _assemble(table, n, K, ref)
        try:
            step = np.linalg.solve(-H, g)
        except np.linalg.LinAlgError:
            raise ConvergenceError("singular Hessian in the contextual fit: a covariate is collinear with the model identities") from None
        t = 1.0
        x = np.concatenate([theta[keep], beta])
        for _ in range(60):
            new = x + t * step
            th = np.zeros(n)
            th[keep] = new[:m1]
            new_ll = sums.loglik(th, new[m1:])
            if new_ll >= ll - 1e-12 * abs(ll):
                break
            t /= 2
        theta, beta, ll = th, new[m1:].copy(), new_ll
        table = sums.grad_hess(theta, beta)
        if np.abs(t * step).max() < STEP_TOL:
            _, H = _assemble(table, n, K, ref)
            return ContextualSumsFit(tuple(sums.models), tuple(sums.names), theta - theta.mean(), beta, H, ll, it)
    raise ConvergenceError(f"the contextual fit did not converge in {max_iter} Newton iterations")
