"""Maximum-likelihood Bradley-Terry on aggregated pair counts, by exact Newton's method.

The log-likelihood of n_models log-strengths ``theta`` (and one tie parameter ``k`` for the
tie models) is a sum over unique pairs, so a fit costs O(n_pairs + n_models^3) per iteration
whatever the number of votes. Newton's method with a backtracking line search converges
quadratically; we stop when the largest step is below 1e-11 logits (1e-9 Elo points).
From :data:`_SPARSE_FROM` models on, the Newton systems are solved without forming the
Hessian: it is a weighted graph Laplacian over the pairs (bordered by the tie parameter), and
preconditioned conjugate gradients need only products with it, two bincounts over the pairs
each, so an iteration costs O(n_pairs) (2,000 models, 54k pairs: milliseconds instead of a
dense 2,000-square factorisation). The dense Hessian is formed once, at the optimum, for the
covariance.

The same code fits a batch of count tables at once (shape (R, n_pairs, 4)), which is how the
bootstrap fits its R resamples in a few vectorised Newton iterations.

Source: Bradley & Terry (1952); Hunter (2004), "MM algorithms for generalized Bradley-Terry
models" (existence condition); the Elo-scale convention of FastChat ``compute_mle_elo``
(lm-sys/FastChat, fastchat/serve/monitor/elo_analysis.py) and arena-rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

import numpy as np
from threadpoolctl import threadpool_limits

from openarena.data.battles import BattleTable, PairCounts, as_pair_counts
from openarena.errors import ConvergenceError, DataError
from openarena.ratings.ties import TIE_MODELS, PairSums, initial_tie_param, pair_sums

STEP_TOL = 1e-11
MAX_ITER = 100


def one_blas_thread(method):
    """Run ``method`` with one BLAS thread: its dense products and factorisations of an
    n_models-square matrix are faster so (2,000 models: a Cholesky inverse takes 0.26 s of CPU on
    one thread, 1.7-2 s on two) and do not stall when the other core is busy."""

    @wraps(method)
    def run(self, *args, **kwargs):
        _load_lapack(self.counts.n_models)
        with threadpool_limits(limits=1, user_api="blas"):
            return method(self, *args, **kwargs)

    return run


@dataclass
class BTFit:
    """A fitted Bradley-Terry model.

    Attributes:
        counts: the PairCounts it was fitted on.
        ties: 'half' | 'rao-kupper' | 'davidson'.
        theta: float64 array (n_models,), log-strengths in natural-log odds units, mean zero
            (multiply by 400/ln 10 for Elo points).
        tie_param: k (log theta_RK or log nu) for the tie models, else None.
        loglik: maximised log-likelihood (pseudo-likelihood for 'half').
        hessian: array (m, m), Hessian of the log-likelihood at the optimum in the reduced
            parameters (theta without model ``ref``, then k); negative definite.
        meat: array (m, m), sum over votes of the outer products of per-vote scores (the
            middle of the sandwich).
        ref: index of the model whose theta was fixed during the fit.
        n_iter: Newton iterations used.
        prior: L2 penalty used (0 = plain maximum likelihood).
    """

    counts: PairCounts
    ties: str
    theta: np.ndarray
    tie_param: float | None
    loglik: float
    hessian: np.ndarray
    meat: np.ndarray
    ref: int
    n_iter: int
    prior: float = 0.0

    @property
    def models(self) -> tuple[str, ...]:
        return self.counts.models

    @one_blas_thread
    def covariance(self, robust: bool = True) -> np.ndarray:
        """Covariance of theta, shape (n_models, n_models), as if theta[ref] were fixed at 0.

        robust=True gives the sandwich H^-1 J H^-1 (valid for the 'half' pseudo-likelihood and
        under misspecification); False gives the inverse observed information -H^-1.
        Any contrast c @ theta with sum(c) = 0 has variance c @ V @ c whatever ``ref`` is.
        """
        n = self.counts.n_models
        Hinv = inv_spd(-self.hessian)
        # H^-1 J H^-1 with the product by J (a sparse Laplacian for a sparse comparison graph)
        # through _times_symmetric: one dense product instead of two
        V = _times_symmetric(Hinv, self.meat) @ Hinv if robust else Hinv
        keep = np.delete(np.arange(n), self.ref)
        full = np.zeros((n, n))
        full[np.ix_(keep, keep)] = V[: n - 1, : n - 1]
        return full

    @one_blas_thread
    def contrast_variances(self, c: np.ndarray, robust: bool = True) -> np.ndarray:
        """diag(A V A^T) for A = I - 1 c^T (an anchoring, see
        :meth:`openarena.ratings.scale.Anchor.weights`), V the covariance of theta.

        Parameters: c, shape (n_models,). Returns: shape (n_models,), logits^2.
        Equal to ``np.diag(A @ self.covariance(robust) @ A.T)`` but with one Cholesky inverse
        and, for a sparse comparison graph, a sparse product with the meat (a weighted graph
        Laplacian): O(n^3 / 3 + n * nnz) instead of four dense n^3 products, so 2,000 models
        take a fraction of a second.
        """
        n = self.counts.n_models
        m1 = n - 1
        Hinv = inv_spd(-self.hessian)
        keep = np.delete(np.arange(n), self.ref)
        if robust:
            # R: the rows of H^-1 for theta (the ref row is 0), all parameters; u = R^T c.
            # diag(A R J R^T A^T)_i = (R J R^T)_ii - 2 (R J u)_i + u J u, with one sparse product
            # G = R J (no (n, m) copies of R)
            R = Hinv[:m1]
            u = c[keep] @ R
            G = _times_symmetric(R, self.meat)
            Ju = self.meat @ u
            out = np.full(n, float(u @ Ju))
            out[keep] += np.einsum("ij,ij->i", G, R) - 2.0 * (R @ Ju)
            return out
        V = np.zeros((n, n))
        V[np.ix_(keep, keep)] = Hinv[:m1, :m1]
        W = V - (c @ V)[None, :]  # A V; diag(A V A^T)_i = W_ii - (W c)_i
        return np.diagonal(W) - W @ c

    def tie_param_se(self, robust: bool = True) -> float | None:
        """Standard error of the tie parameter k (None for 'half')."""
        if self.tie_param is None:
            return None
        Hinv = inv_spd(-self.hessian)
        row = Hinv[-1]
        return float(np.sqrt(row @ self.meat @ row if robust else row[-1]))


#: From this size on, solves and inverses of -H use Cholesky (scipy.linalg); below, numpy's LU
#: (microseconds at this size, and no scipy import at start-up).
_CHOLESKY_FROM = 300


def _load_lapack(n_models: int) -> None:
    """Import scipy.linalg (and so load its own OpenBLAS) when a model of this size will use it,
    before a ``threadpool_limits`` block: the limit applies only to the BLAS libraries loaded
    when the block starts, and a library loaded inside runs on every core (at 2,000 models the
    first Cholesky inverse then took 2 s of CPU instead of 0.3 s)."""
    if n_models >= _CHOLESKY_FROM:
        import scipy.linalg  # noqa: F401


def inv_spd(M: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix by Cholesky (LAPACK potrf/potri: a third
    of the flops of an LU inverse); falls back to ``np.linalg.inv`` if M is not positive
    definite. Shape (m, m) -> (m, m), symmetric."""
    if M.shape[0] < _CHOLESKY_FROM:
        return np.linalg.inv(M)
    from scipy.linalg import lapack

    c, info = lapack.dpotrf(M, lower=False)
    if info == 0:
        inv, info = lapack.dpotri(c, lower=False)
        if info == 0:
            upper = np.triu(inv)
            return upper + np.triu(inv, 1).T
    return np.linalg.inv(M)


