"""An on-disk cache of chat completions, for batch jobs that may be re-run (judges, taggers).

The key is a SHA-256 of everything that determines the answer: the endpoint (``base_url``), the
endpoint's model id, and the full request (messages after the system prompt is applied, and
every generation parameter after overrides). The API key, timeouts and retry policy are not part
of it. Only successful results are stored. A cached answer is returned even for a sampled
(temperature > 0) request: that is the point for reproducible judging, and the reason not to use
the cache in the arena.

Storage is one SQLite file (stdlib ``sqlite3``, WAL mode), safe to share between processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from openarena.providers.client import ChatResult, RetryPolicy, _messages, _params, complete_chat
from openarena.providers.registry import ModelConfig

__all__ = ["CACHE_FILE_NAME", "ResponseCache", "cached_complete_chat"]

#: the file name of the response cache in the folder of a batch job's output (``judge answer``,
#: ``judge run`` and ``tag`` all use it: one cache for all LLM calls written to one place)
CACHE_FILE_NAME = ".openarena-cache.sqlite"


class ResponseCache:
    """A persistent map from request key to :class:`ChatResult`; a context manager.

    Parameters: path, the SQLite file (created with its table if missing).
    Attributes: hits and misses, counted by :func:`cached_complete_chat` since opening.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, created REAL, result TEXT)"
        )
        self._db.commit()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(model: ModelConfig, messages: Sequence[dict[str, Any]], **overrides: Any) -> str:
        """Hex SHA-256 of (base_url, the request body that :func:`complete_chat` would send)."""
        body = _params(model, _messages(model, messages), overrides)
        blob = json.dumps({"base_url": model.base_url, "request": body}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get(self, key: str) -> ChatResult | None:
        """The stored result for ``key`` (with ``cached=True``), or None."""
        row = self._db.execute("SELECT result FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        fields = json.loads(row[0])
        known = {f.name for f in dataclasses.fields(ChatResult)}
        return ChatResult(**{k: v for k, v in fields.items() if k in known} | {"cached": True})

    def put(self, key: str, model_name: str, result: ChatResult) -> None:
        """Store ``result`` under ``key`` (replacing any previous one)."""
        data = json.dumps(dataclasses.asdict(result) | {"cached": False})
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, model, created, result) VALUES (?, ?, ?, ?)",
            (key, model_name, time.time(), data),
        )
        self._db.commit()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def cached_complete_chat(
    model: ModelConfig,
    messages: Sequence[dict[str, Any]],
    cache: ResponseCache | None,
    *,
    retry: RetryPolicy | None = None,
    timeout_s: float | None = None,
    **overrides: Any,
) -> ChatResult:
    """:func:`~openarena.providers.client.complete_chat` through ``cache`` (None = no cache).

    Returns: the cached ChatResult (``cached=True``, no request sent) or a fresh one, stored.
    Raises: as complete_chat; failures are not cached.
    """
    if cache is None:
        return await complete_chat(model, messages, retry=retry, timeout_s=timeout_s, **overrides)
    key = ResponseCache.key(model, messages, **overrides)
    hit = cache.get(key)
    if hit is not None:
        cache.hits += 1
        return hit
    cache.misses += 1
    result = await complete_chat(model, messages, retry=retry, timeout_s=timeout_s, **overrides)
    cache.put(key, model.name, result)
    return result
