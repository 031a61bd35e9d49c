"""Contextual Bradley-Terry: model strengths and covariate coefficients fitted together (style
control and any other per-battle covariate).

    logit P(model_a wins) = theta_a - theta_b + x . beta

with x the battle's covariates (e.g. normalised style differences, shape (n_covariates,)),
ties counted as half a win (y = 1, 0, 1/2). The model coefficients theta no longer carry what
x explains; the controlled leaderboard ranks by theta.

Regularisation is explicit: ``prior`` (L2 on theta) and ``coef_prior`` (L2 on beta) are
0.5 * lambda * ||.||^2 terms subtracted from the summed log-likelihood, both 0 by default, so
the coefficients are unbiased maximum-likelihood estimates. (arena-rank's
ContextualBradleyTerry defaults to reg=1.0 on the *mean* log-likelihood, i.e. lambda = N on the
sum, which shrinks the length coefficient several-fold.)

The fit is exact Newton on the rows, vectorised: per iteration one pass for the linear predictor
(reused by the line search and the next gradient), K + 2 bincounts over the N votes into the
n_models x n_models table of ordered pairs (from which the gradient, the Laplacian model block
and the model x covariate block are row and column sums), one K x K product and one
(n_models - 1 + K)-square solve on a single BLAS thread. Memory stays O(N * K).

Source: Chatbot Arena style control (LMSYS blog, 2024-08-28; FastChat ``construct_style_matrices``
and ``fit_mle_elo``); arena-rank ``ContextualBradleyTerry`` (sandwich structure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from openarena.errors import ConvergenceError, DataError
from openarena.ratings.parallel import map_threads

STEP_TOL = 1e-10
MAX_ITER = 100


@dataclass
class ContextualData:
    """Row-level input of the contextual fit.

    Attributes: models, tuple of n_models keys; a, b: int64 arrays (N,) of model indices;
    y: float64 (N,) score of model_a (1, 0 or 0.5); X: float64 (N, K) covariates; names: K
    covariate names; weights: float64 (N,) vote weights (default ones); source.
    """

    models: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    X: np.ndarray
    names: tuple[str, ...]
    weights: np.ndarray | None = None
    source: str = ""
    pair_index: np.ndarray = field(init=False, repr=False)
    pairs: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.a = np.asarray(self.a, dtype=np.int64)
        self.b = np.asarray(self.b, dtype=np.int64)
        self.y = np.asarray(self.y, dtype=np.float64)
        self.X = np.ascontiguousarray(np.asarray(self.X, dtype=np.float64).reshape(len(self.a), -1))
        self.names = tuple(self.names)
        if self.X.shape[1] != len(self.names):
            raise DataError(f"{self.X.shape[1]} covariate columns but {len(self.names)} names", self.source, field="covariates")
        bad = ~np.isfinite(self.X).all(axis=1)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            k = int(np.flatnonzero(~np.isfinite(self.X[r]))[0])
            raise DataError("covariate is missing or not finite", self.source, row=r, field=self.names[k], expected="a finite number")
        n = len(self.models)
        lo, hi = np.minimum(self.a, self.b), np.maximum(self.a, self.b)
        key = lo * n + hi
        # np.unique(key, return_inverse=True) without the sort: the keys are < n * n
        present = np.bincount(key, minlength=n * n) > 0
        uniq = np.flatnonzero(present)
        self.pairs = np.column_stack([uniq // n, uniq % n])
        self.pair_index = (np.cumsum(present) - 1)[key]

    @property
    def n(self) -> int:
        return len(self.a)

    def w(self) -> np.ndarray:
        return np.ones(self.n) if self.weights is None else self.weights

    @cached_property
    def ordered_pair(self) -> np.ndarray:
        """a * n_models + b per row (N,): the cell of the row in the n_models-square table."""
        return self.a * len(self.models) + self.b

    @cached_property
    def XT(self) -> np.ndarray:
        """The covariates transposed, C-contiguous (K, N): one contiguous row per covariate."""
        return np.ascontiguousarray(self.X.T)


@dataclass
class ContextualFit:
    """Result of :func:`fit_contextual_bt`.

    theta: (n_models,) log-strengths, mean zero, logits; beta: (K,) covariate coefficients in
    logits per unit of covariate; hessian, meat: (m, m) in reduced parameters (theta without
    ``ref``, then beta); loglik; n_iter; prior, coef_prior.
    """

    data: ContextualData
    theta: np.ndarray
    beta: np.ndarray
    hessian: np.ndarray
    meat: np.ndarray
    ref: int
    loglik: float
    n_iter: int
    prior: float = 0.0
    coef_prior: float = 0.0

    @property
    def models(self) -> tuple[str, ...]:
        return self.data.models

    @property
    def names(self) -> tuple[str, ...]:
        return self.data.names

    def _cov_reduced(self, robust: bool = True) -> np.ndarray:
        with threadpool_limits(limits=1, user_api="blas"):  # a small matrix: one thread, no spin-waiting
            Hinv = np.linalg.inv(-self.hessian)
            return Hinv @ self.meat @ Hinv if robust else Hinv

    def covariance(self, robust: bool = True) -> np.ndarray:
        """Covariance of theta (n_models, n_models) with theta[ref] fixed at 0; contrasts
        (sum of weights 0) have the right variance whatever ``ref`` is."""
        n = len(self.models)
        V = self._cov_reduced(robust)
        keep = np.delete(np.arange(n), self.ref)
        full = np.zeros((n, n))
        full[np.ix_(keep, keep)] = V[: n - 1, : n - 1]
        return full

    def coef_se(self, robust: bool = True) -> np.ndarray:
        """Standard errors of beta, shape (K,)."""
        n = len(self.models)
        V = self._cov_reduced(robust)
        return np.sqrt(np.diag(V)[n - 1 :])


class _ContextualProblem:
    def __init__(self, data: ContextualData, ref: int, prior: float, coef_prior: float):
        self.d = data
        self.n = len(data.models)
        self.K = data.X.shape[1]
        self.ref = ref
        self.keep = np.delete(np.arange(self.n), ref)
        self.prior = prior
        self.coef_prior = coef_prior
        self.cell = data.ordered_pair  # (N,) row -> a * n + b
        self.XT = data.XT  # (K, N)

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = np.zeros(self.n)
        theta[self.keep] = x[: self.n - 1]
        return theta, x[self.n - 1 :]

    def eta(self, x: np.ndarray) -> np.ndarray:
        theta, beta = self.split(x)
        # theta_a - theta_b, looked up in the table of all differences: one gather instead of two
        return (theta[:, None] - theta[None, :]).ravel()[self.cell] + self.d.X @ beta

    def loglik_eta(self, x: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
        """The penalised log-likelihood at ``x`` and the linear predictor it used."""
        e = self.eta(x)
        y = self.d.y
        from scipy.special import log_expit  # row-level ufunc; imported on first use (start-up)

        ll = float(np.dot(w, log_expit(e) - (1 - y) * e))  # y log s(e) + (1-y) log s(-e)
        theta, beta = self.split(x)
        return ll - 0.5 * self.prior * float(theta @ theta) - 0.5 * self.coef_prior * float(beta @ beta), e

    def loglik(self, x: np.ndarray, w: np.ndarray) -> float:
        return self.loglik_eta(x, w)[0]

    def _table(self, per_row: np.ndarray) -> np.ndarray:
        """(n, n): sum of ``per_row`` over the rows of each ordered pair (model_a, model_b)."""
        return np.bincount(self.cell, per_row, self.n * self.n).reshape(self.n, self.n)

    def _model_vector(self, r: np.ndarray) -> np.ndarray:
        """sum_rows r (e_a - e_b), reduced (n - 1,)."""
        T = self._table(r)
        return (T.sum(axis=1) - T.sum(axis=0))[self.keep]

    def _laplacian(self, per_row: np.ndarray) -> np.ndarray:
        """sum_rows v (e_a - e_b)(e_a - e_b)^T, reduced (n - 1, n - 1)."""
        T = self._table(per_row)
        S = T + T.T  # per unordered pair (a row with a == b, if any, cancels in L as it should)
        L = np.diag(S.sum(axis=1)) - S
        return L[np.ix_(self.keep, self.keep)]

    def _block(self, v: np.ndarray) -> np.ndarray:
        """The (m, m) matrix sum_rows v_r z_r z_r^T with z_r = [e_a - e_b (reduced); x_r]."""
        m1, K = self.n - 1, self.K
        M = np.empty((m1 + K, m1 + K))
        M[:m1, :m1] = self._laplacian(v)
        vXT = self.XT * v  # (K, N), rows contiguous for bincount
        cross = np.column_stack([self._model_vector(vXT[k]) for k in range(K)]) if K else np.zeros((m1, 0))
        M[:m1, m1:] = cross
        M[m1:, :m1] = cross.T
        M[m1:, m1:] = vXT @ self.XT.T
        return M

    def grad_hess(self, x: np.ndarray, w: np.ndarray, eta: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian at ``x`` (``eta``: the linear predictor at x, if already known)."""
        from scipy.special import expit

        p = expit(self.eta(x) if eta is None else eta)
        r = w * (self.d.y - p)
        h = w * p * (1 - p)
        m1 = self.n - 1
        g = np.concatenate([self._model_vector(r), self.XT @ r])
        H = -self._block(h)
        theta, beta = self.split(x)
        g[:m1] -= self.prior * theta[self.keep]
        g[m1:] -= self.coef_prior * beta
        H[np.arange(m1), np.arange(m1)] -= self.prior
        H[np.arange(m1, m1 + self.K), np.arange(m1, m1 + self.K)] -= self.coef_prior
        return g, H

    def meat(self, x: np.ndarray, w: np.ndarray, eta: np.ndarray | None = None) -> np.ndarray:
        from scipy.special import expit

        p = expit(self.eta(x) if eta is None else eta)
        return self._block((w * (self.d.y - p)) ** 2)


