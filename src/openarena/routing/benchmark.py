"""One call for the router benchmark: train a router, route the test prompts between a strong
and a weak model, and score it beside the baselines (random, length, the oracle), with
bootstrap intervals; k-fold by prompt when there is no separate test set.

Used by ``openarena route eval`` and ``bench/routing.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from openarena.errors import DataError
from openarena.routing.data import PromptScores, preference_labels
from openarena.routing.evaluate import evaluate_router
from openarena.routing.battles import TIE_RULES
from openarena.routing.routers import make_router

if TYPE_CHECKING:
    from openarena.routing.battles import ArenaBattles, TierPair

BASELINES = ("random", "length")
#: fewest training prompts a router is trained on (the embeddings need a vocabulary)
MIN_PROMPTS = 10


@dataclass(frozen=True)
class RouteBenchmark:
    """Results of :func:`route_eval`: ``results`` maps router name -> RouterEval (the router,
    then random, length and 'oracle'); strong, weak; n_train, n_test, folds; dropped (what the
    readers removed, e.g. contaminated prompts)."""

    results: dict
    strong: str
    weak: str
    n_train: int
    n_test: int
    folds: int
    dropped: dict

    def rows(self) -> list[dict]:
        """One dict per router (``RouterEval.as_dict``: apgr, cpt50, cpt80 as fractions in
        [0, 1], their intervals, the PGR curve), in the order of ``results``."""
        return [r.as_dict() for r in self.results.values()]


def pick_pair(data: PromptScores, strong: str | None, weak: str | None) -> tuple[str, str]:
    """(strong, weak): given, or the two models of a two-model data set ordered by mean quality.
    Raises: DataError when they cannot be inferred."""
    if strong and weak:
        return strong, weak
    if len(data.models) != 2 or strong or weak:
        raise DataError(f"{len(data.models)} models in the data: name the pair", data.source, field="strong/weak", expected=f"two of {', '.join(data.models)}")
    means = data.scores.mean()
    hi, lo = means.idxmax(), means.idxmin()
    return str(hi), str(lo)


def _fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % folds)


def within_fold_quantiles(scores: np.ndarray) -> np.ndarray:
    """Scores of one fold's router as quantiles in (0, 1) of that fold (average ranks for ties,
    so equal scores stay equal).

    Each fold has its own trained router and so its own score scale: a router's threshold is
    calibrated on that router. Pooling raw scores across folds compares scales, and a fold-level
    offset that comes from the training labels (the training mean, which every shrunk or
    intercept-carrying router has) is anti-correlated with the fold's test labels: a fold
    whose test prompts need the strong model more has a training set that needs it less. A
    router that outputs its training mean and nothing else would score below random pooled,
    and exactly random after this map (each fold then routes the same share of its prompts)."""
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=float)
    return (rankdata(s, method="average") - 0.5) / len(s) if len(s) else s


def fit_with_battles(r, name: str, prompts: list[str], labels: np.ndarray, arena: "ArenaBattles | None" = None,
                     pair: "TierPair | None" = None, ties: str | None = None):
    """Fit router ``r`` (called ``name``) on strong-vs-weak ``labels`` of ``prompts`` plus, when
    given, the ``arena`` battles split by ``pair`` (RouteLLM's arena data, and its "arena + gold
    / judge" augmentation when both are given).

    sw_ranking and p2l learn from the full multi-model battle: every battle is a comparison of
    the tiers of its two models, the labelled prompts a comparison of the strong tier with the
    weak one, and the router scores P(strong tier beats weak tier). The other routers learn from
    the battles between a strong-tier and a weak-tier model, ties by ``ties`` (default: the
    router's rule in :data:`~openarena.routing.battles.TIE_RULES`, as RouteLLM trains it).
    Returns: the fitted router. Raises: DataError when no battle is usable."""
    if arena is None or name in BASELINES:  # random and length learn nothing
        return r.fit(prompts, labels)
    hi, lo = f"tier{pair.strong_tier}", f"tier{pair.weak_tier}"
    if name in ("sw_ranking", "p2l"):
        P, A, B, Y = arena.group_pairs({m: f"tier{t}" for m, t in pair.tiers.items()})
        if len(P) + len(prompts) < MIN_PROMPTS:
            raise DataError(f"{len(P)} battles between models of two different tiers", arena.source, field="arena",
                            expected=f"at least {MIN_PROMPTS} to train {name}")
        P, A, B = P + list(prompts), A + [hi] * len(prompts), B + [lo] * len(prompts)
        Y = np.concatenate([Y, np.asarray(labels, dtype=float)])
        if name == "sw_ranking":
            return r.fit_groups(P, A, B, Y, hi, lo)
        r.fit_pairs(P, A, B, Y)
        r.pair_ = (hi, lo)
        return r
    ap, ay = arena.pair_labels(pair.strong_models, pair.weak_models, ties or TIE_RULES.get(name, "half"))
    if len(prompts) + len(ap) < MIN_PROMPTS:
        raise DataError(f"{len(ap)} battles between the strong side ({', '.join(pair.strong_models)}) and the weak side "
                        f"({', '.join(pair.weak_models)})", arena.source, field="arena",
                        expected=f"at least {MIN_PROMPTS} to train {name} (more battles, or wider strong and weak model lists)")
    return r.fit(list(prompts) + ap, np.concatenate([np.asarray(labels, dtype=float), ay]))


def route_eval(
    router: str,
    train: "PromptScores | ArenaBattles",
    test: PromptScores | None = None,
    *,
    strong: str | None = None,
    weak: str | None = None,
    arena: "ArenaBattles | None" = None,
    pair: "TierPair | None" = None,
    ties: str | None = None,
    folds: int = 5,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    embedder=None,
    progress=None,
) -> RouteBenchmark:
    """Train ``router`` on ``train`` (labels: strong better = 1, tie 0.5, weak better 0) and
    evaluate on ``test``; without ``test``, ``folds``-fold cross-validation by prompt (every prompt
    scored once by a router that never saw it; scores as quantiles within their fold, see
    :func:`within_fold_quantiles`). The random, length and oracle routers are scored on the same
    prompts with the same bootstrap resamples.

    Arena battles (:class:`~openarena.routing.battles.ArenaBattles`): as ``train`` (then
    ``test`` is needed: battles carry no per-prompt quality of the pair), or as ``arena``
    beside per-prompt training data (RouteLLM's augmentation: every fold trains on its gold or
    judge labels plus all the battles). ``pair`` says which battles are strong vs weak
    (default: :func:`~openarena.routing.battles.tier_pair` of the battles for the routed
    ``strong`` and ``weak``); ``ties`` overrides the router's ties rule (see
    :func:`fit_with_battles`).

    Returns: RouteBenchmark (``dropped`` also holds what the battle reader left out and
    ``arena``, one line on the tiers). Raises: DataError for unknown models or routers,
    folds < 2, battles without test data.
    """
    from openarena.routing.battles import ArenaBattles, tier_pair

    make_router(router)  # validates the name before any work
    if isinstance(train, ArenaBattles):
        if test is None:
            raise DataError("arena battles carry no per-prompt quality of the routed pair", train.source, field="test",
                            expected="test data (correctness or judge grades of the strong and weak models)")
        if arena is not None:
            raise DataError("battles given twice (as training data and as augmentation)", field="arena")
        arena, train = train, None
    ref = test if train is None else train
    strong, weak = pick_pair(ref, strong, weak)
    if arena is not None and pair is None:
        pair = tier_pair(arena, strong=strong, weak=weak)
    dropped = dict(ref.dropped)
    if arena is not None:
        dropped.update({f"battles: {k}": v for k, v in arena.dropped.items()}, arena=f"{len(arena):,} battles of {arena.source}; {pair.how}")
    n_min = MIN_PROMPTS if (test is not None or arena is not None) else MIN_PROMPTS * folds
    if train is not None and arena is None and len(train.pair(strong, weak)[0]) < n_min:
        raise DataError(f"{len(train.pair(strong, weak)[0])} prompts scored for both models", train.source, field="train",
                        expected=f"at least {n_min} ({MIN_PROMPTS} per training fold) to train and evaluate a router")
    if test is None and folds < 2:
        raise DataError(f"{folds} folds", field="folds", expected="at least 2 (or a separate test set)")
    names = dict.fromkeys((router,) + BASELINES)
    if test is not None:
        tr_p, tr_y = [], np.zeros(0)
        if train is not None:
            tr_p, tr_s, tr_w = train.pair(strong, weak)
            tr_y = preference_labels(tr_s, tr_w)
        te_p, qs, qw = test.pair(strong, weak)
        scores = {}
        for name in names:
            r = make_router(name, embedder=embedder, seed=seed)
            scores[name] = fit_with_battles(r, name, tr_p, tr_y, arena, pair, ties).score(te_p)
            if progress:
                progress(1)
        n_train, n_folds = len(tr_p) + (len(arena) if arena is not None else 0), 1
    else:
        te_p, qs, qw = train.pair(strong, weak)
        fold = _fold_ids(len(te_p), folds, seed)
        scores = {name: np.empty(len(te_p)) for name in names}
        for k in range(folds):
            tr, te = fold != k, fold == k
            p_tr = [p for p, t in zip(te_p, tr) if t]
            p_te = [p for p, t in zip(te_p, te) if t]
            y = preference_labels(qs[tr], qw[tr])
            emb = None
            for name in scores:
                r = make_router(name, embedder=emb if emb is not None else embedder, seed=seed + k)
                scores[name][te] = within_fold_quantiles(fit_with_battles(r, name, p_tr, y, arena, pair, ties).score(p_te))
                emb = getattr(r, "embedder", emb)
                if progress:
                    progress(1)
            # a random router is re-drawn per fold; every router's scores become quantiles within
            # the fold (see within_fold_quantiles): pooled folds are compared on one scale
        n_train, n_folds = int((fold != 0).sum()) + (len(arena) if arena is not None else 0), folds
    results = {name: evaluate_router(name, s, qs, qw, rounds=rounds, level=level, seed=seed, random=name == "random") for name, s in scores.items()}
    results["oracle"] = evaluate_router("oracle", qs - qw, qs, qw, rounds=rounds, level=level, seed=seed)
    return RouteBenchmark(results, strong, weak, n_train, len(te_p), n_folds, dropped)


def plot_pgr(bench: RouteBenchmark, png: str, html: str | None = None) -> None:
    """The PGR-vs-strong-call curve of every router (PNG with matplotlib; HTML with plotly when
    installed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, r in bench.results.items():
        ax.plot(np.array(r.grid) * 100, r.pgr, marker=".", label=f"{name} (APGR {r.apgr:.3f})")
    ax.set_xlabel("strong-model calls (%)")
    ax.set_ylabel("performance gap recovered")
    ax.set_title(f"{bench.strong} vs {bench.weak}, {bench.n_test:,} test prompts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    if html:
        try:
            import plotly.graph_objects as go
        except ImportError:
            return
        fig2 = go.Figure()
        for name, r in bench.results.items():
            fig2.add_trace(go.Scatter(x=[g * 100 for g in r.grid], y=list(r.pgr), mode="lines+markers", name=f"{name} (APGR {r.apgr:.3f})"))
        fig2.update_layout(xaxis_title="strong-model calls (%)", yaxis_title="performance gap recovered", title=f"{bench.strong} vs {bench.weak}")
        fig2.write_html(html, include_plotlyjs=True, full_html=True)
