"""Which two models meet in an anonymous battle, and with what probability.

Every policy is written as a *distribution over unordered pairs* (an n × n symmetric matrix
whose upper triangle sums to 1), so the probability of the pair actually drawn is known exactly
and stored with the battle (``battles.sampling_prob``). FastChat does not store it, which makes
inverse-propensity weighting of its public votes impossible. Left/right order is then a fair
coin, independent of the pair.

Policies:

``fastchat`` (default): FastChat's two-stage rule (fastchat/serve/gradio_block_arena_anony.py,
``get_battle_pair`` and ``get_sample_weight``): draw the first model with probability
proportional to its weight (registry ``weight``; 0 for a model on the outage list; times
``boost`` (FastChat: 5, ``SAMPLING_BOOST_MODELS``) for a model below its ``vote_target``); then
draw its rival among the other models by their weights, where a rival listed in the first
model's battle targets gets the weight ``0.5 * total_weight / len(targets)`` (FastChat's
``BATTLE_TARGETS``), and two anonymous-only models (FastChat's ``ANON_MODELS``: models not yet
released under their name) never meet. P(pair {i, j}) = p1(i) p2(j | i) + p1(j) p2(i | j).

``uniform``: every allowed pair equally likely.

``active``: pairs in proportion to the expected shrinkage of their interval after one more vote
(Chiang et al. 2024, "Chatbot Arena: An Open Platform for Evaluating LLMs by Human
Preference", Section 5, "Active sampling"): w_a ∝ sqrt(Σ_a / n_a) − sqrt(Σ_a / (n_a + 1)),
with Σ_a = p_a (1 − p_a) the variance of one vote on pair a (p_a the Bradley-Terry win
probability from the current leaderboard, 0.5 when unknown) and n_a its votes so far (plus one,
so an unseen pair has a finite, largest weight). It is mixed with the ``fastchat`` distribution
(``explore``, default 0.2) so every allowed pair keeps a probability bounded away from zero,
which inverse-propensity weighting needs. Kept as the paper states it.

``targeted``: aims at the leaderboard's own intervals: the optimal-design step that minimises
sum_k v_k^3 over the Bradley-Terry rating variances v after the next votes, given the current
ratings and the votes so far (:func:`openarena.analysis.policies.targeted_pairs`, computed by
:mod:`openarena.ratings.design`), mixed with the same ``explore`` share of the ``fastchat``
distribution (the floor: no allowed pair starves and boosted new models keep their boost). A
model without a rating yet (the leaderboard cannot be fitted while a new model has not lost)
gets a weak prior, so its wide interval draws the votes that resolve it.

The distributions themselves are pure functions in :mod:`openarena.analysis.policies`, which the
vote-budget simulator (``openarena sampling simulate``) calls too: what is simulated is what is
served. Statistics that no policy can use (a NaN rating, a negative count) are rejected by
:meth:`PairSampler.update` with a DataError naming the model and the field, so :meth:`sample`
never meets them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from openarena.analysis.policies import POLICIES, active_pairs, check_statistics, fastchat_pairs, mix, targeted_design, uniform_pairs
from openarena.errors import OpenArenaError

__all__ = ["POLICIES", "PairSampler", "SampledPair", "SamplingConfig", "SharedVoteCounts"]

log = logging.getLogger("openarena.serving")


class SamplingError(OpenArenaError):
    """No pair of models can be drawn (fewer than two available models)."""


@dataclass
class SamplingConfig:
    """What the sampler knows besides the registry.

    Attributes: policy, one of :data:`POLICIES`; outage, models not to sample (down for now);
    boost, weight factor for a model below its vote_target (FastChat: 5); battle_targets,
    {model: [rivals favoured when it is drawn first]}; anon_only, models that may only appear
    anonymously (two of them never meet); explore, share of the fastchat distribution mixed
    into ``active`` and ``targeted`` (0..1).
    """

    policy: str = "fastchat"
    outage: set[str] = field(default_factory=set)
    boost: float = 5.0
    battle_targets: dict[str, list[str]] = field(default_factory=dict)
    anon_only: set[str] = field(default_factory=set)
    explore: float = 0.2

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise OpenArenaError(f"unknown sampling policy {self.policy!r}; expected one of {', '.join(POLICIES)}")
        if not 0 <= self.explore <= 1:  # also rejects NaN
            raise OpenArenaError("explore must be between 0 and 1")
        self.outage = set(self.outage)
        self.anon_only = set(self.anon_only)


@dataclass(frozen=True)
class SampledPair:
    """A drawn battle: model_a (left), model_b (right), prob = P(unordered pair) under policy."""

    model_a: str
    model_b: str
    prob: float
    policy: str


class PairSampler:
    """Draws anonymous battle pairs; thread-safe.

    Parameters: models, the candidates (name, weight, vote_target) in a stable order, e.g.
    ``[(m.name, m.weight, m.vote_target) for m in registry if m.anonymous]``; config.
    Call :meth:`update` with vote counts (and, for ``active``, pair counts and ratings) as the
    leaderboard is recomputed; :meth:`sample` draws; :meth:`pair_matrix` gives the distribution.
    Raises (constructor): DataError for a weight that is negative or not a finite number.
    """

    def __init__(self, models: Sequence[tuple[str, float, int | None]], config: SamplingConfig | None = None, seed: int | None = None) -> None:
        self.config = config or SamplingConfig()
        self.names = [m[0] for m in models]
        check_statistics(self.names, weights=[m[1] for m in models])
        self.weights = np.array([float(m[1]) for m in models], dtype=float)
        self.targets = [m[2] for m in models]
        self.votes: dict[str, int] = {}
        self.pair_votes: dict[frozenset[str], float] = {}
        self.ratings: dict[str, float] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._matrix: np.ndarray | None = None
        self._design: np.ndarray | None = None

    def update(self, votes: Mapping[str, int] | None = None, pair_votes: Mapping[frozenset[str], float] | None = None, ratings: Mapping[str, float] | None = None) -> None:
        """New statistics: votes per model (boost), votes per unordered pair and Elo-scale
        ratings (active, targeted). Recomputes the distribution now (in the caller's thread, the
        leaderboard refresher's, not in a request).

        Raises: DataError naming the model (or pair) and the field for a negative or non-finite
        count or a non-finite rating; the sampler then keeps its previous statistics.
        """
        check_statistics(self.names, votes=votes, pair_votes=pair_votes, ratings=ratings)
        with self._lock:
            if votes is not None:
                self.votes = dict(votes)
            if pair_votes is not None:
                self.pair_votes = dict(pair_votes)
            if ratings is not None:
                self.ratings = dict(ratings)
            self._matrix = None
        self.pair_matrix()

    def observe(self, votes: Mapping[str, int]) -> None:
        """Live vote counts (e.g. :meth:`SharedVoteCounts.read`, shared by every worker): each
        model's count becomes max(known, given). The distribution is recomputed only when the
        set of models below their ``vote_target`` (the ones boosted) changes."""
        with self._lock:
            merged = dict(self.votes)
            for m, n in votes.items():
                if n > merged.get(m, 0):
                    merged[m] = int(n)
            before = self._boosted(self.votes)
            self.votes = merged
            if self._boosted(merged) != before:
                self._matrix = None

    def _boosted(self, votes: Mapping[str, int]) -> frozenset[str]:
        return frozenset(n for n, t in zip(self.names, self.targets) if t is not None and votes.get(n, 0) < t)

    def set_outage(self, models: Iterable[str]) -> None:
        """Replace the outage list (models not sampled)."""
        with self._lock:
            self.config.outage = set(models)
            self._matrix = None

    # -- distributions -------------------------------------------------------------------------
    def model_weights(self, boosted: bool = True) -> np.ndarray:
        """FastChat's get_sample_weight for every model, shape (n,)."""
        w = self.weights.copy()
        for i, name in enumerate(self.names):
            if name in self.config.outage:
                w[i] = 0.0
            elif boosted and self.targets[i] is not None and self.votes.get(name, 0) < self.targets[i]:
                w[i] *= self.config.boost
        return w

    def _allowed(self) -> np.ndarray:
        n = len(self.names)
        ok = ~np.eye(n, dtype=bool)
        anon = np.array([m in self.config.anon_only for m in self.names])
        ok &= ~(anon[:, None] & anon[None, :])
        return ok

    def _available(self) -> np.ndarray:
        """Allowed pairs between models that can be drawn at all (weight > 0, not in outage)."""
        avail = self.model_weights(boosted=False) > 0
        return self._allowed() & avail[:, None] & avail[None, :]

    def _fastchat(self) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.names)}
        targets = {index[m]: [index[t] for t in ts if t in index] for m, ts in self.config.battle_targets.items() if m in index}
        # FastChat boosts the first draw only
        return fastchat_pairs(self.model_weights(boosted=True), self.model_weights(boosted=False), self._allowed(), targets)

    def _uniform(self) -> np.ndarray:
        return uniform_pairs(self._available())

    def _rating_vector(self) -> np.ndarray:
        return np.array([self.ratings.get(m, np.nan) for m in self.names], dtype=float)

    def _pair_vote_matrix(self) -> np.ndarray:
        n = len(self.names)
        N = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                N[i, j] = N[j, i] = self.pair_votes.get(frozenset((self.names[i], self.names[j])), 0.0)
        return N

    def _active(self) -> np.ndarray:
        return active_pairs(self._rating_vector(), self._pair_vote_matrix(), self._available())

    def _targeted(self) -> np.ndarray:
        floor = self._fastchat()
        design = targeted_design(self._rating_vector(), self._pair_vote_matrix(), self._available(), floor, self.config.explore, start=self._design)
        self._design = design  # warm start of the next refresh (the optimum moves little)
        return mix(design, np.where(self._available(), floor, 0.0), self.config.explore)

    def pair_matrix(self) -> np.ndarray:
        """P[i, j] = probability of the unordered pair {names[i], names[j]}; symmetric, zero
        diagonal, upper triangle sums to 1 (all zeros when no pair is possible)."""
        with self._lock:
            if self._matrix is None:
                self._matrix = self._compute()
            return self._matrix.copy()

    def _compute(self) -> np.ndarray:
        policy = self.config.policy
        if policy == "uniform":
            M = self._uniform()
        elif policy == "active":
            M = mix(self._active(), self._fastchat(), self.config.explore)
        elif policy == "targeted":
            M = self._targeted()
        else:
            M = self._fastchat()
        return _normalise(M)

    def probability(self, a: str, b: str) -> float:
        """P(unordered pair {a, b}) under the current distribution."""
        M = self.pair_matrix()
        return float(M[self.names.index(a), self.names.index(b)])

    def sample(self, only: Iterable[str] | None = None) -> SampledPair:
        """Draw a pair and a random left/right order.

        Parameters: only, the models the pair must come from (e.g. the ``vision: true`` models
        for a battle with an image), or None for every model. The policy's distribution is
        conditioned on both models being in ``only``: P(pair | only) = P(pair) / P(both in
        only), the probability stored with the battle, so inverse-propensity weighting stays
        exact within an arena.
        Raises: SamplingError when fewer than two models can be drawn (among ``only``).
        """
        M = self.pair_matrix()
        if only is not None:
            keep = np.array([n in set(only) for n in self.names], dtype=bool)
            M = _normalise(np.where(keep[:, None] & keep[None, :], M, 0.0))
        iu = np.triu_indices(len(self.names), k=1)
        probs = M[iu]
        if probs.sum() <= 0:
            if only is not None:
                raise SamplingError("fewer than two models that take images are available for image battles (check the registry's vision flags and the outage list)")
            raise SamplingError("fewer than two models are available for anonymous battles (check the registry's anonymous/weight and the outage list)")
        with self._lock:
            k = self._rng.choices(range(len(probs)), weights=probs.tolist())[0]
            swap = self._rng.random() < 0.5
        i, j = int(iu[0][k]), int(iu[1][k])
        a, b = (self.names[j], self.names[i]) if swap else (self.names[i], self.names[j])
        return SampledPair(a, b, float(probs[k]), self.config.policy)


