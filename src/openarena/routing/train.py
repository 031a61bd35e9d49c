"""Training one router on a whole data set (for saving and serving; the benchmark trains per
fold in :mod:`openarena.routing.benchmark`)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from openarena.errors import DataError
from openarena.routing.battles import ArenaBattles, TierPair, tier_pair
from openarena.routing.benchmark import fit_with_battles, pick_pair
from openarena.routing.data import PromptScores, preference_labels
from openarena.routing.routers import make_router

__all__ = ["train_router"]


def train_router(name: str, data: "PromptScores | ArenaBattles", *, strong: str | None = None, weak: str | None = None,
                 embedder: Any = None, seed: int = 0, pair: "TierPair | None" = None, ties: str | None = None) -> tuple[Any, str | None, str | None]:
    """Fit the router ``name`` on every prompt of ``data``.

    Strong/weak routers (and p2l given a pair): labels 1 / 0.5 / 0 where the strong model's
    quality is above / equal to / below the weak one's (RouteLLM). ``p2l`` without a pair, on
    data with three or more models: every pair of models scored on a prompt is one preference
    (Prompt-to-Leaderboard's per-prompt Bradley-Terry over all models).
    Arena battles (:class:`~openarena.routing.battles.ArenaBattles`): ``p2l`` without a pair
    learns every model of the battles (P2L); otherwise the battles are split into strong and
    weak sides by ``pair`` (default :func:`~openarena.routing.battles.tier_pair` for ``strong``
    and ``weak``) and the router is fitted as in
    :func:`~openarena.routing.benchmark.fit_with_battles` (ties by ``ties`` or the router's
    RouteLLM rule).
    Returns: (fitted router, strong, weak); strong and weak are None for a multi-model p2l.
    Raises: DataError for an unknown router or model, or no usable prompt.
    """
    if isinstance(data, ArenaBattles):
        make_router(name)
        if name == "p2l" and not (strong or weak) and pair is None:
            router = make_router("p2l", embedder=embedder, seed=seed)
            y = np.array([{"model_a": 1.0, "model_b": 0.0}.get(w, 0.5) for w in data.winner])
            return router.fit_pairs(data.prompts, list(data.model_a), list(data.model_b), y), None, None
        pair = pair or tier_pair(data, strong=strong, weak=weak)
        router = make_router(name, embedder=embedder, seed=seed)
        return fit_with_battles(router, name, [], np.zeros(0), data, pair, ties), strong, weak
    if name == "p2l" and not (strong or weak) and len(data.models) > 2:
        router = make_router("p2l", embedder=embedder, seed=seed)
        P, A, B, Y = [], [], [], []
        S = data.scores
        for (ma, mb) in combinations(list(data.models), 2):
            qa, qb = S[ma].to_numpy(float), S[mb].to_numpy(float)
            ok = ~(np.isnan(qa) | np.isnan(qb))
            for i in np.flatnonzero(ok):
                P.append(data.prompts[i])
                A.append(ma)
                B.append(mb)
            Y.extend(preference_labels(qa[ok], qb[ok]))
        if not P:
            raise DataError("no prompt scored for two models", data.source, expected="quality of several models per prompt")
        return router.fit_pairs(P, A, B, np.asarray(Y)), None, None
    strong, weak = pick_pair(data, strong, weak)
    prompts, qs, qw = data.pair(strong, weak)
    if len(prompts) == 0:
        raise DataError(f"no prompt scored for both {strong} and {weak}", data.source)
    router = make_router(name, embedder=embedder, seed=seed).fit(prompts, preference_labels(qs, qw))
    return router, strong, weak
