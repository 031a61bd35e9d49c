"""The response cache: a repeated request is answered from disk, without a call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openarena.demo.mock_server import Behaviour, MockServer
from openarena.providers import ProviderError, RetryPolicy
from openarena.providers.cache import ResponseCache, cached_complete_chat

Q = [{"role": "user", "content": "Which answer is better?"}]


def test_cache_prevents_second_call(tmp_path: Path) -> None:
    with MockServer({"judge": Behaviour.scripted(["[[A>B]]", "[[B>A]]", "[[A=B]]"])}) as srv:
        model = srv.model_config("judge", temperature=0)
        db = tmp_path / "cache.sqlite"
        with ResponseCache(db) as cache:
            first = asyncio.run(cached_complete_chat(model, Q, cache))
            again = asyncio.run(cached_complete_chat(model, Q, cache))
            assert (first.text, first.cached) == ("[[A>B]]", False)
            assert (again.text, again.cached) == ("[[A>B]]", True)
            assert again.prompt_tokens == first.prompt_tokens and (cache.hits, cache.misses) == (1, 1)
            assert len(srv.requests) == 1
            # anything that changes the request is another key
            other = asyncio.run(cached_complete_chat(model, Q, cache, max_tokens=5))
            assert other.text == "[[B>A]]" and len(srv.requests) == 2
            moved = model.model_copy(update={"system_prompt": "You are a judge."})
            assert ResponseCache.key(moved, Q) != ResponseCache.key(model, Q)
            assert ResponseCache.key(model.model_copy(update={"timeout_s": 1}), Q) == ResponseCache.key(model, Q)
        with ResponseCache(db) as reopened:  # persists across processes/runs
            assert len(reopened) == 2
            assert asyncio.run(cached_complete_chat(model, Q, reopened)).cached
        assert len(srv.requests) == 2
        assert asyncio.run(cached_complete_chat(model, Q, None)).text == "[[A=B]]"


def test_failures_are_not_cached(tmp_path: Path) -> None:
    with MockServer({"down": Behaviour.failing(500, times=1, then="up again")}) as srv:
        model = srv.model_config("down")
        with ResponseCache(tmp_path / "c.sqlite") as cache:
            with pytest.raises(ProviderError):
                asyncio.run(cached_complete_chat(model, Q, cache, retry=RetryPolicy(max_attempts=1)))
            assert len(cache) == 0
            assert asyncio.run(cached_complete_chat(model, Q, cache)).text == "up again"
            assert len(cache) == 1