def _normalise(M: np.ndarray) -> np.ndarray:
    s = np.triu(M, 1).sum()
    return M / s if s > 0 else M


class SharedVoteCounts:
    """The per-model vote counts the sampler balances on (``vote_target`` boosts), shared by
    every worker through a :class:`~openarena.serving.shared_state.SharedState`.

    Counters ``sampler:votes:<model>`` count the counted anonymous votes of each model: every
    worker adds a vote as it is recorded (:meth:`add_vote`, or :meth:`add_vote_soon` from the vote
    route: the votes of the next 50 ms together), and the leaderboard refresh of any
    worker raises them to the database's counts (:meth:`seed`, pushed on the next request by
    :meth:`read`), so a Redis restart (no persistence needed) heals at the next refresh.
    A worker reads them before drawing a pair (:meth:`read`, one round trip).
    """

    KEY = "sampler:votes:"
    FLUSH_S = 0.05  #: seconds the counts of :meth:`add_vote_soon` wait to be sent together

    def __init__(self, shared, models: Sequence[str]) -> None:
        self.shared = shared
        self.models = list(models)
        self._pending: dict[str, int] | None = None
        self._lock = threading.Lock()
        self._unsent: dict[str, int] = {}  # add_vote_soon's counts (event loop only)
        self._flusher: asyncio.Task | None = None

    def seed(self, votes: Mapping[str, int]) -> None:
        """Counts from the database (any thread): pushed to the shared state on the next read."""
        with self._lock:
            self._pending = {m: int(n) for m, n in votes.items() if m in self.models}

    async def read(self) -> dict[str, int]:
        """{model: votes} as every worker sees it. Raises: SharedStateError."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending:
            try:
                await self.shared.raise_to({self.KEY + m: n for m, n in pending.items()})
            except Exception:
                with self._lock:  # try again on the next read
                    self._pending = self._pending or pending
                raise
        values = await self.shared.get_many([self.KEY + m for m in self.models])
        return dict(zip(self.models, values))

    async def add_vote(self, *models: str) -> None:
        """One more counted vote for each of ``models`` (one round trip). Raises: SharedStateError."""
        await self.shared.incr_many([self.KEY + m for m in models if m in self.models])

    def add_vote_soon(self, *models: str) -> None:
        """:meth:`add_vote` without waiting, from the event loop: the votes of the next
        ``FLUSH_S`` seconds are added together by one task, in one round trip (:meth:`flush`),
        instead of one round trip in each vote's request. A failure of the shared state is
        logged and those counts are dropped (the next leaderboard refresh raises the counters to
        the database's counts, :meth:`seed`)."""
        for m in models:
            if m in self.models:
                self._unsent[m] = self._unsent.get(m, 0) + 1
        loop = asyncio.get_running_loop()
        task = self._flusher
        if task is None or task.done() or task.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        # again while votes came in during a send (add_vote_soon saw this task running and
        # started none): they would otherwise wait for the next vote
        while True:
            await asyncio.sleep(self.FLUSH_S)
            try:
                await self._send()
            except Exception:  # noqa: BLE001 - the sampler's counts only; the votes are committed
                log.warning("shared vote counts not updated", exc_info=True)
            if not self._unsent:
                return

    async def flush(self) -> None:
        """Add the counts of :meth:`add_vote_soon` not sent yet, after the send in flight (if
        any; at shutdown, so that its counts are not cut off). Raises: SharedStateError (those
        counts are then dropped)."""
        task = self._flusher
        if task is not None and not task.done() and task is not asyncio.current_task() and task.get_loop() is asyncio.get_running_loop():
            await asyncio.wait([task])  # its own failure is logged by it
        await self._send()

    async def _send(self) -> None:
        unsent, self._unsent = self._unsent, {}
        if unsent:
            await self.shared.incr_each({self.KEY + m: n for m, n in unsent.items()})
