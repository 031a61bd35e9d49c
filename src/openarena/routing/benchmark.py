"""One call for the router benchmark: train a router, route the test prompts between a strong
and a weak model, and score it beside the baselines (random, length, the oracle), with
bootstrap intervals; k-fold by prompt when there is no separate test set.

Used by ``openarena route eval`` and ``bench/routing.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openarena.errors import DataError
from openarena.routing.data import PromptScores, preference_labels
from openarena.routing.evaluate import evaluate_router
from openarena.routing.routers import make_router

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


def route_eval(
    router: str,
    train: PromptScores,
    test: PromptScores | None = None,
    *,
    strong: str | None = None,
    weak: str | None = None,
    folds: int = 5,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    embedder=None,
    progress=None,
) -> RouteBenchmark:
    """Train ``router`` on ``train`` (labels: strong better = 1, tie 0.5, weak better 0) and
    evaluate on ``test``; without ``test``, ``folds``-fold cross-validation by prompt (every prompt
    scored once by a router that never saw it). The random, length and oracle routers are scored
    on the same prompts with the same bootstrap resamples.

    Returns: RouteBenchmark. Raises: DataError for unknown models or routers, folds < 2.
    """
    strong, weak = pick_pair(train, strong, weak)
    make_router(router)  # validates the name before any work
    n_min = MIN_PROMPTS if test is not None else MIN_PROMPTS * folds
    if len(train.pair(strong, weak)[0]) < n_min:
        raise DataError(f"{len(train.pair(strong, weak)[0])} prompts scored for both models", train.source, field="train",
                        expected=f"at least {n_min} ({MIN_PROMPTS} per training fold) to train and evaluate a router")
    if test is None and folds < 2:
        raise DataError(f"{folds} folds", field="folds", expected="at least 2 (or a separate test set)")
    if test is not None:
        tr_p, tr_s, tr_w = train.pair(strong, weak)
        te_p, qs, qw = test.pair(strong, weak)
        scores = {}
        for name in dict.fromkeys((router,) + BASELINES):
            scores[name] = make_router(name, embedder=embedder, seed=seed).fit(tr_p, preference_labels(tr_s, tr_w)).score(te_p)
            if progress:
                progress(1)
        n_train, n_folds = len(tr_p), 1
    else:
        te_p, qs, qw = train.pair(strong, weak)
        fold = _fold_ids(len(te_p), folds, seed)
        scores = {name: np.empty(len(te_p)) for name in dict.fromkeys((router,) + BASELINES)}
        for k in range(folds):
            tr, te = fold != k, fold == k
            p_tr = [p for p, t in zip(te_p, tr) if t]
            p_te = [p for p, t in zip(te_p, te) if t]
            y = preference_labels(qs[tr], qw[tr])
            emb = None
            for name in scores:
                r = make_router(name, embedder=emb if emb is not None else embedder, seed=seed + k)
                scores[name][te] = r.fit(p_tr, y).score(p_te)
                emb = getattr(r, "embedder", emb)
                if progress:
                    progress(1)
            # a random router is re-drawn per fold: its scores are comparable across folds
        n_train, n_folds = int((fold != 0).sum()), folds
    results = {name: evaluate_router(name, s, qs, qw, rounds=rounds, level=level, seed=seed, random=name == "random") for name, s in scores.items()}
    results["oracle"] = evaluate_router("oracle", qs - qw, qs, qw, rounds=rounds, level=level, seed=seed)
    dropped = dict(train.dropped)
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