def _newton(prob: _ContextualProblem, x0: np.ndarray, w: np.ndarray, max_iter: int = MAX_ITER):
    x = x0.copy()
    ll, eta = prob.loglik_eta(x, w)
    for it in range(1, max_iter + 1):
        g, H = prob.grad_hess(x, w, eta)
        if it == 1:
            ev = np.linalg.eigvalsh(-H)
            if ev[0] <= 1e-10 * ev[-1]:
                raise ConvergenceError(
                    "the contextual fit is not identified: a covariate is (nearly) collinear with the "
                    "model identities (a per-model covariate such as price always is); add a prior on "
                    "the model strengths (prior=0.01 or more) or drop the covariate"
                )
        try:
            step = np.linalg.solve(-H, g)
        except np.linalg.LinAlgError:
            raise ConvergenceError(
                "singular Hessian in the contextual fit: a covariate is collinear with the model "
                "identities (e.g. a per-model covariate); add a prior (prior=0.01 or more) to regularise the model strengths"
            ) from None
        t = 1.0
        for _ in range(60):
            new = x + t * step
            new_ll, new_eta = prob.loglik_eta(new, w)
            if new_ll >= ll - 1e-12 * abs(ll):
                break
            t /= 2
        x, ll, eta = new, new_ll, new_eta
        if np.abs(t * step).max() < STEP_TOL:
            g, H = prob.grad_hess(x, w, eta)
            return x, ll, H, it, eta
    raise ConvergenceError(f"the contextual Bradley-Terry fit did not converge in {max_iter} Newton iterations")