def _times_symmetric(W: np.ndarray, S: np.ndarray) -> np.ndarray:
    """W @ S for a symmetric S, through a sparse S when it is mostly zeros (the meat of a
    sparse comparison graph) and large enough for that to pay."""
    m = S.shape[0]
    if m >= 300:
        nnz = np.count_nonzero(S)
        if nnz < 0.05 * m * m:
            from scipy.sparse import csr_matrix

            return np.asarray((csr_matrix(S) @ W.T).T)
    return W @ S


def _solve_newton(negH: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve -H step = g for a batch (R, m, m), (R, m) -> (R, m): Cholesky for one table (-H is
    positive definite when the MLE exists), batched LU otherwise.
    Raises: np.linalg.LinAlgError for a singular system."""
    if len(negH) == 1 and negH.shape[-1] >= _CHOLESKY_FROM:
        from scipy.linalg import LinAlgError as ScipyLinAlgError, cho_factor, cho_solve

        try:
            factor = cho_factor(negH[0], lower=False, check_finite=False)
            return cho_solve(factor, g[0], check_finite=False)[None]
        except ScipyLinAlgError:
            pass
    return np.linalg.solve(negH, g[..., None])[..., 0]


#: From this many models on, Newton steps are solved by conjugate gradients on the pair
#: Laplacian (O(n_pairs) per product) instead of a dense factorisation (O(n_models^3)).
_SPARSE_FROM = 300
#: Relative residual at which the conjugate gradients stop; far below what the Newton
#: iteration needs (its steps shrink quadratically to 1e-11 logits whatever the last digits).
_CG_RTOL = 1e-13
_CG_MAXITER = 2000


@dataclass
class _PairHessian:
    """The negative Hessian of the reduced parameters without its dense (m, m) form, for a batch
    of R tables: ``w`` (R, n_pairs) pair weights >= 0 of the Laplacian block (minus the second
    derivative in s, summed over each pair's votes), ``prior`` on its diagonal; for the tie
    models ``b`` (R, m1), the theta-k column, and ``d`` (R,), the k-k entry."""

    w: np.ndarray
    b: np.ndarray | None = None
    d: np.ndarray | None = None

    def take(self, idx: np.ndarray) -> "_PairHessian":
        return _PairHessian(self.w[idx], None if self.b is None else self.b[idx], None if self.d is None else self.d[idx])

    def put(self, idx: np.ndarray, other: "_PairHessian") -> None:
        self.w[idx] = other.w
        if self.b is not None:
            self.b[idx] = other.b
            self.d[idx] = other.d

    def __len__(self) -> int:
        return len(self.w)


def _pcg(matvec, rhs: np.ndarray, precond, rtol: float = _CG_RTOL, maxiter: int = _CG_MAXITER) -> np.ndarray | None:
    """Preconditioned conjugate gradients for R symmetric positive definite systems at once.

    matvec and precond map (R, m) -> (R, m); rhs (R, m). Returns the solutions (R, m), or None
    when some system has not reached ||residual|| <= rtol ||rhs|| in ``maxiter`` iterations.
    Source: Hestenes & Stiefel (1952); Saad (2003), "Iterative methods for sparse linear
    systems", algorithm 9.1."""
    x = np.zeros_like(rhs)
    r = rhs.copy()
    goal = rtol * np.sqrt((rhs * rhs).sum(axis=1))
    active = np.sqrt((r * r).sum(axis=1)) > goal
    if not active.any():
        return x
    z = precond(r)
    p = z.copy()
    rz = (r * z).sum(axis=1)
    for _ in range(maxiter):
        Ap = matvec(p)
        pAp = (p * Ap).sum(axis=1)
        alpha = np.where(active, rz / np.where(active, pAp, 1.0), 0.0)
        x += alpha[:, None] * p
        r -= alpha[:, None] * Ap
        active &= np.sqrt((r * r).sum(axis=1)) > goal
        if not active.any():
            return x
        z = precond(r)
        rz_new = (r * z).sum(axis=1)
        beta = np.where(active, rz_new / np.where(active, rz, 1.0), 0.0)
        p = z + beta[:, None] * p
        rz = rz_new
    return None


def _win_edges(counts: PairCounts) -> tuple[np.ndarray, np.ndarray]:
    """Edges (rows, cols) of the directed graph with i -> j when i has a positive score against
    j (a win or a tie)."""
    c = counts.counts
    i, j = counts.pairs[:, 0], counts.pairs[:, 1]
    tie = c[:, 2] + c[:, 3]
    fwd = (c[:, 0] + tie) > 0
    bwd = (c[:, 1] + tie) > 0
    return np.concatenate([i[fwd], j[bwd]]), np.concatenate([j[fwd], i[bwd]])


def _win_graph(counts: PairCounts):
    """The win graph as a scipy csr matrix; returns (matrix, edge rows, edge cols)."""
    from scipy.sparse import coo_matrix

    n = counts.n_models
    rows, cols = _win_edges(counts)
    g = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    return g, rows, cols


def _reaches_all(n: int, src: np.ndarray, dst: np.ndarray) -> bool:
    """True when every node is reachable from node 0 along the edges src -> dst (breadth-first,
    one vectorised pass over the edges per level)."""
    reached = np.zeros(n, dtype=bool)
    reached[0] = True
    count = 1
    while True:
        step = dst[reached[src]]
        reached[step] = True
        new = int(reached.sum())
        if new == n:
            return True
        if new == count:
            return False
        count = new


def strongly_connected(counts: PairCounts) -> bool:
    """True when the win graph is strongly connected, i.e. the MLE exists (every model reaches
    every other along wins and ties, and is reached by them). Plain numpy, so that the usual
    case needs no scipy at start-up; the diagnosis of the other case uses scipy.sparse.csgraph.
    Source: Ford (1957); Hunter (2004), Assumption 1."""
    n = counts.n_models
    if n <= 1:
        return True
    rows, cols = _win_edges(counts)
    return _reaches_all(n, rows, cols) and _reaches_all(n, cols, rows)


def unrated_models(counts: PairCounts) -> dict[str, str]:
    """Models without a finite Bradley-Terry rating relative to the main group.

    The main group is the largest strongly connected component of the win graph (edge i -> j
    when i won or tied against j). Returns {model: reason} for the others, reason being
    'never lost or tied against the main group', 'never won or tied against the main group',
    or 'never battled the main group'. Empty when the MLE exists.
    Source: Ford (1957); Hunter (2004), Assumption 1.
    """
    if strongly_connected(counts):
        return {}
    from scipy.sparse.csgraph import connected_components

    n = counts.n_models
    g, rows, cols = _win_graph(counts)
    n_strong, strong = connected_components(g, directed=True, connection="strong")
    if n_strong <= 1:
        return {}
    per_model = counts.num_battles()
    main = int(np.argmax(np.bincount(strong, weights=per_model + 1e-9, minlength=n_strong)))
    in_main = strong == main
    beats_main = np.zeros(n, bool)  # has an edge into the main group
    beaten_by_main = np.zeros(n, bool)
    e_into = in_main[cols] & ~in_main[rows]
    beats_main[rows[e_into]] = True
    e_from = in_main[rows] & ~in_main[cols]
    beaten_by_main[cols[e_from]] = True
    out = {}
    for k in np.flatnonzero(~in_main):
        if beats_main[k] and not beaten_by_main[k]:
            reason = "never lost or tied against the main group"
        elif beaten_by_main[k] and not beats_main[k]:
            reason = "never won or tied against the main group"
        elif not beats_main[k] and not beaten_by_main[k]:
            reason = "never battled the main group"
        else:
            reason = "only connected to the main group through unrated models"
        out[counts.models[k]] = reason
    return out


def check_identifiable(counts: PairCounts, ties: str = "half") -> None:
    """Raise if the maximum-likelihood estimate does not exist.

    The comparison graph must be connected (else ratings of its parts are not comparable) and,
    with an edge i -> j whenever i has a positive score against j (a win, or a tie), strongly
    connected (else some model beats a group it never loses to and its rating is infinite).
    Raises: DataError (disconnected) or ConvergenceError (no finite MLE), naming the models
    outside the main group and why.
    Source: Ford (1957); Hunter (2004), Assumption 1.
    """
    if strongly_connected(counts):
        return
    from scipy.sparse.csgraph import connected_components

    g, _, _ = _win_graph(counts)
    n_weak, weak = connected_components(g, directed=True, connection="weak")
    if n_weak > 1:
        sizes = np.bincount(weak)
        small = np.argsort(sizes)[0]
        names = [counts.models[k] for k in np.flatnonzero(weak == small)][:5]
        raise DataError(
            f"the battles split into {n_weak} groups that never meet; e.g. {', '.join(names)} "
            "never battle the rest, so their ratings cannot be compared",
            counts.source,
            field="model_a/model_b",
            expected="a connected comparison graph (leave models out: min_battles=N or exclude=MODEL)",
        )
    bad = unrated_models(counts)
    if bad:
        items = list(bad.items())
        shown = "; ".join(f"{m} {why}" for m, why in items[:4]) + (f"; and {len(items) - 4} more" if len(items) > 4 else "")
        raise ConvergenceError(
            f"{counts.source + ': ' if counts.source else ''}no finite Bradley-Terry estimate: {shown}; "
            "leave them out (exclude=MODEL, min_battles=N or drop_unrated=True) or use a prior (prior=0.01 or more)"
        )


class _Problem:
    """Reduced-parameter log-likelihood, gradient and Hessian for a batch of count tables.

    Reduced parameters x (R, m): theta without entry ``ref`` (m = n_models - 1), then k for
    the tie models.
    """

    def __init__(self, counts: PairCounts, ties: str, ref: int, prior: float = 0.0, sparse: bool | None = None):
        if ties not in TIE_MODELS:
            raise ValueError(f"unknown tie model {ties!r}; expected one of {TIE_MODELS}")
        self.n = n = counts.n_models
        self.i, self.j = counts.pairs[:, 0], counts.pairs[:, 1]
        self.ties = ties
        self.has_k = ties != "half"
        self.ref = ref
        self.keep = np.delete(np.arange(n), ref)
        self.prior = prior
        #: Newton systems by conjugate gradients on the pair Laplacian (see _PairHessian)
        self.sparse = n >= _SPARSE_FROM if sparse is None else bool(sparse)
        self._csr_order = None  # the CSR pattern of the pair Laplacian, built on first use
        m = n - 1
        # reduced index of each model; the reference model goes to a trash slot
        red = np.full(n, -1)
        red[self.keep] = np.arange(m)
        ri, rj = red[self.i], red[self.j]
        trash = m * m
        def flat(a, b):
            return np.where((a < 0) | (b < 0), trash, a * m + b)
        self.scatter_pos = np.concatenate([flat(ri, ri), flat(rj, rj), flat(ri, rj), flat(rj, ri)])
        self.scatter_sign = np.repeat([1.0, 1.0, -1.0, -1.0], len(ri))
        # The incidence matrix D (n_pairs x m: +1 at i, -1 at j) is never formed: at 2,000
        # models and 54k pairs it is 824 MiB. Products v @ D are two bincounts (_incidence).

    def _incidence(self, v: np.ndarray) -> np.ndarray:
        """v @ D for v of shape (R, n_pairs): per table, sum_p v[r, p] (e_i - e_j) in reduced
        coordinates, shape (R, m). Cost O(R n_pairs), memory O(R n_models)."""
        R, P = v.shape
        n = self.n
        off = (np.arange(R) * n)[:, None]
        total = np.bincount((self.i + off).ravel(), v.ravel(), R * n)
        total -= np.bincount((self.j + off).ravel(), v.ravel(), R * n)
        return total.reshape(R, n)[:, self.keep]

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Reduced parameters (R, m) -> theta (R, n) with theta[ref] = 0, and k (R,)."""
        R = x.shape[0]
        theta = np.zeros((R, self.n))
        theta[:, self.keep] = x[:, : self.n - 1]
        k = x[:, -1] if self.has_k else None
        return theta, k

    def sums(self, x: np.ndarray, C: np.ndarray, order: int = 2, meat: bool = False) -> PairSums:
        theta, k = self.split(x)
        s = theta[:, self.i] - theta[:, self.j]
        return pair_sums(self.ties, s, k, C, order, meat)

    def evaluate(self, x: np.ndarray, C: np.ndarray, order: int = 2, sparse: bool = False):
        """Log-likelihood (R,), and for order >= 1 gradient (R, m), for order 2 Hessian (R, m, m)
        (sparse=True: the negative Hessian as a :class:`_PairHessian`, never formed densely).

        C: counts, shape (R, n_pairs, 4).
        """
        ps = self.sums(x, C, order)
        m1 = self.n - 1
        xt = x[:, :m1]
        ll = ps.ll
        if self.prior:
            ll = ll - 0.5 * self.prior * (xt**2).sum(axis=1)
        if order == 0:
            return ll, None, None
        R, m = x.shape
        grad = np.empty((R, m))
        grad[:, :m1] = self._incidence(ps.g_s)
        if self.prior:
            grad[:, :m1] -= self.prior * xt
        if self.has_k:
            grad[:, -1] = ps.g_k
        if order == 1:
            return ll, grad, None
        if sparse:
            if self.has_k:
                return ll, grad, _PairHessian(-ps.h_ss, -self._incidence(ps.h_sk), -np.asarray(ps.h_kk, dtype=float))
            return ll, grad, _PairHessian(-ps.h_ss)
        H = np.empty((R, m, m))
        H[:, :m1, :m1] = self._laplacian(ps.h_ss)
        if self.prior:
            H[:, np.arange(m1), np.arange(m1)] -= self.prior
        if self.has_k:
            H[:, :m1, -1] = self._incidence(ps.h_sk)
            H[:, -1, :m1] = H[:, :m1, -1]
            H[:, -1, -1] = ps.h_kk
        return ll, grad, H

    def dense_hessian(self, H: "np.ndarray | _PairHessian") -> np.ndarray:
        """The Hessian (R, m, m) of a :class:`_PairHessian` (a dense one is returned as is)."""
        if not isinstance(H, _PairHessian):
            return H
        R = len(H)
        m1 = self.n - 1
        m = m1 + self.has_k
        out = np.empty((R, m, m))
        out[:, :m1, :m1] = self._laplacian(-H.w)
        if self.prior:
            out[:, np.arange(m1), np.arange(m1)] -= self.prior
        if self.has_k:
            out[:, :m1, -1] = -H.b
            out[:, -1, :m1] = -H.b
            out[:, -1, -1] = -H.d
        return out

    def _laplacian_operator(self, w: np.ndarray, deg: np.ndarray):
        """v -> (L(w) + prior I) v in reduced coordinates for R tables at once: w (R, n_pairs)
        pair weights, deg (R, n_models) their row sums; v (R, n_models - 1) -> same shape.
        L(w) is assembled once as a block-diagonal scipy CSR matrix (R n_models square, R (2
        n_pairs + n_models) entries; the sparsity pattern is computed once per problem), so a
        product is one sparse matrix-vector product."""
        from scipy.sparse import csr_matrix

        n, R = self.n, len(w)
        if self._csr_order is None:
            rows = np.concatenate([self.i, self.j, np.arange(n)])
            cols = np.concatenate([self.j, self.i, np.arange(n)])
            self._csr_order = order = np.lexsort((cols, rows))
            self._csr_cols = cols[order]
            self._csr_rowlen = np.bincount(rows, minlength=n)
        data = np.concatenate([-w, -w, deg], axis=1)[:, self._csr_order]
        indices = (self._csr_cols[None, :] + (np.arange(R) * n)[:, None]).ravel()
        indptr = np.concatenate([[0], np.cumsum(np.tile(self._csr_rowlen, R))])
        L = csr_matrix((data.ravel(), indices, indptr), shape=(R * n, R * n))
        keep, prior = self.keep, self.prior

        def matvec(v: np.ndarray) -> np.ndarray:
            full = np.zeros((len(v), n))
            full[:, keep] = v
            out = (L @ full.ravel()).reshape(len(v), n)[:, keep]
            if prior:
                out += prior * v
            return out

        return matvec

    def solve_sparse(self, H: _PairHessian, g: np.ndarray, rtol: float = _CG_RTOL) -> np.ndarray | None:
        """Solve -H step = g (R, m) by preconditioned conjugate gradients; None if they do not
        converge (the caller then factorises the dense Hessian).

        The theta block A = L(w) + prior I is a grounded weighted Laplacian. Preconditioner:
        its diagonal plus a coarse correction along the all-ones vector (the slow mode that
        holding model ``ref`` at 0 creates), 1 1^T / (1^T A 1): an additive two-level
        preconditioner, symmetric positive definite. The tie parameter is eliminated by its
        Schur complement: A u = g_theta and A v = b (one batch of 2R systems), then
        step_k = (g_k - b.u) / (d - b.v) and step_theta = u - v step_k.
        Source: Saad (2003), ch. 9-10 (preconditioned CG, two-level preconditioners)."""
        R = len(g)
        m1 = self.n - 1
        w = H.w
        rhs = g[:, :m1]
        if self.has_k:
            w = np.concatenate([w, w])
            rhs = np.concatenate([rhs, H.b])
        n = self.n
        off = (np.arange(len(w)) * n)[:, None]
        deg = np.bincount((self.i + off).ravel(), w.ravel(), len(w) * n) + np.bincount((self.j + off).ravel(), w.ravel(), len(w) * n)
        deg = deg.reshape(len(w), n)
        diag = deg[:, self.keep] + self.prior
        if not (diag > 0).all():
            return None
        inv_diag = 1.0 / diag
        # 1^T A 1: the weights of the pairs with the reference model, plus the prior
        ones_a_ones = deg[:, self.ref] + self.prior * m1

        def precond(r):
            return r * inv_diag + (r.sum(axis=1) / ones_a_ones)[:, None]

        sol = _pcg(self._laplacian_operator(w, deg), rhs, precond, rtol=rtol)
        if sol is None or not np.isfinite(sol).all():
            return None
        if not self.has_k:
            return sol
        u, v = sol[:R], sol[R:]
        b = H.b
        schur = H.d - (b * v).sum(axis=1)
        step_k = (g[:, -1] - (b * u).sum(axis=1)) / schur
        step = np.empty_like(g)
        step[:, :m1] = u - v * step_k[:, None]
        step[:, -1] = step_k
        return step

    def _laplacian(self, v: np.ndarray) -> np.ndarray:
        """sum_p v[r, p] (e_i - e_j)(e_i - e_j)^T for each r, in reduced coordinates (R, m, m)."""
        R = v.shape[0]
        m = self.n - 1
        size = m * m + 1  # one trash slot per table for entries of the reference model
        w = np.tile(v, 4) * self.scatter_sign
        pos = self.scatter_pos + (np.arange(R) * size)[:, None]
        full = np.bincount(pos.ravel(), w.ravel(), R * size).reshape(R, size)
        return full[:, : m * m].reshape(R, m, m)

    def meat(self, x: np.ndarray, C: np.ndarray) -> np.ndarray:
        """Sum over votes of score outer products, shape (m, m), for one table (R = 1)."""
        ps = self.sums(x, C, order=1, meat=True)
        m1 = self.n - 1
        m = x.shape[1]
        J = np.zeros((m, m))
        J[:m1, :m1] = self._laplacian(ps.j_ss)[0]
        if self.has_k:
            j_sk = self._incidence(ps.j_sk)[0]
            J[:m1, -1] = j_sk
            J[-1, :m1] = j_sk
            J[-1, -1] = ps.j_kk[0]
        return J


def _newton(problem: _Problem, x0: np.ndarray, C: np.ndarray, max_iter: int = MAX_ITER, tol: float = STEP_TOL):
    """Damped Newton ascent for a batch, until the largest step is below ``tol`` logits.
    Returns (x (R, m), loglik (R,), H (R, m, m) or, for a sparse problem, a _PairHessian (see
    :meth:`_Problem.dense_hessian`), iters)."""
    x = x0.copy()
    sparse = problem.sparse
    ll, g, H = problem.evaluate(x, C, sparse=sparse)
    if not np.all(np.isfinite(ll)):
        raise ConvergenceError("the starting point has an infinite log-likelihood")
    active = np.ones(len(x), bool)
    g0 = max(float(np.abs(g).max()), 1e-300)
    for it in range(1, max_iter + 1):
        idx = np.flatnonzero(active)
        step = None
        if sparse:
            # inexact Newton (Eisenstat & Walker 1996): far from the optimum a rough step does
            # as well; the tolerance falls with the gradient, to _CG_RTOL at the end
            rtol = max(_CG_RTOL, min(1e-2, float(np.abs(g[idx]).max()) / g0))
            step = problem.solve_sparse(H.take(idx), g[idx], rtol)
        if step is None:
            try:
                Hd = problem.dense_hessian(H.take(idx)) if sparse else H[idx]
                step = _solve_newton(-Hd, g[idx])
            except np.linalg.LinAlgError:
                raise ConvergenceError("singular Hessian: the comparison graph is not identifiable") from None
        t = np.ones(len(idx))
        new_x = x[idx] + step
        new_ll, _, _ = problem.evaluate(new_x, C[idx], order=0)
        for _ in range(60):
            bad = ~(new_ll >= ll[idx] - 1e-12 * np.abs(ll[idx]))
            if not bad.any():
                break
            t[bad] /= 2
            new_x[bad] = x[idx][bad] + t[bad, None] * step[bad]
            new_ll[bad] = problem.evaluate(new_x[bad], C[idx][bad], order=0)[0]
        x[idx] = new_x
        size = np.abs(t[:, None] * step).max(axis=1)
        ll_i, g_i, H_i = problem.evaluate(x[idx], C[idx], sparse=sparse)
        ll[idx], g[idx] = ll_i, g_i
        if sparse:
            H.put(idx, H_i)
        else:
            H[idx] = H_i
        done = size < tol
        active[idx[done]] = False
        if not active.any():
            return x, ll, H, it
    worst = float(np.abs(g[active]).max())
    raise ConvergenceError(
        f"Newton's method did not converge in {max_iter} iterations (largest gradient {worst:.3g}); "
        "the maximum-likelihood estimate may not exist"
    )


def fit_bradley_terry(
    data: PairCounts | BattleTable,
    *,
    ties: str = "half",
    prior: float = 0.0,
    ref: int | None = None,
) -> BTFit:
    """Maximum-likelihood Bradley-Terry strengths from battle outcomes.

    Parameters:
        data: PairCounts (n_pairs, 4) or a BattleTable (aggregated first).
        ties: 'half' (ties and tie (bothbad) count as half a win each, the FastChat and
            arena-rank convention), 'rao-kupper' or 'davidson' (see :mod:`.ties`).
        prior: L2 penalty on theta, 0.5 * prior * ||theta||^2 subtracted from the
            log-likelihood (0 = plain MLE, the default).
        ref: model index held at 0 during the fit (default: the most-battled model, which
            gives the best-conditioned reduced Hessian). The result does not depend on it.
    Returns: BTFit, theta of shape (n_models,) with mean zero, in logits.
    Raises: DataError if the comparison graph is disconnected; ConvergenceError if the MLE does
        not exist (prior = 0) or Newton's method fails.
    Source: Bradley & Terry (1952); Rao & Kupper (1967); Davidson (1970).
    """
    counts = as_pair_counts(data)
    if counts.n_models < 2:
        raise DataError(f"{counts.n_models} model(s) in the data", counts.source, expected="at least two models")
    if prior == 0:
        check_identifiable(counts, ties)
    if ref is None:
        ref = int(np.argmax(counts.num_battles()))
    problem = _Problem(counts, ties, ref, prior)
    m = counts.n_models - 1 + problem.has_k
    x0 = np.zeros((1, m))
    if problem.has_k:
        tie_rate = counts.counts[:, 2:].sum() / max(counts.total, 1.0)
        x0[0, -1] = initial_tie_param(ties, tie_rate)
    C = counts.counts[None]
    # small (n_models-square) solves: one BLAS thread is faster and does not stall when the
    # other core is busy
    _load_lapack(counts.n_models)
    with threadpool_limits(limits=1, user_api="blas"):
        x, ll, H, iters = _newton(problem, x0, C)
        H = problem.dense_hessian(H)
        meat = problem.meat(x, C)
    theta, k = problem.split(x)
    shift = theta[0].mean()
    return BTFit(
        counts=counts,
        ties=ties,
        theta=theta[0] - shift,
        tie_param=None if k is None else float(k[0]),
        loglik=float(ll[0]),
        hessian=H[0],
        meat=meat,
        ref=ref,
        n_iter=iters,
        prior=prior,
    )


def fit_bradley_terry_batch(
    fit: BTFit, tables: np.ndarray, *, check: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Refit ``fit``'s model on R other count tables over the same pairs (e.g. bootstrap
    resamples), all at once, warm-started at ``fit``.

    Parameters: fit, a BTFit; tables, float array of shape (R, n_pairs, 4) aligned with
    ``fit.counts.pairs``; check, test each table for a finite MLE first.
    Returns: (theta, k): theta of shape (R, n_models), mean zero per row; k of shape (R,) or None.
    Raises: ConvergenceError naming the first table without a finite MLE.
    """
    counts = fit.counts
    if check and fit.prior == 0:
        for r, table in enumerate(tables):
            try:
                check_identifiable(PairCounts(counts.models, counts.pairs, table, counts.source), fit.ties)
            except (ConvergenceError, DataError) as err:
                raise ConvergenceError(f"resample {r}: {err}") from None
    problem = _Problem(counts, fit.ties, fit.ref, fit.prior)
    theta0 = fit.theta - fit.theta[fit.ref]
    x0 = np.delete(theta0, fit.ref)
    if problem.has_k:
        x0 = np.append(x0, fit.tie_param)
    x0 = np.repeat(x0[None], len(tables), axis=0)
    x, _, _, _ = _newton(problem, x0, np.asarray(tables, dtype=float))
    theta, k = problem.split(x)
    return theta - theta.mean(axis=1, keepdims=True), k


class BatchRefitter:
    """Refit one model on many count tables over the same pairs, each warm-started at its own
    previous estimate: the sequential simulations of :mod:`openarena.analysis.vote_budget`
    refit R arenas every few hundred votes with a few vectorised Newton steps.

    Parameters: template, PairCounts giving models and pairs (its counts are not used);
    ties, 'half' | 'rao-kupper' | 'davidson'; prior, L2 penalty (0 = maximum likelihood: the
    caller must pass identifiable tables, see :func:`check_identifiable`); ref, the model held
    at 0 during the fit; tol, Newton stops when the largest step is below it (logits; 1e-8 is
    2e-6 Elo points, far below any interval). BLAS threads are the caller's business (the
    simulator holds them to one around its whole loop: ``threadpool_limits`` costs milliseconds
    per call).
    """

    def __init__(self, template: PairCounts, *, ties: str = "half", prior: float = 0.0, ref: int = 0, tol: float = 1e-8) -> None:
        self.problem = _Problem(template, ties, ref, prior)
        self.n = template.n_models
        self.ref = ref
        self.tol = tol

    def fit(self, tables: np.ndarray, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fit R tables (float, shape (R, n_pairs, 4)) starting from ``start`` (R, n_models)
        log-strengths (default zeros).

        Returns: (theta, cov): theta (R, n_models), mean zero per row, in logits; cov (R, n, n),
        the sandwich covariance H^-1 J H^-1 of theta with theta[ref] fixed (as
        :meth:`BTFit.covariance`; any contrast with zero sum has the right variance).
        Raises: ConvergenceError if Newton's method fails (e.g. a table without a finite MLE
        and prior 0).
        """
        tables = np.asarray(tables, dtype=float)
        R = len(tables)
        pb = self.problem
        if pb.has_k:
            raise ValueError("BatchRefitter supports ties='half' only")
        keep = pb.keep
        if start is None:
            x0 = np.zeros((R, self.n - 1))
        else:
            start = np.asarray(start, dtype=float)
            x0 = (start - start[:, [self.ref]])[:, keep]
        x, _, H, _ = _newton(pb, x0, tables, tol=self.tol)
        H = pb.dense_hessian(H)
        ps = pb.sums(x, tables, order=1, meat=True)
        J = pb._laplacian(ps.j_ss)
        Hinv = np.linalg.inv(-H)
        V = Hinv @ J @ Hinv
        theta, _ = pb.split(x)
        cov = np.zeros((R, self.n, self.n))
        cov[:, keep[:, None], keep[None, :]] = V
        return theta - theta.mean(axis=1, keepdims=True), cov
