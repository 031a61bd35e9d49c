"""Extended Bradley-Terry for the red-team arena: players, models and targets rated jointly.

A round is a game between a player and a model on a target: the player wins when the model
fails the target (says the phrase, leaks the secret). The model is

    P(player p wins against model m on target t) = sigma(skill_p - robustness_m - difficulty_t)

a logistic regression whose design has +1 for the player and -1 for the model and the target.
The likelihood is a sum over distinct (player, model, target) cells, so a fit costs
O(n_cells + n_params^3) per Newton iteration whatever the number of rounds.

Identification: adding c to every skill and every robustness (or every difficulty) leaves the
probabilities unchanged, so robustness and difficulty are reported with mean zero and skills
absorb the level: a player with skill 0 wins half the time against the average model on the
average target.

Players with few rounds (three wins out of three has an infinite maximum-likelihood skill) get a
Gaussian prior N(mu, tau^2) on skills (a random effect), the level mu profiled out of the
penalised fit, (mu, tau) chosen by empirical Bayes: the marginal likelihood of the players'
rounds given the models' and targets' estimates, one-dimensional integrals by adaptive
Gauss-Hermite quadrature (the Laplace approximation underestimates tau for binary outcomes with
few rounds per player, and its intervals then under-cover); intervals are then
the Laplace posterior ones (inverse of the penalised information), which cover the true skills at
their nominal rate averaged over players, new players included. With ``player_prior=0`` the fit
is plain maximum likelihood with sandwich intervals, as the other Bradley-Terry fits.

Source: LMArena, "RedTeam Arena" (blog, 2024-09-13), the "extended Bradley-Terry" with player,
model and target strengths; RedTeam Arena's public code fits the same logistic model by one pass
of online gradient descent in file order (:func:`online_extended_bt` does it in time order).
Bradley & Terry (1952); empirical Bayes with the Laplace approximation: Tierney & Kadane (1986),
Breslow & Clayton (1993); Liu & Pierce (1994).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from threadpoolctl import threadpool_limits

from openarena.data.rounds import RoundCounts, RoundTable, aggregate_rounds
from openarena.errors import ConvergenceError, DataError
from openarena.ratings.scale import INIT_RATING, POINTS_PER_LOGIT

def log_expit(x: np.ndarray) -> np.ndarray:
    """log sigma(x), stable for any x: min(x, 0) - log1p(exp(-|x|)) (a few times faster than
    scipy.special.log_expit here, and the inner loop of the empirical-Bayes fit)."""
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


STEP_TOL = 1e-11
MAX_ITER = 200
KINDS = ("player", "model", "target")
TAU_BOUNDS = (0.02, 20.0)  # logits: the range searched for the player prior's sd


@dataclass(frozen=True)
class ExtendedBTFit:
    """A fitted extended Bradley-Terry model.

    Attributes:
        counts: the RoundCounts it was fitted on.
        skill: float array (n_players,), player skills in logits.
        robustness: float array (n_models,), model robustness in logits, mean zero.
        difficulty: float array (n_targets,), target difficulty in logits, mean zero.
        loglik: log-likelihood at the estimate (without the prior term).
        player_prior: lambda = 1 / tau^2 of the prior on skills (0 = maximum likelihood).
        cov_model: (n, n) covariance of (skill, robustness, difficulty) from the (penalised)
            information, n = n_players + n_models + n_targets.
        cov_robust: (n, n) sandwich covariance H^-1 J H^-1.
        n_iter: Newton iterations of the final fit.
        prior_mean: mu of the player prior (logits; nan without a prior).
    """

    counts: RoundCounts
    skill: np.ndarray
    robustness: np.ndarray
    difficulty: np.ndarray
    loglik: float
    player_prior: float
    cov_model: np.ndarray
    cov_robust: np.ndarray
    n_iter: int
    prior_mean: float = float("nan")

    @property
    def tau(self) -> float:
        """Prior sd of player skills in logits (inf without a prior)."""
        return math.inf if self.player_prior == 0 else 1.0 / math.sqrt(self.player_prior)

    @property
    def params(self) -> np.ndarray:
        """(skill, robustness, difficulty) concatenated, shape (n,), logits."""
        return np.concatenate([self.skill, self.robustness, self.difficulty])

    def names(self) -> list[tuple[str, str]]:
        """(kind, name) of each entry of :attr:`params`."""
        c = self.counts
        return [("player", p) for p in c.players] + [("model", m) for m in c.models] + [("target", t) for t in c.targets]

    def covariance(self, robust: bool | None = None) -> np.ndarray:
        """Covariance of :attr:`params`, shape (n, n), logits^2.

        robust=None (default) gives the sandwich without a player prior and the Laplace posterior
        covariance with one (the interval that covers random-effect skills); True / False force
        the sandwich / the inverse (penalised) information.
        """
        if robust is None:
            robust = self.player_prior == 0
        return self.cov_robust if robust else self.cov_model

    def skill_intervals(self, level: float = 0.95) -> np.ndarray:
        """Equal-tailed intervals of the player skills, shape (n_players, 2), logits.

        With a player prior: quantiles of each player's exact one-dimensional posterior (given
        the models' and targets' estimates and the prior), computed on a grid; these stay
        calibrated for players with a handful of rounds, where the posterior is skewed. Without a
        prior: Wald intervals from the sandwich covariance.
        Raises: DataError for a level outside (0, 1).
        """
        if not 0 < level < 1:
            raise DataError(f"level {level!r}", field="level", expected="a number strictly between 0 and 1")
        from scipy.stats import norm

        P = len(self.skill)
        if self.player_prior == 0:
            se = np.sqrt(np.diag(self.cov_robust)[:P])
            z = norm.ppf(0.5 + level / 2)
            return np.column_stack([self.skill - z * se, self.skill + z * se])
        c = self.counts
        offset = self.robustness[c.cells[:, 1]] + self.difficulty[c.cells[:, 2]]
        p = c.cells[:, 0]
        w, n = c.wins, c.wins + c.losses
        sd = np.sqrt(np.diag(self.cov_model)[:P])
        grid = self.skill[None, :] + sd[None, :] * np.linspace(-9, 9, 721)[:, None]  # (G, P)
        logpost = np.empty_like(grid)
        for g in range(grid.shape[0]):
            eta = grid[g][p] - offset
            logpost[g] = np.bincount(p, w * log_expit(eta) + (n - w) * log_expit(-eta), P)
        logpost -= 0.5 * self.player_prior * (grid - self.prior_mean) ** 2
        dens = np.exp(logpost - logpost.max(axis=0))
        cdf = np.cumsum((dens[1:] + dens[:-1]) / 2, axis=0)
        cdf = np.vstack([np.zeros(P), cdf]) / cdf[-1]
        lo, hi = (1 - level) / 2, (1 + level) / 2
        out = np.empty((P, 2))
        for k in range(P):
            out[k] = np.interp([lo, hi], cdf[:, k], grid[:, k])
        return out

    def win_probability(self, player: str, model: str, target: str) -> float:
        """P(player wins) for named entities. Raises KeyError for an unknown name."""
        c = self.counts
        eta = self.skill[c.players.index(player)] - self.robustness[c.models.index(model)] - self.difficulty[c.targets.index(target)]
        return float(expit(eta))


class _Design:
    """Sparse reduced design of the cells and the penalty of the player prior.

    Reduced parameters x: skills (P), robustness without model 0 (M - 1), difficulty without
    target 0 (T - 1). ``A`` maps x to the reported (skill, robustness, difficulty), centred.
    """

    def __init__(self, counts: RoundCounts):
        P, M, T = len(counts.players), len(counts.models), len(counts.targets)
        self.P, self.M, self.T = P, M, T
        C = len(counts.cells)
        p, m, t = counts.cells[:, 0], counts.cells[:, 1], counts.cells[:, 2]
        rows = np.concatenate([np.arange(C), np.arange(C), np.arange(C)])
        cols = np.concatenate([p, P + m, P + M + t])
        vals = np.concatenate([np.ones(C), -np.ones(C), -np.ones(C)])
        full = sp.csr_matrix((vals, (rows, cols)), shape=(C, P + M + T))
        self.keep = np.delete(np.arange(P + M + T), [P, P + M])  # model 0 and target 0 pinned at 0
        self.X = full[:, self.keep].tocsc().tocsr()
        self.n = len(self.keep)
        # centring: r' = r - mean r, d' = d - mean d, s' = s - mean r - mean d
        n_full = P + M + T
        B = np.eye(n_full)
        B[:P, P:P + M] -= 1.0 / M
        B[:P, P + M:] -= 1.0 / T
        B[P:P + M, P:P + M] -= 1.0 / M
        B[P + M:, P + M:] -= 1.0 / T
        self.A = B[:, self.keep]
        # penalty matrix of the prior on centred skills: s^T (I - 11^T / P) s
        self.Q = np.zeros((self.n, self.n))
        self.Q[:P, :P] = np.eye(P) - 1.0 / P

    def evaluate(self, x: np.ndarray, lam: float, wins: np.ndarray, trials: np.ndarray, order: int = 2):
        """Penalised log-likelihood, its gradient (n,) and Hessian (n, n) (order 0, 1, 2) for
        ``wins`` out of ``trials`` rounds per cell."""
        eta = self.X @ x
        losses = trials - wins
        ll = float(wins @ log_expit(eta) + losses @ log_expit(-eta))
        pen = 0.5 * lam * float(x @ self.Q @ x) if lam else 0.0
        if order == 0:
            return ll - pen, None, None
        p = expit(eta)
        g = self.X.T @ (wins - trials * p)
        if lam:
            g = g - lam * (self.Q @ x)
        if order == 1:
            return ll - pen, g, None
        w = trials * p * (1 - p)
        H = -(self.X.T @ sp.diags(w) @ self.X).toarray()
        if lam:
            H -= lam * self.Q
        return ll - pen, g, H

    def meat(self, x: np.ndarray, wins: np.ndarray, trials: np.ndarray) -> np.ndarray:
        """Sum over rounds of score outer products (the sandwich's middle), shape (n, n)."""
        p = expit(self.X @ x)
        v = wins * (1 - p) ** 2 + (trials - wins) * p**2
        return (self.X.T @ sp.diags(v) @ self.X).toarray()


def _newton(design: _Design, x0: np.ndarray, lam: float, wins: np.ndarray, trials: np.ndarray):
    """Damped Newton ascent. Returns (x, penalised loglik, Hessian, iterations)."""
    x = x0.copy()
    ll, g, H = design.evaluate(x, lam, wins, trials)
    for it in range(1, MAX_ITER + 1):
        try:
            step = np.linalg.solve(-H, g)
        except np.linalg.LinAlgError:
            raise ConvergenceError("singular information matrix: the red-team rounds do not identify every player, model and target (a disconnected game graph?)") from None
        t = 1.0
        for _ in range(60):
            new_ll = design.evaluate(x + t * step, lam, wins, trials, order=0)[0]
            if new_ll >= ll - 1e-12 * abs(ll):
                break
            t /= 2
        x = x + t * step
        ll, g, H = design.evaluate(x, lam, wins, trials)
        if np.abs(t * step).max() < STEP_TOL:
            return x, ll, H, it
        if np.abs(x).max() > 50:
            break
    raise ConvergenceError("the extended Bradley-Terry estimate does not exist (some player, model or target always wins or always loses); use a prior on player skills")


def _check_finite(counts: RoundCounts, lam: float) -> None:
    """Raise ConvergenceError naming entities whose maximum-likelihood value is infinite
    because all their rounds have one outcome (a necessary condition; players are exempt with a
    prior)."""
    bad = []
    for col, kind, names in ((0, "player", counts.players), (1, "model", counts.models), (2, "target", counts.targets)):
        if kind == "player" and lam > 0:
            continue
        size = len(names)
        w = np.bincount(counts.cells[:, col], weights=counts.wins, minlength=size)
        n = np.bincount(counts.cells[:, col], weights=counts.wins + counts.losses, minlength=size)
        for k in np.flatnonzero((w == 0) | (w == n)):
            bad.append(f"{kind} {names[k]!r} ({'won' if w[k] == n[k] else 'lost'} all {int(n[k])} rounds for the player)")
    if bad:
        shown = "; ".join(bad[:4]) + (f"; and {len(bad) - 4} more" if len(bad) > 4 else "")
        hint = "" if lam > 0 else "; use a prior on player skills (player_prior='auto')"
        raise ConvergenceError(f"{counts.source + ': ' if counts.source else ''}no finite extended Bradley-Terry estimate: {shown}{hint}")


def _player_marginal(counts: RoundCounts, offset: np.ndarray, mu: float, tau: float, nodes: int = 16, start: dict | None = None) -> float:
    """Log marginal likelihood of the skills' prior N(mu, tau^2) given every cell's
    robustness + difficulty ``offset`` (shape (n_cells,)): sum over players of
    log integral prod_rounds sigma(+-(s - offset)) N(s; mu, tau^2) ds, each one-dimensional
    integral by adaptive Gauss-Hermite quadrature around the player's posterior mode.
    Source: Liu & Pierce (1994), adaptive Gauss-Hermite quadrature for GLMMs."""
    P = len(counts.players)
    p = counts.cells[:, 0]
    w, n = counts.wins, counts.wins + counts.losses
    s = start["s"] if start and "s" in start else np.full(P, mu)
    for _ in range(50):  # vectorised 1-D Newton for each player's posterior mode
        q = expit(s[p] - offset)
        g = np.bincount(p, w - n * q, P) - (s - mu) / tau**2
        h = np.bincount(p, n * q * (1 - q), P) + 1.0 / tau**2
        step = g / h
        s = s + np.clip(step, -5, 5)
        if np.abs(step).max() < 1e-10:
            break
    if start is not None:
        start["s"] = s
    q = expit(s[p] - offset)
    sd = 1.0 / np.sqrt(np.bincount(p, n * q * (1 - q), P) + 1.0 / tau**2)
    x, wts = np.polynomial.hermite.hermgauss(nodes)
    total = np.zeros(P)
    logs = []
    for xi in x:
        si = s + math.sqrt(2) * sd * xi
        eta = si[p] - offset
        ll = np.bincount(p, w * log_expit(eta) + (n - w) * log_expit(-eta), P)
        lp = -0.5 * ((si - mu) / tau) ** 2 - math.log(tau) - 0.5 * math.log(2 * math.pi)
        logs.append(ll + lp + xi**2)
    logs = np.array(logs)  # (nodes, P)
    top = logs.max(axis=0)
    total = top + np.log((wts[:, None] * np.exp(logs - top)).sum(axis=0)) + np.log(math.sqrt(2) * sd)
    return float(total.sum())


def _estimate_tau(counts: RoundCounts, offset: np.ndarray, tau0: float) -> tuple[float, float]:
    """Maximum marginal likelihood (mu, tau) of the skills' prior given the cells' offsets;
    tau clipped to :data:`TAU_BOUNDS`."""
    from scipy.optimize import minimize

    p = counts.cells[:, 0]
    rate = np.bincount(p, counts.wins, len(counts.players)).sum() / max(counts.total, 1.0)
    mu0 = float(np.log(np.clip(rate, 1e-3, 1 - 1e-3) / (1 - np.clip(rate, 1e-3, 1 - 1e-3))) + np.mean(offset))
    lo, hi = (math.log(b) for b in TAU_BOUNDS)

    modes: dict = {}

    def negative(v: np.ndarray) -> float:
        return -_player_marginal(counts, offset, v[0], math.exp(min(max(v[1], lo), hi)), start=modes)

    best = minimize(negative, np.array([mu0, math.log(tau0)]), method="L-BFGS-B", bounds=[(None, None), (lo, hi)], options={"ftol": 1e-9, "eps": 1e-5, "maxiter": 100})
    return float(best.x[0]), math.exp(min(max(best.x[1], lo), hi))


def _as_counts(data: RoundTable | RoundCounts) -> RoundCounts:
    return aggregate_rounds(data) if isinstance(data, RoundTable) else data


def fit_extended_bt(data: RoundTable | RoundCounts, *, player_prior: float | str = "auto") -> ExtendedBTFit:
    """Fit skill, robustness and difficulty jointly by Newton's method.

    Parameters:
        data: RoundTable or RoundCounts.
        player_prior: 'auto' (default: a N(mu, tau^2) prior on skills with tau by empirical
            Bayes), a number lambda = 1 / tau^2 >= 0 (0 = plain maximum likelihood), in 1/logit^2.
    Returns: ExtendedBTFit (skills, robustness and difficulty in logits; covariances).
    Raises: DataError for fewer than two models or targets or a bad prior; ConvergenceError when
        the estimate does not exist (an entity with one outcome only; a disconnected design).
    Source: see the module docstring.
    """
    counts = _as_counts(data)
    if len(counts.models) < 1 or len(counts.targets) < 1 or len(counts.players) < 1:
        raise DataError("no rounds", counts.source, expected="at least one round")
    auto = isinstance(player_prior, str)
    if auto and player_prior != "auto":
        raise DataError(f"unknown player prior {player_prior!r}", counts.source, field="player_prior", expected="'auto' or a number >= 0")
    if not auto and not (np.isfinite(player_prior) and player_prior >= 0):
        raise DataError(f"player prior {player_prior!r} is not a finite number >= 0", counts.source, field="player_prior", expected="'auto' or a number >= 0 (1 / tau^2)")
    design = _Design(counts)
    trials = counts.wins + counts.losses
    x0 = np.zeros(design.n)
    with threadpool_limits(limits=1, user_api="blas"):
        if auto and len(counts.players) >= 3:
            # alternate: skills/robustness/difficulty at the current prior, then the prior's
            # (mu, tau) by marginal likelihood given the models' and targets' estimates
            _check_finite(counts, 1.0)
            tau, mu, x = 1.0, float("nan"), x0
            for _ in range(8):
                x, _, _, _ = _newton(design, x, 1.0 / tau**2, counts.wins, trials)
                full = design.A @ x
                P, M = design.P, design.M
                offset = full[P:P + M][counts.cells[:, 1]] + full[P + M:][counts.cells[:, 2]]
                mu, new_tau = _estimate_tau(counts, offset, tau)
                if abs(math.log(new_tau / tau)) < 1e-2:  # 1% in tau: intervals move by far less
                    tau = new_tau
                    break
                tau = new_tau
            lam, x0 = 1.0 / tau**2, x
        else:
            lam = 1.0 if auto else float(player_prior)
            mu = float("nan")
        _check_finite(counts, lam)
        x, _, H, iters = _newton(design, x0, lam, counts.wins, trials)
        ll = design.evaluate(x, 0.0, counts.wins, trials, order=0)[0]
        Hinv = np.linalg.inv(-H)
        J = design.meat(x, counts.wins, trials)
    A = design.A
    out = A @ x
    P, M = design.P, design.M
    return ExtendedBTFit(
        counts=counts,
        skill=out[:P], robustness=out[P:P + M], difficulty=out[P + M:],
        loglik=ll, player_prior=lam,
        cov_model=A @ Hinv @ A.T, cov_robust=A @ (Hinv @ J @ Hinv) @ A.T,
        n_iter=iters,
        prior_mean=(float(np.mean(out[:P])) if not np.isfinite(mu) else mu) if lam > 0 else float("nan"),
    )


def bootstrap_extended_bt(fit: ExtendedBTFit, rounds: int = 100, *, seed: int = 0, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Nonparametric bootstrap over rounds: resample the rounds with replacement (a multinomial
    over the cells' wins and losses), refit with the same player prior (lambda held at the
    fitted value), warm-started at ``fit``.

    Returns: float array (rounds, n) of (skill, robustness, difficulty), logits; a resample
        without a finite estimate (possible without a player prior: a player whose resampled
        rounds all have one outcome) is a row of NaN, never an abort: count them with
        ``np.isnan(out).any(axis=1).sum()``.
    Raises: DataError for rounds < 1.
    """
    if rounds < 1:
        raise DataError(f"{rounds} bootstrap rounds", field="rounds", expected="at least 1")
    counts = fit.counts
    design = _Design(counts)
    rng = np.random.default_rng(seed)
    probs = np.concatenate([counts.wins, counts.losses])
    n_rounds = int(round(probs.sum()))
    probs = probs / probs.sum()
    x0 = np.linalg.lstsq(design.A, fit.params, rcond=None)[0]
    out = np.empty((rounds, len(fit.params)))
    C = len(counts.wins)
    with threadpool_limits(limits=1, user_api="blas"):
        for r in range(rounds):
            draw = rng.multinomial(n_rounds, probs).astype(float)
            wins = draw[:C]
            try:
                x, _, _, _ = _newton(design, x0, fit.player_prior, wins, wins + draw[C:])
                out[r] = design.A @ x
            except ConvergenceError:
                out[r] = np.nan
            if progress:
                progress(1)
    return out


def online_extended_bt(rounds: RoundTable, *, lr: float = 0.05, order: str = "tstamp") -> ExtendedBTFit:
    """One pass of online logistic regression (stochastic gradient ascent) over the rounds, the
    live-page estimate: for each round in time order, with p = sigma(skill - robustness -
    difficulty) and y = 1 if the player won, skill += lr (y - p), robustness -= lr (y - p),
    difficulty -= lr (y - p).

    Parameters: rounds; lr, learning rate in logits; order, 'tstamp' (stable sort by time, the
    arena's order of play; file order where times are equal or missing) or 'file'.
    Returns: an ExtendedBTFit with the online estimates (robustness and difficulty centred) and
        no covariance (empty (0, 0) matrices, so the cost stays linear in the number of players):
        use :func:`fit_extended_bt` for intervals.
    Raises: DataError for lr <= 0 or an unknown order.
    Source: RedTeam Arena's public rating code (online logistic regression in file order).
    """
    if not (np.isfinite(lr) and lr > 0):
        raise DataError(f"learning rate {lr!r}", field="lr", expected="a number > 0")
    if order not in ("tstamp", "file"):
        raise DataError(f"unknown order {order!r}", field="order", expected="'tstamp' or 'file'")
    f = rounds.frame
    if order == "tstamp" and "tstamp" in f.columns:
        f = f.iloc[np.argsort(f["tstamp"].to_numpy(dtype=float), kind="stable")]
    counts = aggregate_rounds(rounds)
    pi = np.searchsorted(counts.players, f["player"].to_numpy())
    mi = np.searchsorted(counts.models, f["model"].to_numpy())
    ti = np.searchsorted(counts.targets, f["target"].to_numpy())
    y = f["won"].to_numpy(dtype=float)
    s = np.zeros(len(counts.players))
    r = np.zeros(len(counts.models))
    d = np.zeros(len(counts.targets))
    for k in range(len(y)):
        p, m, t = pi[k], mi[k], ti[k]
        g = lr * (y[k] - 1.0 / (1.0 + math.exp(-(s[p] - r[m] - d[t]))))
        s[p] += g
        r[m] -= g
        d[t] -= g
    rbar, dbar = r.mean(), d.mean()
    none = np.empty((0, 0))
    return ExtendedBTFit(counts, s - rbar - dbar, r - rbar, d - dbar, float("nan"), 0.0, none, none, len(y))


def to_points(values: np.ndarray) -> np.ndarray:
    """Logits -> Elo-scale points around 1000 (400 points = 10:1 odds)."""
    return INIT_RATING + POINTS_PER_LOGIT * np.asarray(values, dtype=float)


def simulate_rounds(
    skill: np.ndarray, robustness: np.ndarray, difficulty: np.ndarray, rounds_per_player: np.ndarray | int, *, seed: int = 0
) -> RoundTable:
    """Simulate red-team rounds with known parameters (logits): each player plays
    ``rounds_per_player`` rounds (an int, or an array (n_players,)), each against a model and a
    target drawn uniformly, winning with probability sigma(skill - robustness - difficulty).
    Players are named p000.., models m00.., targets t00..; tstamp increases with the round.

    Returns: RoundTable.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    P, M, T = len(skill), len(robustness), len(difficulty)
    per = np.broadcast_to(np.asarray(rounds_per_player), (P,))
    p = np.repeat(np.arange(P), per)
    rng.shuffle(p)
    m = rng.integers(0, M, len(p))
    t = rng.integers(0, T, len(p))
    won = rng.random(len(p)) < expit(np.asarray(skill)[p] - np.asarray(robustness)[m] - np.asarray(difficulty)[t])
    frame = pd.DataFrame({
        "player": [f"p{k:04d}" for k in p], "model": [f"m{k:03d}" for k in m], "target": [f"t{k:03d}" for k in t],
        "won": won, "tstamp": 1.7e9 + np.arange(len(p), dtype=float),
    })
    return RoundTable(frame, "simulation")
