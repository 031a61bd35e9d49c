"""Saving and loading trained routers, without pickle.

A trained router is one ``.npz`` file (numpy's zip of arrays, read with
``allow_pickle=False``, so loading a file cannot run code) holding:

- ``meta``: a JSON document (UTF-8 bytes as a uint8 array): ``format`` ("openarena-router/1"),
  ``router`` (its ``--router`` name), ``strong`` / ``weak`` (the models it routes between),
  ``models`` (p2l: every model, in coefficient order), ``embedder`` (``{"kind": "tfidf-svd",
  "params": {...}, "vocabulary": {term: column}}`` or ``{"kind": "endpoint", "model": NAME}``),
  ``params`` (the router's hyper-parameters), ``trained_on`` (source, prompt count) and
  ``openarena_version``.
- the fitted arrays, by name: ``tfidf_idf``, ``svd_components`` (the TF-IDF + SVD embedder);
  ``mu``, ``sd``, ``w`` (difficulty), ``w`` (classifier), ``E``, ``y``, ``a``, ``b`` (sw_ranking: the training
  embeddings, labels and compared groups; the group names in the metadata), ``part0``, ``part1``[, ``part2``] (mf and p2l: the fitted matrices of
  :class:`~openarena.routing.routers.PairwiseScorer`).

Anything else in the file, an unknown format or router, or an array of object dtype is
refused with a DataError naming the file.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from openarena import __version__
from openarena.errors import DataError
from openarena.routing.embeddings import EndpointEmbedder, TfidfEmbedder
from openarena.routing.routers import (
    ClassifierRouter,
    DifficultyRouter,
    LengthRouter,
    MFRouter,
    P2LRouter,
    PairwiseScorer,
    RandomRouter,
    SWRankingRouter,
    make_router,
)

__all__ = ["FORMAT", "load_router", "save_router"]

FORMAT = "openarena-router/1"
#: Largest router file read (bytes): sw_ranking keeps its training embeddings.
MAX_BYTES = 512 * 1024 * 1024


def _embedder_state(emb: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if isinstance(emb, TfidfEmbedder):
        vec = emb.vec_
        arrays["tfidf_idf"] = np.asarray(vec.idf_, dtype=np.float64)
        arrays["svd_components"] = np.asarray(emb.svd_.components_, dtype=np.float64)
        return {"kind": "tfidf-svd", "params": {"dim": emb.dim, "max_features": emb.max_features, "seed": emb.seed},
                "vocabulary": {str(k): int(v) for k, v in vec.vocabulary_.items()}}
    if isinstance(emb, EndpointEmbedder):
        return {"kind": "endpoint", "model": emb.model.name, "batch": emb.batch}
    raise DataError(f"cannot save an embedder of type {type(emb).__name__}", field="embedder", expected="tfidf-svd or endpoint")


class _SavedSVD:
    """The projection of a fitted TruncatedSVD (transform = X @ components.T)."""

    def __init__(self, components: np.ndarray) -> None:
        self.components_ = components

    def transform(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.components_.T)


def _embedder_from(state: dict[str, Any], arrays: dict[str, np.ndarray], registry: Any, source: str) -> Any:
    kind = state.get("kind")
    if kind == "tfidf-svd":
        from sklearn.feature_extraction.text import TfidfVectorizer

        p = state["params"]
        emb = TfidfEmbedder(int(p["dim"]), int(p["max_features"]), int(p["seed"]))
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float32,
                              vocabulary={str(k): int(v) for k, v in state["vocabulary"].items()})
        vec.fit(["x"])  # sets up the fixed vocabulary; the idf is replaced next
        vec.idf_ = arrays["tfidf_idf"]
        emb.vec_ = vec
        emb.svd_ = _SavedSVD(arrays["svd_components"])
        return emb
    if kind == "endpoint":
        if registry is None:
            raise DataError(f"the router embeds with the endpoint model {state.get('model')!r}", source, field="embedder",
                            expected="a registry (--registry) that holds it")
        return EndpointEmbedder(registry.get(state["model"]), batch=int(state.get("batch", 64)))
    raise DataError(f"unknown embedder kind {kind!r}", source, field="embedder", expected="tfidf-svd or endpoint")


def save_router(router: Any, path: str | os.PathLike[str], *, strong: str | None = None, weak: str | None = None,
                trained_on: dict[str, Any] | None = None) -> Path:
    """Write a fitted router to ``path`` (.npz; see the module docstring for the layout).

    Parameters: router, a fitted router of :func:`~openarena.routing.routers.make_router`;
    strong, weak, the model names it routes between (stored in the metadata); trained_on, a
    small JSON-able description of the training data.
    Returns: the path written. Raises: DataError for an unfitted router or unknown embedder.
    """
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"format": FORMAT, "router": router.name, "strong": strong, "weak": weak,
                            "trained_on": trained_on or {}, "openarena_version": __version__, "params": {}}
    try:
        if isinstance(router, RandomRouter):
            meta["params"] = {"seed": router.seed}
        elif isinstance(router, DifficultyRouter):
            arrays.update(mu=router.mu_, sd=router.sd_, w=router.w_)
        elif isinstance(router, ClassifierRouter):
            arrays["w"] = router.w_
            meta["params"] = {"l2": router.l2}
        elif isinstance(router, SWRankingRouter):
            arrays.update(E=router.E_, y=router.y_, a=router.a_, b=router.b_)
            meta["params"] = {"scale": router.scale, "prior": router.prior, "strong": router.strong_, "weak": router.weak_}
            meta["groups"] = list(router.groups_)
        elif isinstance(router, (MFRouter, P2LRouter)):
            for i, part in enumerate(router.f_.parts):
                arrays[f"part{i}"] = part
            meta["params"] = {"rank": router.rank, "l2": router.l2, "seed": router.seed} if isinstance(router, MFRouter) else {"l2": router.l2}
            if isinstance(router, P2LRouter):
                meta["models"] = list(router.models_)
                if getattr(router, "pair_", None):
                    meta["pair"] = list(router.pair_)
        elif not isinstance(router, LengthRouter):
            raise DataError(f"cannot save a router of type {type(router).__name__}", field="router")
        if hasattr(router, "embedder"):
            meta["embedder"] = _embedder_state(router.embedder, arrays)
    except AttributeError:
        raise DataError(f"the {router.name} router is not fitted", field="router", expected="fit() before saving") from None
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})
    return path


def load_router(path: str | os.PathLike[str], registry: Any = None) -> tuple[Any, dict[str, Any]]:
    """Read a router written by :func:`save_router`.

    Parameters: path; registry, needed when the router embeds with an endpoint model.
    Returns: (fitted router, meta dict).
    Raises: DataError naming the file for a missing, oversized or foreign file, an unknown
    format or router, a missing array or an object array (pickles are never loaded).
    """
    source = str(path)
    p = Path(path)
    if not p.is_file():
        raise DataError("no such router file", source, expected="a .npz file written by `openarena route train`")
    if p.stat().st_size > MAX_BYTES:
        raise DataError(f"router file larger than {MAX_BYTES // 2**20} MiB", source)
    try:
        with np.load(io.BytesIO(p.read_bytes()), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"not a router file ({e.__class__.__name__}: {str(e)[:120]})", source,
                        expected="a .npz file written by `openarena route train` (object arrays / pickles are refused)") from None
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (KeyError, UnicodeDecodeError, json.JSONDecodeError):
        raise DataError("no readable 'meta' document", source, field="meta", expected=FORMAT) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"format {meta.get('format') if isinstance(meta, dict) else None!r}", source, field="format", expected=FORMAT)
    name = meta.get("router")
    try:
        router = make_router(str(name), seed=int(meta.get("params", {}).get("seed", 0)))
    except DataError:
        raise DataError(f"unknown router {name!r}", source, field="router") from None
    params = meta.get("params", {})
    try:
        if "embedder" in meta:
            router.embedder = _embedder_from(meta["embedder"], arrays, registry, source)
        if isinstance(router, DifficultyRouter):
            router.mu_, router.sd_, router.w_ = arrays["mu"], arrays["sd"], arrays["w"]
        elif isinstance(router, ClassifierRouter):
            router.w_, router.l2 = arrays["w"], float(params.get("l2", 1.0))
        elif isinstance(router, SWRankingRouter):
            router.E_, router.y_ = arrays["E"], arrays["y"]
            router.a_, router.b_ = arrays["a"].astype(np.int64), arrays["b"].astype(np.int64)
            router.groups_ = [str(g) for g in meta["groups"]]
            router.scale, router.prior = float(params["scale"]), float(params["prior"])
            router.strong_, router.weak_ = int(params["strong"]), int(params["weak"])
            G = len(router.groups_)
            if not (0 <= router.strong_ < G and 0 <= router.weak_ < G) or len(router.a_) != len(router.y_) or len(router.b_) != len(router.y_) \
                    or (len(router.a_) and (min(router.a_.min(), router.b_.min()) < 0 or max(router.a_.max(), router.b_.max()) >= G)):
                raise DataError("inconsistent sw_ranking arrays (groups, comparisons)", source, field="groups")
        elif isinstance(router, (MFRouter, P2LRouter)):
            parts = [arrays[f"part{i}"] for i in range(3) if f"part{i}" in arrays]
            router.f_ = PairwiseScorer(tuple(parts))
            if isinstance(router, P2LRouter):
                router.models_ = [str(m) for m in meta["models"]]
                if meta.get("pair"):
                    router.pair_ = tuple(str(m) for m in meta["pair"])
                    if not set(router.pair_) <= set(router.models_) or len(router.pair_) != 2:
                        raise DataError(f"pair {meta['pair']!r} not among the models", source, field="pair")
    except KeyError as e:
        raise DataError(f"missing {e.args[0]!r} for the {name} router", source, field=str(e.args[0])) from None
    return router, meta
