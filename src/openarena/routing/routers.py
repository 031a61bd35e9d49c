"""Routers: each scores prompts by how much they need the strong model.

Protocol (scikit-learn style): ``fit(prompts, labels) -> self`` on training prompts with labels
in [0, 1] (1 = the strong model is better, 0.5 = a tie, 0 = the weak one is better), then
``score(prompts) -> ndarray (n,)``, higher = route to strong. A threshold on the score decides
(:func:`calibrate_threshold` picks one for a wanted strong-call fraction). The multi-model
``p2l`` router is also fitted on pairwise preferences between any models
(:meth:`P2LRouter.fit_pairs`) and routes to the best model under a cost budget.

- ``random``: uniform scores (APGR 0.5 in expectation: the floor).
- ``length``: the prompt's length in characters (longer prompts are harder).
- ``difficulty``: logistic regression on three features (code, math, log length), the "router
  with one parameter (is the question hard: code, math, long?)".
- ``sw_ranking``: similarity-weighted Bradley-Terry: every training comparison weighted by
  10 ** (similarity / max similarity) for the prompt, a Bradley-Terry fit over the groups
  (strong/weak, or the tiers of arena battles), P(strong beats weak) (RouteLLM's sw_ranking).
- ``mf``: matrix factorisation, s_m(prompt) = u_m . (P e) + b_m with a shared low-rank projection
  P, trained on pairwise preferences by logistic loss (RouteLLM's mf router).
- ``classifier``: L2 logistic regression on the prompt embedding.
- ``p2l``: per-prompt Bradley-Terry coefficients of every model, theta(prompt) = B e + b (full
  rank), trained on pairwise preferences; routes to the best model, or the best under a price
  budget (Prompt-to-Leaderboard).

Source: Ong et al. (2024), RouteLLM (sw_ranking, mf, classifier baselines); Frick et al. (2025),
Prompt-to-Leaderboard.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from openarena.errors import DataError
from openarena.routing.embeddings import TfidfEmbedder

ROUTERS = ("random", "length", "difficulty", "sw_ranking", "mf", "classifier", "p2l")
_CODE = re.compile(r"```|\bdef |\bclass |#include|\bfunction\b|\bimport |;\s*$|\bSELECT\b|=>|\{\s*$", re.M | re.I)
_MATH = re.compile(r"\d\s*[-+*/^=]\s*\d|\$[^$]+\$|\\frac|\bsolve\b|\bequation\b|\bintegral\b|\bprobability\b|\bderivative\b|\bhow many\b|\bhow much\b", re.I)


def _labels(labels) -> np.ndarray:
    y = np.asarray(labels, dtype=float)
    if y.ndim != 1 or not np.all((y >= 0) & (y <= 1)):
        raise DataError("labels outside [0, 1]", field="labels", expected="1 (strong better), 0.5 (tie), 0 (weak better)")
    return y


class RandomRouter:
    """Uniform random scores (seeded)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, prompts: Sequence[str], labels) -> "RandomRouter":
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        return np.random.default_rng(self.seed).random(len(prompts))


class LengthRouter:
    """Score = prompt length in characters."""

    name = "length"

    def fit(self, prompts, labels) -> "LengthRouter":
        return self

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        return np.array([len(p) for p in prompts], dtype=float)


def difficulty_features(prompts: Sequence[str]) -> np.ndarray:
    """(n, 3): looks like code (0/1), looks like math (0/1), log(1 + characters)."""
    return np.array([[bool(_CODE.search(p)), bool(_MATH.search(p)), np.log1p(len(p))] for p in prompts], dtype=float)


