"""Prompt embeddings for routers.

- :class:`TfidfEmbedder` (the offline default, no download): TF-IDF of character 3- to 5-grams
  within word boundaries, reduced by truncated SVD to ``dim`` dimensions and L2-normalised;
  fitted on the training prompts only (scikit-learn).
- :class:`EndpointEmbedder`: any OpenAI-compatible ``/v1/embeddings`` endpoint of the model
  registry (real HTTP through the official openai client), in batches.

Both have ``fit(prompts) -> self`` and ``transform(prompts) -> ndarray (n, dim)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class TfidfEmbedder:
    """Character n-gram TF-IDF + truncated SVD (Deerwester et al. 1990, latent semantic
    analysis), offline."""

    name = "tfidf-svd"

    def __init__(self, dim: int = 256, max_features: int = 200_000, seed: int = 0) -> None:
        self.dim, self.max_features, self.seed = dim, max_features, seed

    def fit(self, prompts: Sequence[str]) -> "TfidfEmbedder":
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vec_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, max_features=self.max_features, sublinear_tf=True, dtype=np.float32)
        X = self.vec_.fit_transform(list(prompts))
        k = max(1, min(self.dim, X.shape[1] - 1, X.shape[0] - 1))
        self.svd_ = TruncatedSVD(k, random_state=self.seed).fit(X)
        return self

    def transform(self, prompts: Sequence[str]) -> np.ndarray:
        Z = self.svd_.transform(self.vec_.transform(list(prompts)))
        return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)


class EndpointEmbedder:
    """Embeddings from an OpenAI-compatible ``POST {base_url}/embeddings`` (a registry entry:
    base_url, model_id, api_key_env), L2-normalised. ``fit`` does nothing.

    Raises (transform): ProviderError-like RuntimeError naming the model when the endpoint fails
    or answers with the wrong number of vectors.
    """

    name = "endpoint"

    def __init__(self, model, batch: int = 64) -> None:
        self.model, self.batch = model, batch

    def fit(self, prompts: Sequence[str]) -> "EndpointEmbedder":
        return self

    def transform(self, prompts: Sequence[str]) -> np.ndarray:
        import os

        import openai

        key = os.environ.get(self.model.api_key_env, "") if self.model.api_key_env else "none"
        client = openai.OpenAI(base_url=self.model.base_url, api_key=key or "none", timeout=self.model.timeout_s)
        out = []
        prompts = list(prompts)
        for i in range(0, len(prompts), self.batch):
            chunk = prompts[i:i + self.batch]
            try:
                resp = client.embeddings.create(model=self.model.endpoint_model, input=chunk)
            except openai.OpenAIError as err:
                raise RuntimeError(f"{self.model.name}: embeddings request failed ({err.__class__.__name__})") from None
            vecs = [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]
            if len(vecs) != len(chunk):
                raise RuntimeError(f"{self.model.name}: {len(vecs)} embeddings for {len(chunk)} prompts")
            out.extend(vecs)
        Z = np.asarray(out, dtype=float)
        return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