def _check_rank(data: ContextualData, prior: float) -> None:
    """Raise if a covariate is (numerically) constant or collinear with model identities."""
    if data.X.shape[1] == 0:
        return
    sd = data.XT.std(axis=1)
    flat = np.flatnonzero(sd < 1e-12)
    if flat.size:
        raise DataError(f"covariate {data.names[flat[0]]!r} has no variance", data.source, field=data.names[flat[0]], expected="a covariate that varies across battles")


def fit_contextual_bt(
    data: ContextualData,
    *,
    prior: float = 0.0,
    coef_prior: float = 0.0,
    ref: int | None = None,
    weights: np.ndarray | None = None,
    start: ContextualFit | None = None,
) -> ContextualFit:
    """Maximum-likelihood contextual Bradley-Terry.

    Parameters:
        data: ContextualData with N rows and K covariates.
        prior, coef_prior: L2 penalties on theta and beta (default 0 = unbiased MLE).
        ref: model held at 0 during the fit (default: the most frequent).
        weights: vote weights (N,), overriding data.weights (used by the bootstrap).
        start: warm start from an earlier fit on the same rows.
    Returns: ContextualFit (theta mean zero, beta, Hessian and sandwich meat).
    Raises: DataError for a constant covariate; ConvergenceError if the Hessian is singular
        (covariate collinear with the models) or Newton's method fails.
    """
    _check_rank(data, prior)
    w = data.w() if weights is None else np.asarray(weights, dtype=float)
    n = len(data.models)
    if ref is None:
        ref = int(np.argmax(np.bincount(data.a, minlength=n) + np.bincount(data.b, minlength=n)))
    prob = _ContextualProblem(data, ref, prior, coef_prior)
    if start is not None:
        th = start.theta - start.theta[ref]
        x0 = np.concatenate([np.delete(th, ref), start.beta])
    else:
        x0 = np.zeros(n - 1 + data.X.shape[1])
    # small (n_models + K)-square solves: one BLAS thread is faster and does not stall when the
    # other core is busy
    with threadpool_limits(limits=1, user_api="blas"):
        x, ll, H, it, eta = _newton(prob, x0, w)
        meat = prob.meat(x, w, eta)
    theta, beta = prob.split(x)
    return ContextualFit(
        data=data,
        theta=theta - theta.mean(),
        beta=beta.copy(),
        hessian=H,
        meat=meat,
        ref=ref,
        loglik=ll,
        n_iter=it,
        prior=prior,
        coef_prior=coef_prior,
    )


