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

The fit is exact Newton on the rows, vectorised. The rows are sorted by ordered pair once; per
iteration one pass over them, in cache-sized blocks, gives the log-likelihood, the gradient and
the Hessian at the new point together (one exponential per row; per-pair sums of the residual,
the weight and the weighted covariates by ``np.add.reduceat`` over contiguous segments, from
which the Laplacian model block and the model x covariate block follow; two small products for
the covariate block), then one (n_models - 1 + K)-square solve on a single BLAS thread. The
blocks of a pass run on every core (worker threads; numpy releases the GIL) and their sums are
added in block order, so the result is the same to the last bit whatever the number of threads.
The sandwich meat comes with the last pass (a pass of its own only if the last step was
halved). Memory stays O(N * K).

Source: Chatbot Arena style control (LMSYS blog, 2024-08-28; FastChat ``construct_style_matrices``
and ``fit_mle_elo``); arena-rank ``ContextualBradleyTerry`` (sandwich structure).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from openarena.errors import ConvergenceError, DataError, OpenArenaError
from openarena.ratings.parallel import map_threads, workers

STEP_TOL = 1e-10
MAX_ITER = 100


@dataclass
class ContextualData:
    """Row-level input of the contextual fit.

    Attributes: models, tuple of n_models keys; a, b: int64 arrays (N,) of model indices;
    y: float64 (N,) score of model_a (1, 0 or 0.5); X: float64 (N, K) covariates, row- or
    column-major; names: K covariate names; weights: float64 (N,) vote weights (default ones);
    source. Computed on first use: pairs, pair_index (unordered pairs), ordered_pair, XT.
    """

    models: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    X: np.ndarray
    names: tuple[str, ...]
    weights: np.ndarray | None = None
    source: str = ""

    def __post_init__(self) -> None:
        self.a = np.asarray(self.a, dtype=np.int64)
        self.b = np.asarray(self.b, dtype=np.int64)
        self.y = np.asarray(self.y, dtype=np.float64)
        # row-major or column-major (as covariates.battle_covariates builds it) are both kept
        # as they are; anything else becomes one contiguous array
        X = np.asarray(self.X, dtype=np.float64).reshape(len(self.a), -1)
        self.X = X if (X.flags.c_contiguous or X.flags.f_contiguous) else np.ascontiguousarray(X)
        self.names = tuple(self.names)
        if self.X.shape[1] != len(self.names):
            raise DataError(f"{self.X.shape[1]} covariate columns but {len(self.names)} names", self.source, field="covariates")
        if not np.isfinite(self.X).all():
            bad = ~np.isfinite(self.X).all(axis=1)
            r = int(np.flatnonzero(bad)[0])
            k = int(np.flatnonzero(~np.isfinite(self.X[r]))[0])
            raise DataError("covariate is missing or not finite", self.source, row=r, field=self.names[k], expected="a finite number")

    @property
    def n(self) -> int:
        return len(self.a)

    def w(self) -> np.ndarray:
        return np.ones(self.n) if self.weights is None else self.weights

    @cached_property
    def _pair_table(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.models)
        lo, hi = np.minimum(self.a, self.b), np.maximum(self.a, self.b)
        key = lo * n + hi
        # np.unique(key, return_inverse=True) without the sort: the keys are < n * n
        present = np.bincount(key, minlength=n * n) > 0
        uniq = np.flatnonzero(present)
        return np.column_stack([uniq // n, uniq % n]), (np.cumsum(present) - 1)[key]

    @property
    def pairs(self) -> np.ndarray:
        """The unordered pairs (lo, hi) of model indices that battled, sorted, shape (P, 2)."""
        return self._pair_table[0]

    @property
    def pair_index(self) -> np.ndarray:
        """Index of each row's unordered pair in :attr:`pairs`, shape (N,)."""
        return self._pair_table[1]

    @property
    def ordered_pair(self) -> np.ndarray:
        """a * n_models + b per row (N,): the cell of the row in the n_models-square table
        (computed on each call: only the fit's set-up uses it)."""
        out = self.a * len(self.models)
        out += self.b
        return out

    @cached_property
    def XT(self) -> np.ndarray:
        """The covariates transposed, C-contiguous (K, N): one contiguous row per covariate
        (a view when X is column-major)."""
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

    @cached_property
    def _singular_message(self) -> str | None:
        """None when the information matrix at the fit is regular; else the message of the
        error to raise (a new error at each raise: one raised again would pile up tracebacks).
        The test is the Newton iteration's first step's (smallest eigenvalue of -H at most
        :data:`SINGULAR_EIGEN_RATIO` of the largest), so that it does not depend on whether
        LAPACK's inverse happens to meet an exactly zero pivot (machines differ: the inverse of a
        numerically singular matrix gave NaN and 1e8 standard errors on one, an error on
        another). Computed once per fit (an eigen-decomposition of a 2,000-model matrix takes
        about a second). When only the priors' ridge is left of -H (its largest eigenvalue is
        the larger prior), the likelihood has no curvature: the covariates predict every outcome
        of these battles and the coefficients run off to infinity."""
        with threadpool_limits(limits=1, user_api="blas"):  # one thread, no spin-waiting
            error = _singular(self.hessian, self.prior, self.coef_prior)
        return None if error is None else str(error)

    def _cov_reduced(self, robust: bool = True) -> np.ndarray:
        """Raises: ConvergenceError when the information matrix is singular at the fit
        (:attr:`_singular_message`: a covariate constant or collinear in these battles, which a
        prior on the strengths does not cure, or outcomes the covariates separate)."""
        if self._singular_message is not None:
            raise ConvergenceError(self._singular_message)
        with threadpool_limits(limits=1, user_api="blas"):  # a small matrix: one thread, no spin-waiting
            try:
                Hinv = np.linalg.inv(-self.hessian)
            except np.linalg.LinAlgError:
                raise _not_identified(prior=self.prior > 0) from None
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


#: Rows per block of a pass over the votes: the block's temporaries (a few arrays of this many
#: float64) stay in the processor's cache.
_BLOCK_ROWS = 1 << 16
#: Largest n_models^2 whose ordered pairs are sorted as 16-bit keys (radix sort; 256 models).
_SMALL_CELLS = 1 << 16


@dataclass
class _Pass:
    """What one pass over the rows at a point gives: ll, the penalised log-likelihood; with
    derivatives, g (m,) and H (m, m); with the meat, J (m, m)."""

    ll: float
    g: np.ndarray | None = None
    H: np.ndarray | None = None
    J: np.ndarray | None = None


class _ContextualProblem:
    """The contextual log-likelihood and its derivatives over the rows of ``data``.

    The rows are put in order of their ordered pair (model_a, model_b) once (a stable sort, so
    each pair keeps its rows in their original order): every per-pair sum is then a sum over a
    contiguous segment (``np.add.reduceat``), and theta_a - theta_b is one value per pair
    repeated over its segment. A pass over the rows, in blocks of :data:`_BLOCK_ROWS` whole
    pairs, computes eta = theta_a - theta_b + x . beta, one exponential exp(-|eta|) from which
    the log-likelihood and p = s(eta) follow, and the per-pair sums of r = w (y - p),
    v = w p (1 - p) and v x; the gradient and Hessian are assembled from those (a Laplacian
    and K model vectors over the n_models^2 pairs) and two small products with the rows
    (x^T r, x^T diag(v) x). Vote weights ``w`` are given in the rows' original order.
    """

    def __init__(self, data: ContextualData, ref: int, prior: float, coef_prior: float, threads: int | None = None):
        self.d = data
        self.n = n = len(data.models)
        self.K = K = data.X.shape[1]
        self.ref = ref
        self.keep = np.delete(np.arange(n), ref)
        self.prior = prior
        self.coef_prior = coef_prior
        self.threads = workers(threads)
        N = data.n
        # a stable sort by pair; radix sort when the pair index fits 16 bits (up to 256 models),
        # the keys then made straight into uint16 (no row-length int64 cell array)
        if n * n <= _SMALL_CELLS:
            key = np.empty(N, dtype=np.uint16)
            np.multiply(data.a, n, out=key, casting="unsafe")
            np.add(key, data.b, out=key, casting="unsafe")  # < n * n: exact
        else:
            key = data.ordered_pair
        order = np.argsort(key, kind="stable")
        # the segments: where the sorted key changes
        cs = np.take(key, order)
        del key
        first = np.empty(N, dtype=bool)
        first[:1] = True
        np.not_equal(cs[1:], cs[:-1], out=first[1:])
        self.starts = np.flatnonzero(first)  # first row of each pair's segment
        self.sizes = np.diff(np.append(self.starts, N))
        cells = cs[self.starts].astype(np.int64)
        del cs, first
        # each row's place in pair order: rows are put there by a scatter, whose writes go to
        # one advancing place per pair (cache-friendly), rather than gathered from random places
        self.position = np.empty(N, dtype=np.int64)
        self.position[order] = np.arange(N)
        del order  # memory is time here: each row-length array freed as soon as it is done
        self.ca, self.cb = cells // n, cells % n  # the ordered pair of each segment
        # covariates transposed (K, N): each covariate one contiguous row, in pair order; the
        # K + 1 scatters (covariates and scores) run on the worker threads
        self.XT = np.empty((K, N))
        self.y = np.empty(N)
        src = data.X.T  # (K, N); rows contiguous when X is column-major
        jobs = [(src[k], self.XT[k]) for k in range(K)] + [(data.y, self.y)]
        map_threads(lambda job: job[1].__setitem__(self.position, job[0]), jobs, self.threads)
        # blocks of whole segments of about _BLOCK_ROWS rows: (first segment, last + 1)
        bounds = np.searchsorted(self.starts, np.arange(0, N, _BLOCK_ROWS), side="right") - 1
        bounds = np.unique(np.append(bounds, len(self.starts)))
        self.blocks = [(int(s0), int(s1)) for s0, s1 in zip(bounds[:-1], bounds[1:])]
        ends = np.append(self.starts, N)
        # one weight per vote: the log-likelihood's dot product takes a slice of these ones
        self._ones = np.ones(max((int(ends[s1] - ends[s0]) for s0, s1 in self.blocks), default=0))

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = np.zeros(self.n)
        theta[self.keep] = x[: self.n - 1]
        return theta, x[self.n - 1 :]

    def sorted_weights(self, w: np.ndarray | None) -> np.ndarray | None:
        """Vote weights (N,) in the rows' original order -> in the problem's (pair) order;
        None (one per vote) stays None."""
        if w is None:
            return None
        out = np.empty(len(self.y))
        out[self.position] = np.asarray(w, dtype=float)
        return out

    def evaluate(self, x: np.ndarray, ws: np.ndarray | None, derivatives: bool = True, meat: bool = False) -> _Pass:
        """One pass over the rows at ``x`` with weights ``ws`` in pair order (see
        :meth:`sorted_weights`; None: one per vote, the same numbers without the products by
        one). The blocks are shared among ``threads`` worker threads (numpy
        releases the GIL); each block's sums are kept apart and added in block order, so the
        result does not depend on the number of threads, to the last bit."""
        theta, beta = self.split(x)
        diff = theta[self.ca] - theta[self.cb]  # per pair
        K, C = self.K, len(self.starts)
        width = 2 + K
        S = None
        if derivatives or meat:
            S = np.empty((C, (width if derivatives else 0) + (1 + K if meat else 0)))

        def block(bounds: tuple[int, int]):
            s0, s1 = bounds
            r0 = self.starts[s0]
            r1 = self.starts[s1] if s1 < C else len(self.y)
            XT, y = self.XT[:, r0:r1], self.y[r0:r1]
            w = self._ones[: r1 - r0] if ws is None else ws[r0:r1]
            e = np.repeat(diff[s0:s1], self.sizes[s0:s1])
            if K:
                e += beta @ XT
            t = np.exp(-np.abs(e))
            # y e - log(1 + e^e) = y e - max(e, 0) - log1p(exp(-|e|)), summed with the weights
            ll = float(np.dot(w, y * e - np.maximum(e, 0.0) - np.log1p(t)))
            if S is None:
                return ll, None, None, None
            q = 1.0 / (1.0 + t)
            p = t * q
            np.copyto(p, q, where=e >= 0)  # s(e) = 1 / (1 + e^-e), without overflow
            starts = self.starts[s0:s1] - r0
            col = 0
            xr = xvx = xjx = None
            if derivatives:
                B = np.empty((width, len(e)))
                np.subtract(y, p, out=B[0])
                np.multiply(p, 1.0 - p, out=B[1])
                if ws is not None:
                    B[0] *= w
                    B[1] *= w
                np.multiply(B[1], XT, out=B[2:])
                S[s0:s1, col : col + width] = np.add.reduceat(B, starts, axis=1).T
                xr = XT @ B[0]
                xvx = B[2:] @ XT.T
                col += width
            if meat:
                B = np.empty((1 + K, len(e)))
                np.subtract(y, p, out=B[0])
                if ws is not None:
                    B[0] *= w
                B[0] **= 2
                np.multiply(B[0], XT, out=B[1:])
                S[s0:s1, col:] = np.add.reduceat(B, starts, axis=1).T
                xjx = B[1:] @ XT.T
            return ll, xr, xvx, xjx

        if self.threads > 1 and len(self.blocks) > 1:
            # BLAS is held to one thread by the caller (fit_contextual_bt, bootstrap workers)
            with ThreadPoolExecutor(max_workers=self.threads) as pool:
                parts = list(pool.map(block, self.blocks))
        else:
            parts = [block(b) for b in self.blocks]
        ll = 0.0
        xr, xvx, xjx = np.zeros(K), np.zeros((K, K)), np.zeros((K, K))
        for b_ll, b_xr, b_xvx, b_xjx in parts:  # in block order, as one sequential pass adds them
            ll += b_ll
            if derivatives:
                xr += b_xr
                xvx += b_xvx
            if meat:
                xjx += b_xjx
        if self.prior or self.coef_prior:
            ll -= 0.5 * self.prior * float(theta @ theta) + 0.5 * self.coef_prior * float(beta @ beta)
        out = _Pass(ll)
        if derivatives:
            m1 = self.n - 1
            out.g = np.concatenate([self._model_vector(S[:, 0]), xr])
            out.g[:m1] -= self.prior * theta[self.keep]
            out.g[m1:] -= self.coef_prior * beta
            out.H = -self._block(S[:, 1], S[:, 2 : 2 + K], xvx)
            out.H[np.arange(m1), np.arange(m1)] -= self.prior
            out.H[np.arange(m1, m1 + K), np.arange(m1, m1 + K)] -= self.coef_prior
        if meat:
            out.J = self._block(S[:, -1 - K], S[:, S.shape[1] - K :], xjx)
        return out

    def _model_vector(self, per_pair: np.ndarray) -> np.ndarray:
        """sum over pairs of v (e_a - e_b), reduced (n - 1,)."""
        n = self.n
        return (np.bincount(self.ca, per_pair, n) - np.bincount(self.cb, per_pair, n))[self.keep]

    def _block(self, v: np.ndarray, vx: np.ndarray, xvx: np.ndarray) -> np.ndarray:
        """The (m, m) matrix sum_rows v_r z_r z_r^T with z_r = [e_a - e_b (reduced); x_r], from
        the per-pair sums of v and v x and the covariate block x^T diag(v) x."""
        n, m1, K = self.n, self.n - 1, self.K
        M = np.empty((m1 + K, m1 + K))
        T = np.zeros(n * n)
        T[self.ca * n + self.cb] = v  # each ordered pair is one segment
        T = T.reshape(n, n)
        S = T + T.T  # per unordered pair (a row with a == b, if any, cancels in L as it should)
        L = np.diag(S.sum(axis=1)) - S
        M[:m1, :m1] = L[np.ix_(self.keep, self.keep)]
        cross = np.column_stack([self._model_vector(vx[:, k]) for k in range(K)]) if K else np.zeros((m1, 0))
        M[:m1, m1:] = cross
        M[m1:, :m1] = cross.T
        M[m1:, m1:] = xvx
        return M

    def bt_start(self, w: np.ndarray | None) -> np.ndarray:
        """A starting point for theta (reduced, (n - 1,)): the Bradley-Terry fit of the same votes
        without covariates, from their pair counts (milliseconds; Newton from it takes two
        iterations fewer than from zero on bench/scale.py's arena). Zeros when that fit has no
        finite estimate (the contextual fit then reports the problem itself)."""
        from openarena.data.battles import PairCounts
        from openarena.ratings.bradley_terry import fit_bradley_terry

        n = self.n
        ws = self.sorted_weights(w)
        if ws is None:  # one per vote: the same sums without the products by one
            wy = np.add.reduceat(self.y, self.starts)  # model_a's score per ordered pair
            tot = self.sizes.astype(np.float64)
        else:
            wy = np.add.reduceat(ws * self.y, self.starts)
            tot = np.add.reduceat(ws, self.starts)
        ok = self.ca != self.cb  # a self-battle carries no information on theta
        ca, cb, wy, tot = self.ca[ok], self.cb[ok], wy[ok], tot[ok]
        lo, hi = np.minimum(ca, cb), np.maximum(ca, cb)
        first = np.where(ca == lo, wy, tot - wy)  # the score of the pair's first model
        uniq, inv = np.unique(lo * n + hi, return_inverse=True)
        won = np.bincount(inv, first, len(uniq))
        lost = np.bincount(inv, tot - first, len(uniq))
        zero = np.zeros(len(uniq))
        counts = PairCounts(self.d.models, np.column_stack([uniq // n, uniq % n]), np.column_stack([won, lost, zero, zero]))
        try:
            fit = fit_bradley_terry(counts, prior=self.prior, ref=self.ref)
        except OpenArenaError:
            return np.zeros(n - 1)
        return (fit.theta - fit.theta[self.ref])[self.keep]

    # the row-order interface (tests, bench/style_control.py)
    def loglik(self, x: np.ndarray, w: np.ndarray) -> float:
        return self.evaluate(x, self.sorted_weights(w), derivatives=False).ll

    def grad_hess(self, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient (m,) and Hessian (m, m) at ``x``; ``w`` in the rows' original order."""
        r = self.evaluate(x, self.sorted_weights(w))
        return r.g, r.H

    def meat(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return self.evaluate(x, self.sorted_weights(w), derivatives=False, meat=True).J


#: -H whose smallest eigenvalue is at most this fraction of its largest is treated as singular
#: (the fit not identified): well above double precision's 1e-16, so rounding decides nothing.
SINGULAR_EIGEN_RATIO = 1e-10


def _singular(H: np.ndarray, prior: float, coef_prior: float) -> ConvergenceError | None:
    """None when -H is regular (its smallest eigenvalue above :data:`SINGULAR_EIGEN_RATIO` of
    its largest), else the error that says why: when only the priors' ridge is left of -H (its
    largest eigenvalue is the larger prior) the likelihood has no curvature, the covariates
    predict every outcome of these battles and the coefficients run off to infinity; otherwise
    :func:`_not_identified`. The same wherever the singular matrix is met (the Newton step, the
    sandwich), whatever LAPACK does with it on this machine."""
    ev = np.linalg.eigvalsh(-H)
    if ev[0] > SINGULAR_EIGEN_RATIO * ev[-1]:
        return None
    if ev[-1] <= 1.001 * max(prior, coef_prior) + 1e-12:
        return ConvergenceError(
            "the contextual fit is not identified: its information matrix is singular because the covariates "
            "predict every outcome of these battles (their coefficients run off to infinity); use more battles "
            "or fewer covariates"
        )
    return _not_identified(prior=prior > 0)


def _not_identified(prior: bool) -> ConvergenceError:
    """The error of a singular information matrix (Hessian). Without a prior, the usual cause is
    a covariate collinear with the model identities (a per-model covariate such as price), which
    a prior on the model strengths cures; with one (``prior``), only the covariates can be the
    cause (constant or collinear in these battles), which no prior on the strengths cures.
    Whether LAPACK reports an exactly singular matrix or a tiny pivot depends on the machine, so
    every place that finds one says the same."""
    if prior:
        return ConvergenceError(
            "the contextual fit is not identified: its information matrix is singular (a covariate is "
            "constant or collinear with others in these battles; a prior on the model strengths does not "
            "regularise the covariates); drop the covariate or use more battles"
        )
    return ConvergenceError(
        "the contextual fit is not identified: a covariate is (nearly) collinear with the "
        "model identities (a per-model covariate such as price always is); add a prior on "
        "the model strengths (prior=0.01 or more) or drop the covariate"
    )


def _newton(prob: _ContextualProblem, x0: np.ndarray, w: np.ndarray | None, max_iter: int = MAX_ITER, meat: bool = False):
    """Damped Newton ascent from x0 with vote weights ``w`` (original row order; None: one per
    vote). Each
    iteration is one pass over the rows at the new point (log-likelihood, gradient and Hessian
    together); a rejected step costs one more pass for the log-likelihood alone.
    Returns (x, loglik, H, iterations, meat J at x or None)."""
    ws = prob.sorted_weights(w)
    x = x0.copy()
    cur = prob.evaluate(x, ws)
    for it in range(1, max_iter + 1):
        g, H = cur.g, cur.H
        if it == 1:
            error = _singular(H, prob.prior, prob.coef_prior)
            if error is not None:
                raise error
        try:
            step = np.linalg.solve(-H, g)
        except np.linalg.LinAlgError:
            raise (_singular(H, prob.prior, prob.coef_prior) or _not_identified(prior=prob.prior > 0)) from None
        ll = cur.ll
        t = 1.0
        new = x + step
        # a full step this small ends the iteration: the sandwich meat at the new point comes in
        # the same pass (a halved step gets its own meat pass below)
        last = meat and np.abs(step).max() < STEP_TOL
        trial = prob.evaluate(new, ws, meat=last)
        for _ in range(60):
            if trial.ll >= ll - 1e-12 * abs(ll):
                break
            t /= 2
            new = x + t * step
            trial = prob.evaluate(new, ws, derivatives=False)
        if trial.g is None:  # accepted after halving: the derivatives at the accepted point
            trial = prob.evaluate(new, ws)
        x, cur = new, trial
        if np.abs(t * step).max() < STEP_TOL:
            J = None
            if meat:
                J = cur.J if cur.J is not None else prob.evaluate(x, ws, derivatives=False, meat=True).J
            return x, cur.ll, cur.H, it, J
    raise ConvergenceError(f"the contextual Bradley-Terry fit did not converge in {max_iter} Newton iterations")


def _check_rank(data: ContextualData, XT: np.ndarray) -> None:
    """Raise if a covariate is (numerically) constant: population sd < 1e-12. XT: the
    covariates as rows (K, N).

    N values spanning a range R have sd >= R / sqrt(2 N), so a row whose range already bounds
    the sd above the threshold needs no sd (two cheap reductions instead of np.std's passes)."""
    if data.X.shape[1] == 0:
        return
    N = XT.shape[1]
    for k in range(XT.shape[0]):
        row = XT[k]
        spread = float(row.max()) - float(row.min())
        if spread / np.sqrt(2.0 * N) > 1e-12 or row.std() >= 1e-12:
            continue
        raise DataError(f"covariate {data.names[k]!r} has no variance", data.source, field=data.names[k], expected="a covariate that varies across battles")


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
    w = data.weights if weights is None else np.asarray(weights, dtype=float)  # None: one per vote
    n = len(data.models)
    if ref is None:
        ref = int(np.argmax(np.bincount(data.a, minlength=n) + np.bincount(data.b, minlength=n)))
    prob = _ContextualProblem(data, ref, prior, coef_prior)
    _check_rank(data, prob.XT)
    if start is not None:
        th = start.theta - start.theta[ref]
        x0 = np.concatenate([np.delete(th, ref), start.beta])
    else:
        x0 = np.concatenate([prob.bt_start(w), np.zeros(data.X.shape[1])])
    # small (n_models + K)-square solves: one BLAS thread is faster and does not stall when the
    # other core is busy
    with threadpool_limits(limits=1, user_api="blas"):
        x, ll, H, it, meat = _newton(prob, x0, w, meat=True)
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
    prob = _ContextualProblem(d, fit.ref, fit.prior, fit.coef_prior, threads=1)  # the rounds run in parallel
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