def _weighted_logistic(X: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Logistic regression with soft labels y in [0, 1] and an L2 penalty (not on the
    intercept, the last column of the returned coefficients). Exact (L-BFGS to 1e-10)."""
    Xb = np.hstack([X, np.ones((len(X), 1))])

    def f(w):
        eta = Xb @ w
        ll = y @ log_expit(eta) + (1 - y) @ log_expit(-eta)
        g = Xb.T @ (y - expit(eta))
        pen = 0.5 * l2 * (w[:-1] @ w[:-1])
        gp = np.r_[l2 * w[:-1], 0.0]
        return -(ll - pen), -(g - gp)

    res = minimize(f, np.zeros(Xb.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 1000, "gtol": 1e-6})
    return res.x


class DifficultyRouter:
    """Logistic regression of the label on :func:`difficulty_features` (standardised)."""

    name = "difficulty"

    def fit(self, prompts, labels) -> "DifficultyRouter":
        X = difficulty_features(prompts)
        self.mu_, self.sd_ = X.mean(axis=0), X.std(axis=0) + 1e-9
        self.w_ = _weighted_logistic((X - self.mu_) / self.sd_, _labels(labels), l2=1e-3)
        return self

    def score(self, prompts) -> np.ndarray:
        X = (difficulty_features(prompts) - self.mu_) / self.sd_
        return expit(X @ self.w_[:-1] + self.w_[-1])


class _Embedded:
    """Routers on prompt embeddings (an embedder with fit/transform; TF-IDF + SVD default)."""

    def __init__(self, embedder=None) -> None:
        self.embedder = embedder if embedder is not None else TfidfEmbedder()

    def _fit_embed(self, prompts) -> np.ndarray:
        """Fit the embedder on the training prompts (once per prompt set: routers sharing an
        embedder reuse its fit and the embeddings) and embed them."""
        key = hash(tuple(prompts))
        cached = getattr(self.embedder, "_openarena_fit", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        E = self.embedder.fit(prompts).transform(prompts)
        self.embedder._openarena_fit = (key, E)
        return E


class ClassifierRouter(_Embedded):
    """L2 logistic regression (soft labels) on the embedding."""

    name = "classifier"

    def __init__(self, embedder=None, l2: float = 1.0) -> None:
        super().__init__(embedder)
        self.l2 = l2

    def fit(self, prompts, labels) -> "ClassifierRouter":
        self.w_ = _weighted_logistic(self._fit_embed(prompts), _labels(labels), self.l2)
        return self

    def score(self, prompts) -> np.ndarray:
        E = self.embedder.transform(prompts)
        return expit(E @ self.w_[:-1] + self.w_[-1])


class SWRankingRouter(_Embedded):
    """Similarity-weighted Bradley-Terry (RouteLLM's ``SWRankingRouter``).

    Training data are pairwise comparisons between groups (``fit_groups``: tiers of arena
    models, or just 'strong' and 'weak' for per-prompt quality labels, ``fit``). For a new
    prompt every training comparison gets the weight ``scale ** (sim / max_sim)`` (sim = cosine
    of the embeddings, max_sim = the largest over the training prompts; RouteLLM:
    ``10 * 10 ** (sim / max_sim)``, a smooth kernel over all battles, not a few neighbours),
    a Bradley-Terry model over the groups is fitted on the weighted comparisons (ties half a win
    each), and the score is P(strong group beats weak group). With two groups that is the
    weighted share of the strong group's wins. ``prior`` pseudo-comparisons (split evenly over
    every pair of groups, as ties) keep the fit finite when a group never won.
    """

    name = "sw_ranking"

    def __init__(self, embedder=None, scale: float = 10.0, prior: float = 1e-3) -> None:
        super().__init__(embedder)
        self.scale, self.prior = scale, prior

    def fit(self, prompts, labels) -> "SWRankingRouter":
        n = len(prompts)
        return self.fit_groups(prompts, ["strong"] * n, ["weak"] * n, labels, "strong", "weak")

    def fit_groups(self, prompts, group_a, group_b, y, strong, weak) -> "SWRankingRouter":
        """Comparisons (prompt, group_a, group_b, y = P(group_a better): 1 / 0.5 / 0); the score
        is P(``strong`` beats ``weak``). Raises DataError when a side is not among the groups."""
        groups = sorted({str(g) for g in group_a} | {str(g) for g in group_b})
        for side, g in (("strong", strong), ("weak", weak)):
            if str(g) not in groups:
                raise DataError(f"the {side} group {g!r} is in no comparison", field=side, expected=", ".join(groups))
        index = {g: i for i, g in enumerate(groups)}
        self.groups_ = groups
        self.a_ = np.array([index[str(g)] for g in group_a], dtype=np.int64)
        self.b_ = np.array([index[str(g)] for g in group_b], dtype=np.int64)
        self.y_ = _labels(y)
        self.strong_, self.weak_ = index[str(strong)], index[str(weak)]
        self.E_ = self._fit_embed(prompts)
        return self

    def _outcomes(self):
        """Sparse (n_train, G*G): row n puts y_n on cell (a_n, b_n) and 1 - y_n on (b_n, a_n)."""
        from scipy.sparse import csr_matrix

        G, n = len(self.groups_), len(self.y_)
        rows = np.r_[np.arange(n), np.arange(n)]
        cols = np.r_[self.a_ * G + self.b_, self.b_ * G + self.a_]
        return csr_matrix((np.r_[self.y_, 1.0 - self.y_], (rows, cols)), shape=(n, G * G))

    def score(self, prompts) -> np.ndarray:
        Q = self.embedder.transform(prompts)
        G = len(self.groups_)
        M = self._outcomes()
        out = np.empty(len(Q))
        step = max(1, min(1024, (1 << 23) // max(len(self.y_), 1)))
        for i0 in range(0, len(Q), step):
            S = Q[i0:i0 + step] @ self.E_.T
            top = S.max(axis=1, keepdims=True)
            W = self.scale ** (S / np.where(top > 0, top, 1.0))
            W /= W.sum(axis=1, keepdims=True)
            wins = np.asarray((M.T @ W.T).T).reshape(-1, G, G)  # wins[c, i, j]: weight of i beating j
            out[i0:i0 + step] = _bt_pair_probability(wins, self.strong_, self.weak_, self.prior)
        return out


def _bt_pair_probability(wins: np.ndarray, i: int, j: int, prior: float, iters: int = 300) -> np.ndarray:
    """P(group i beats group j) under the Bradley-Terry MLE of each slice ``wins[c]`` (G, G)
    of weighted win counts, ``prior`` pseudo-ties added to every pair (Zermelo / Hunter's MM
    iterations, vectorised over c). Two groups: the closed form (weighted win share)."""
    G = wins.shape[1]
    off = 1.0 - np.eye(G)
    w = wins * off + 0.5 * prior * off / max(G - 1, 1)
    if G == 2:
        return w[:, i, j] / (w[:, i, j] + w[:, j, i])
    n = w + np.transpose(w, (0, 2, 1))
    total = w.sum(axis=2)
    p = np.ones(w.shape[:2])
    for _ in range(iters):
        denom = (n / (p[:, :, None] + p[:, None, :])).sum(axis=2)
        p_new = total / np.maximum(denom, 1e-300)
        p_new /= np.exp(np.log(np.maximum(p_new, 1e-300)).mean(axis=1, keepdims=True))
        if np.max(np.abs(p_new - p)) < 1e-10:
            p = p_new
            break
        p = p_new
    return p[:, i] / (p[:, i] + p[:, j])


def _pairwise_fit(E: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, n_models: int, rank: int | None, l2: float, seed: int):
    """Fit s_m(e) = u_m . (P e) + b_m (rank k) or theta_m(e) = B_m . e + b_m (rank None) by
    logistic loss on P(a beats b) = sigma(s_a - s_b) with soft labels y, L2 penalty l2.
    Returns a function e (n, d) -> scores (n, n_models)."""
    d = E.shape[1]
    rng = np.random.default_rng(seed)
    if rank is None:
        shapes = [(n_models, d), (n_models,)]
    else:
        shapes = [(rank, d), (n_models, rank), (n_models,)]
    sizes = [int(np.prod(s)) for s in shapes]

    def unpack(w):
        out, k = [], 0
        for s, z in zip(shapes, sizes):
            out.append(w[k:k + z].reshape(s))
            k += z
        return out

    def scores_of(parts, X):
        if rank is None:
            B, bias = parts
            return X @ B.T + bias
        P, U, bias = parts
        return (X @ P.T) @ U.T + bias

    rows = np.arange(len(y))

    def f(w):
        parts = unpack(w)
        S = scores_of(parts, E)
        delta = S[rows, a] - S[rows, b]
        ll = y @ log_expit(delta) + (1 - y) @ log_expit(-delta)
        r = y - expit(delta)  # d ll / d delta
        G = np.zeros_like(S)
        np.add.at(G, (rows, a), r)
        np.add.at(G, (rows, b), -r)
        if rank is None:
            B, bias = parts
            grads = [G.T @ E - l2 * B, G.sum(axis=0)]
            pen = 0.5 * l2 * (B * B).sum()
        else:
            P, U, bias = parts
            Z = E @ P.T
            gU = G.T @ Z - l2 * U
            gP = (G @ U).T @ E - l2 * P
            grads = [gP, gU, G.sum(axis=0)]
            pen = 0.5 * l2 * ((P * P).sum() + (U * U).sum())
        return -(ll - pen), -np.concatenate([g.ravel() for g in grads])

    w0 = np.concatenate([rng.normal(0, 0.01, z) for z in sizes])
    res = minimize(f, w0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return PairwiseScorer(tuple(unpack(res.x)))


class PairwiseScorer:
    """The fitted map e (n, d) -> model scores (n, n_models) of :func:`_pairwise_fit`: parts =
    (B, bias) for the full-rank form, (P, U, bias) for the low-rank one (saved and loaded as
    arrays by :mod:`openarena.routing.persist`)."""

    def __init__(self, parts: tuple[np.ndarray, ...]) -> None:
        self.parts = tuple(np.asarray(x, dtype=float) for x in parts)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if len(self.parts) == 2:
            B, bias = self.parts
            return X @ B.T + bias
        P, U, bias = self.parts
        return (X @ P.T) @ U.T + bias


class MFRouter(_Embedded):
    """Matrix factorisation (rank ``rank``) trained on strong-vs-weak preferences."""

    name = "mf"

    def __init__(self, embedder=None, rank: int = 16, l2: float = 1.0, seed: int = 0) -> None:
        super().__init__(embedder)
        self.rank, self.l2, self.seed = rank, l2, seed

    def fit(self, prompts, labels) -> "MFRouter":
        E = self._fit_embed(prompts)
        n = len(E)
        self.f_ = _pairwise_fit(E, np.zeros(n, int), np.ones(n, int), _labels(labels), 2, self.rank, self.l2, self.seed)
        return self

    def score(self, prompts) -> np.ndarray:
        S = self.f_(self.embedder.transform(prompts))
        return expit(S[:, 0] - S[:, 1])


class P2LRouter(_Embedded):
    """Per-prompt Bradley-Terry coefficients of every model (full-rank linear map of the
    embedding, L2 ``l2``).

    ``fit_pairs(prompts, model_a, model_b, y)``: any pairwise preferences (y = 1 if model_a is
    better, 0.5 tie, 0 if model_b); ``coefficients(prompts)`` -> (n, n_models) in logits;
    ``route(prompts, prices=None, budget=None)`` -> the best model per prompt, among those whose
    price is within the budget. As a strong/weak router (``fit``/``score``), models are 'strong'
    and 'weak' (or the two models of ``pair_``, e.g. two tiers of arena battles).
    """

    name = "p2l"

    def __init__(self, embedder=None, l2: float = 1.0) -> None:
        super().__init__(embedder)
        self.l2 = l2

    def fit_pairs(self, prompts, model_a, model_b, y) -> "P2LRouter":
        models = sorted(set(model_a) | set(model_b))
        self.models_ = models
        index = {m: i for i, m in enumerate(models)}
        E = self._fit_embed(prompts)
        a = np.array([index[m] for m in model_a])
        b = np.array([index[m] for m in model_b])
        self.f_ = _pairwise_fit(E, a, b, _labels(y), len(models), None, self.l2, 0)
        return self

    def fit(self, prompts, labels) -> "P2LRouter":
        n = len(prompts)
        self.pair_ = ("strong", "weak")
        return self.fit_pairs(prompts, ["strong"] * n, ["weak"] * n, labels)

    def coefficients(self, prompts) -> np.ndarray:
        return self.f_(self.embedder.transform(prompts))

    def score(self, prompts) -> np.ndarray:
        C = self.coefficients(prompts)
        hi, lo = getattr(self, "pair_", ("strong", "weak"))
        i, j = self.models_.index(hi), self.models_.index(lo)
        return expit(C[:, i] - C[:, j])

    def route(self, prompts, prices: dict[str, float] | None = None, budget: float | None = None) -> list[str]:
        """Best model per prompt; with ``prices`` (USD per million tokens) and ``budget``, only
        models priced at most ``budget``. Raises DataError when no model fits the budget."""
        C = self.coefficients(prompts)
        allowed = np.ones(len(self.models_), bool)
        if budget is not None:
            prices = prices or {}
            allowed = np.array([prices.get(m, np.inf) <= budget for m in self.models_])
            if not allowed.any():
                raise DataError(f"no model costs at most {budget}", field="budget", expected="a budget at least the cheapest model's price")
        C = np.where(allowed[None, :], C, -np.inf)
        return [self.models_[k] for k in C.argmax(axis=1)]


def make_router(name: str, *, embedder=None, seed: int = 0):
    """A router by its ``--router`` name (see :data:`ROUTERS`). Raises DataError otherwise."""
    if name == "random":
        return RandomRouter(seed)
    if name == "length":
        return LengthRouter()
    if name == "difficulty":
        return DifficultyRouter()
    if name == "sw_ranking":
        return SWRankingRouter(embedder)
    if name == "mf":
        return MFRouter(embedder, seed=seed)
    if name == "classifier":
        return ClassifierRouter(embedder)
    if name == "p2l":
        return P2LRouter(embedder)
    raise DataError(f"unknown router {name!r}", field="router", expected=", ".join(ROUTERS))


def calibrate_threshold(scores: np.ndarray, strong_fraction: float) -> float:
    """The score threshold that sends ``strong_fraction`` of these (sample) prompts to the
    strong model (route to strong when score >= threshold): the (1 - fraction) quantile.
    Raises DataError for a fraction outside [0, 1] or no scores. (RouteLLM#36: report the
    realised fraction on new traffic with :func:`strong_call_fraction`.)"""
    if not 0 <= strong_fraction <= 1:
        raise DataError(f"strong-call fraction {strong_fraction!r}", field="strong_fraction", expected="a number in [0, 1]")
    s = np.asarray(scores, dtype=float)
    if s.size == 0:
        raise DataError("no sample prompts", field="scores", expected="at least one score")
    if strong_fraction == 0:
        return float(np.nextafter(s.max(), np.inf))
    return float(np.quantile(s, 1 - strong_fraction, method="higher" if strong_fraction < 1 else "lower"))


def strong_call_fraction(scores: np.ndarray, threshold: float) -> float:
    """Share of prompts whose score reaches ``threshold`` (routed to the strong model)."""
    s = np.asarray(scores, dtype=float)
    return float((s >= threshold).mean()) if s.size else float("nan")