def bootstrap_contextual(
    fit: ContextualFit,
    rounds: int = 100,
    seed: int | None = 0,
    n_jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Refit on ``rounds`` resamples of the votes (multinomial counts per row, i.e. drawing N
    votes with replacement), warm-started at ``fit``.

    Returns: (theta, beta) of shapes (rounds, n_models) and (rounds, K).
    Each round uses child r of SeedSequence(seed): results do not depend on n_jobs.
    """
    d = fit.data
    N = d.n
    base = d.w()
    children = np.random.SeedSequence(seed).spawn(rounds)
    # the same Newton fit as fit_contextual_bt(weights=..., start=fit), without what a round does
    # not use: the covariate check (same covariates every round) and the sandwich meat
    prob = _ContextualProblem(d, fit.ref, fit.prior, fit.coef_prior)
    th = fit.theta - fit.theta[fit.ref]
    x0 = np.concatenate([np.delete(th, fit.ref), fit.beta])

    def one(r: int):
        rng = np.random.default_rng(children[r])
        counts = np.bincount(rng.integers(0, N, N), minlength=N)
        x = _newton(prob, x0, base * counts)[0]
        theta, beta = prob.split(x)
        if progress:
            progress(1)
        return theta - theta.mean(), beta.copy()

    res = map_threads(one, range(rounds), n_jobs)
    return np.vstack([r[0] for r in res]), np.vstack([r[1] for r in res])
