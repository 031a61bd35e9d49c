"""One protocol for every rating method, so that the leaderboard assembles any of them the same way.

Every fitted rating model is a :class:`RatingFit` (the role scikit-learn's single estimator
protocol plays there; our fitted results stay small frozen objects):

* ``models``: tuple of n model keys; ``strengths``: array (n,), natural-log odds units (logits);
  multiply by 400 / ln 10 for Elo points; only contrasts between models are meaningful.
* ``loglik``: the maximised log-likelihood (pseudo-likelihood for ties as half wins; NaN for
  online Elo, which maximises nothing).
* ``covariance(robust=True)``: array (n, n) of the strengths, robust (sandwich, White 1982) or
  model-based (inverse information, ``robust=False``); raises :class:`NotImplementedError` for
  online Elo (no likelihood: use the bootstrap).
* ``bootstrap(rounds, seed, n_jobs=, progress=)``: :class:`BootstrapSamples` of the strengths
  (rounds, n), drawn by resampling the votes.
* ``bootstrap_median``: True when the rating to show with a bootstrap is the median of the
  (anchored) bootstrap ratings (online Elo, as FastChat), False when it is the fit itself
  (maximum likelihood).
* ``coefficients``: covariate coefficients (style control) or None.

Adapters: :class:`BradleyTerryResult` (Bradley-Terry and the tie models),
:class:`ContextualResult` (style / covariate control), :class:`OnlineEloResult`; the coming
extended Bradley-Terry (players x models x targets) implements the same five members.
:func:`fit_ratings` is the one dispatch from options to a RatingFit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

import numpy as np

from openarena.ratings.bradley_terry import BTFit
from openarena.ratings.scale import POINTS_PER_LOGIT

if TYPE_CHECKING:
    from openarena.ratings.contextual import ContextualFit


@dataclass(frozen=True)
class BootstrapSamples:
    """Bootstrap draws of a RatingFit: ``theta`` (R, n) strengths in logits (+/-inf or NaN where
    a model had no finite rating in a resample, see :mod:`openarena.ratings.resampling`);
    ``tie_param`` (R,) or None; ``coef`` (R, K) covariate coefficients or None; ``report``, a
    :class:`~openarena.ratings.resampling.ResampleReport` or None."""

    theta: np.ndarray
    tie_param: np.ndarray | None = None
    coef: np.ndarray | None = None
    report: object | None = None


@runtime_checkable
class RatingFit(Protocol):
    """What every fitted rating method exposes (see the module docstring)."""

    @property
    def models(self) -> tuple[str, ...]: ...

    @property
    def strengths(self) -> np.ndarray: ...

    @property
    def loglik(self) -> float: ...

    def covariance(self, robust: bool = True) -> np.ndarray: ...

    def bootstrap(self, rounds: int, seed: int | None = 0, *, n_jobs: int | None = None,
                  progress: Callable[[int], None] | None = None) -> BootstrapSamples: ...

    @property
    def bootstrap_median(self) -> bool: ...


class _FitView:
    """What the Newton fits share (``self.fit`` has models, theta in logits, loglik and
    covariance(robust) of shape (n_models, n_models))."""

    @property
    def models(self) -> tuple[str, ...]:
        return self.fit.models

    @property
    def strengths(self) -> np.ndarray:
        return self.fit.theta

    @property
    def loglik(self) -> float:
        return self.fit.loglik

    def covariance(self, robust: bool = True) -> np.ndarray:
        return self.fit.covariance(robust=robust)


@dataclass(frozen=True)
class BradleyTerryResult(_FitView):
    """RatingFit of a :class:`~openarena.ratings.bradley_terry.BTFit` (ties half, Rao-Kupper,
    Davidson); the bootstrap never aborts on resamples without a finite rating."""

    fit: BTFit

    def bootstrap(self, rounds, seed=0, *, n_jobs=None, progress=None) -> BootstrapSamples:
        from openarena.ratings.resampling import bootstrap_thetas_sparse

        theta, k, report = bootstrap_thetas_sparse(self.fit, rounds, seed, n_jobs=n_jobs, progress=progress)
        return BootstrapSamples(theta, k, None, report)

    bootstrap_median = False


@dataclass(frozen=True)
class ContextualResult(_FitView):
    """RatingFit of a :class:`~openarena.ratings.contextual.ContextualFit` (style control)."""

    fit: ContextualFit

    def bootstrap(self, rounds, seed=0, *, n_jobs=None, progress=None) -> BootstrapSamples:
        from openarena.ratings.contextual import bootstrap_contextual

        theta, beta = bootstrap_contextual(self.fit, rounds, seed, n_jobs=n_jobs, progress=progress)
        return BootstrapSamples(theta, None, beta, None)

    bootstrap_median = False


@dataclass(frozen=True)
class OnlineEloResult:
    """RatingFit of FastChat's online Elo (K=4) over ``battles`` in their order: strengths are
    the single pass's ratings in logits; with a bootstrap the point estimate is the median of
    the bootstrap ratings (FastChat's ``elo_rating_final``). No likelihood, no covariance."""

    models: tuple[str, ...]
    ratings: np.ndarray  # Elo points of the single pass, in ``models`` order
    battles: object

    @property
    def strengths(self) -> np.ndarray:
        return self.ratings / POINTS_PER_LOGIT

    @property
    def loglik(self) -> float:
        return float("nan")

    def covariance(self, robust: bool = True) -> np.ndarray:
        raise NotImplementedError("online Elo has no likelihood, hence no covariance; use the bootstrap")

    def bootstrap(self, rounds, seed=0, *, n_jobs=None, progress=None) -> BootstrapSamples:
        from openarena.ratings.elo import online_elo_bootstrap

        names, samples = online_elo_bootstrap(self.battles, rounds, seed, progress=progress)
        order = [names.index(m) for m in self.models]
        return BootstrapSamples(samples[:, order] / POINTS_PER_LOGIT)

    bootstrap_median = True


__all__ = ["BootstrapSamples", "BradleyTerryResult", "ContextualResult", "OnlineEloResult", "RatingFit"]
