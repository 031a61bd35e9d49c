"""Outcome models for one battle between models i and j, as functions of the log-strength
difference ``s = theta_i - theta_j`` and, for the tie models, one tie parameter ``k``.

Each model gives, for the four outcomes (i wins, j wins, tie, tie (bothbad)), the log-probability
and its first and second derivatives in ``s`` and ``k``. The Bradley-Terry fitter builds its
gradient, Hessian and sandwich "meat" from these, so adding a tie model is adding one function.

Models:
- ``half``: ties count as half a win for each side (FastChat ``compute_mle_elo`` and arena-rank).
  Pseudo-likelihood log p = y log sigma(s) + (1 - y) log sigma(-s) with y = 1, 0, 1/2, 1/2.
  No tie parameter.
- ``rao-kupper``: Rao & Kupper (1967), P(i) = sigma(s - k), P(j) = sigma(-s - k),
  P(tie) = 1 - P(i) - P(j), k = log(theta_RK) > 0. It is the cumulative-logit model with
  thresholds -k and +k, concave in (s, k).
- ``davidson``: Davidson (1970), P(i) : P(j) : P(tie) = e^{s/2} : e^{-s/2} : e^k, nu = e^k.
  A multinomial logit, concave in (s, k).

Both kinds of tie count as ties in the tie models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from openarena.ratings.logistic import expit, log_expit

TIE_MODELS = ("half", "rao-kupper", "davidson")


@dataclass
class OutcomeTerms:
    """Per-outcome log-probabilities and derivatives, arrays of shape (..., n_pairs, 4).

    ``logp``; ``ds``, ``dss`` (first and second derivative in s); for tie models ``dk``,
    ``dkk``, ``dsk`` (None for ``half``).
    """

    logp: np.ndarray
    ds: np.ndarray
    dss: np.ndarray
    dk: np.ndarray | None = None
    dkk: np.ndarray | None = None
    dsk: np.ndarray | None = None


_Y = np.array([1.0, 0.0, 0.5, 0.5])


def half_terms(s: np.ndarray, k: np.ndarray | None = None) -> OutcomeTerms:
    """Ties-as-half-wins terms. ``s``: shape (..., n_pairs). ``k`` is ignored."""
    s = s[..., None]
    lp, lq = log_expit(s), log_expit(-s)
    p = expit(s)
    logp = _Y * lp + (1 - _Y) * lq
    ds = _Y - p
    dss = np.broadcast_to(-p * (1 - p), logp.shape)
    return OutcomeTerms(logp, ds, dss)


def rao_kupper_terms(s: np.ndarray, k: np.ndarray) -> OutcomeTerms:
    """Rao-Kupper terms. ``s``: (..., n_pairs); ``k``: (...,) threshold, must be > 0
    (log-probabilities are -inf/nan outside)."""
    k = np.asarray(k, dtype=float)[..., None]
    A = s - k  # i wins when the latent difference exceeds +k
    B = s + k
    FA, FB = expit(A), expit(B)
    fA, fB = FA * (1 - FA), FB * (1 - FB)
    dfA, dfB = fA * (1 - 2 * FA), fB * (1 - 2 * FB)
    # P(tie) = F(B) - F(A), computed without cancellation: sigma(B) - sigma(A) =
    # sigma(B) sigma(-A) (1 - e^{A-B}) with A - B = -2k
    with np.errstate(divide="ignore", invalid="ignore"):
        T = expit(B) * expit(-A) * -np.expm1(-2 * k)
        logT = np.log(T)
    lw, ll = log_expit(A), log_expit(-B)
    with np.errstate(divide="ignore", invalid="ignore"):
        tA, tB = fA / T, fB / T
        hAA = -dfA / T - tA**2
        hBB = dfB / T - tB**2
        hAB = tA * tB
    shape = s.shape + (4,)
    logp = np.empty(shape)
    ds, dk, dss, dkk, dsk = (np.empty(shape) for _ in range(5))
    logp[..., 0], logp[..., 1] = lw, ll
    logp[..., 2] = logp[..., 3] = logT
    ds[..., 0], dk[..., 0] = 1 - FA, -(1 - FA)
    ds[..., 1], dk[..., 1] = -FB, -FB
    ds[..., 2] = ds[..., 3] = tB - tA
    dk[..., 2] = dk[..., 3] = tB + tA
    dss[..., 0], dkk[..., 0], dsk[..., 0] = -fA, -fA, fA
    dss[..., 1], dkk[..., 1], dsk[..., 1] = -fB, -fB, -fB
    dss[..., 2] = dss[..., 3] = hAA + 2 * hAB + hBB
    dkk[..., 2] = dkk[..., 3] = hAA - 2 * hAB + hBB
    dsk[..., 2] = dsk[..., 3] = hBB - hAA
    return OutcomeTerms(logp, ds, dss, dk, dkk, dsk)


def davidson_terms(s: np.ndarray, k: np.ndarray) -> OutcomeTerms:
    """Davidson terms. ``s``: (..., n_pairs); ``k``: (...,) = log nu."""
    k = np.broadcast_to(np.asarray(k, dtype=float)[..., None], s.shape)
    u = np.stack([s / 2, -s / 2, k], axis=-1)
    m = u.max(axis=-1, keepdims=True)
    logZ = m[..., 0] + np.log(np.exp(u - m).sum(axis=-1))
    pw, pl, pt = (np.exp(u[..., o] - logZ) for o in range(3))
    shape = s.shape + (4,)
    logp = np.empty(shape)
    logp[..., 0], logp[..., 1] = u[..., 0] - logZ, u[..., 1] - logZ
    logp[..., 2] = logp[..., 3] = u[..., 2] - logZ
    mean_s = (pw - pl) / 2
    ds = np.empty(shape)
    ds[..., 0], ds[..., 1] = 0.5 - mean_s, -0.5 - mean_s
    ds[..., 2] = ds[..., 3] = -mean_s
    dk = np.empty(shape)
    dk[..., 0] = dk[..., 1] = -pt
    dk[..., 2] = dk[..., 3] = 1 - pt
    ones = np.ones(shape)
    dss = ones * (-((pw + pl) / 4 - mean_s**2))[..., None]
    dkk = ones * (-pt * (1 - pt))[..., None]
    dsk = ones * (pt * mean_s)[..., None]
    return OutcomeTerms(logp, ds, dss, dk, dkk, dsk)


@dataclass
class PairSums:
    """Outcome terms summed with the counts C (shape (R, n_pairs, 4)) over the four outcomes.

    ``ll``: (R,) log-likelihood; ``g_s``, ``h_ss``: (R, n_pairs) first and second derivative
    of each pair's log-likelihood in s; ``g_k`` (R,), ``h_sk`` (R, n_pairs), ``h_kk`` (R,) for
    the tie models (None for ``half``); ``j_ss`` (and ``j_sk``, ``j_kk``): sums of squared
    per-vote scores, the sandwich meat, only when asked for.
    """

    ll: np.ndarray
    g_s: np.ndarray | None = None
    h_ss: np.ndarray | None = None
    g_k: np.ndarray | None = None
    h_sk: np.ndarray | None = None
    h_kk: np.ndarray | None = None
    j_ss: np.ndarray | None = None
    j_sk: np.ndarray | None = None
    j_kk: np.ndarray | None = None


def _safe_sum(C: np.ndarray, logp: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        ll = np.where(C > 0, C * logp, 0.0).sum(axis=(-2, -1))
    return np.where(np.isnan(ll), -np.inf, ll)


def pair_sums(ties: str, s: np.ndarray, k: np.ndarray | None, C: np.ndarray, order: int = 2, meat: bool = False) -> PairSums:
    """Count-weighted sums of the outcome terms of model ``ties``.

    Parameters: s, (R, n_pairs) log-strength differences; k, (R,) tie parameter or None;
    C, (R, n_pairs, 4) counts; order, 0 (log-likelihood only), 1 or 2 (with Hessian terms);
    meat, also return the sums of squared per-vote scores.
    ``half`` has a closed form on effective wins w_i = c0 + (c2 + c3)/2 that skips the
    four-outcome arrays; the tie models sum their :class:`OutcomeTerms`.
    """
    if ties == "half":
        half_ties = 0.5 * (C[..., 2] + C[..., 3])
        w1 = C[..., 0] + half_ties
        w2 = C[..., 1] + half_ties
        lp = log_expit(s)  # log sigma(s); log sigma(-s) = log sigma(s) - s
        N = w1 + w2
        ll = (N * lp - w2 * s).sum(axis=-1)
        if order == 0:
            return PairSums(ll)
        p = np.exp(lp)
        out = PairSums(ll, g_s=w1 - N * p, h_ss=-N * p * (1 - p))
        if meat:
            q = 1 - p
            out.j_ss = C[..., 0] * q**2 + C[..., 1] * p**2 + 2 * half_ties * (0.5 - p) ** 2
        return out
    t = TERMS[ties](s, k)
    ll = _safe_sum(C, t.logp)
    if order == 0:
        return PairSums(ll)
    out = PairSums(
        ll,
        g_s=(C * t.ds).sum(axis=-1),
        h_ss=(C * t.dss).sum(axis=-1),
        g_k=(C * t.dk).sum(axis=(-2, -1)),
        h_sk=(C * t.dsk).sum(axis=-1),
        h_kk=(C * t.dkk).sum(axis=(-2, -1)),
    )
    if meat:
        out.j_ss = (C * t.ds**2).sum(axis=-1)
        out.j_sk = (C * t.ds * t.dk).sum(axis=-1)
        out.j_kk = (C * t.dk**2).sum(axis=(-2, -1))
    return out


TERMS: dict[str, Callable[..., OutcomeTerms]] = {
    "half": half_terms,
    "rao-kupper": rao_kupper_terms,
    "davidson": davidson_terms,
}


def initial_tie_param(ties: str, tie_rate: float) -> float | None:
    """Moment start for the tie parameter from the overall tie share (both kinds), at s = 0.

    rao-kupper: P(tie | s=0) = tanh(k/2); davidson: e^k / (2 + e^k). None for ``half``.
    """
    if ties == "half":
        return None
    t = min(max(tie_rate, 1e-3), 0.98)
    if ties == "rao-kupper":
        return float(2 * np.arctanh(t))
    return float(np.log(2 * t / (1 - t)))


def tie_param_natural(ties: str, k: float | None) -> float | None:
    """The tie parameter in its textbook form: theta = e^k (Rao-Kupper), nu = e^k (Davidson)."""
    if k is None or ties == "half":
        return None
    return float(np.exp(k))
