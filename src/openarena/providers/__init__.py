"""Calling models: the registry of models (YAML), a thin client over the official ``openai``
package for any OpenAI-compatible endpoint, an on-disk response cache for batch jobs, and a
mock server speaking the same protocol.

Shared by the web arena (two streams side by side), the category taggers and the LLM judges.
``mock_server`` is imported on demand (it needs FastAPI and uvicorn).
"""

from openarena.providers.client import (
    ChatResult,
    ChatStream,
    PingResult,
    ProviderError,
    RetryPolicy,
    complete_chat,
    estimate_tokens,
    map_bounded,
    ping,
    stream_chat,
)
from openarena.providers.cache import ResponseCache, cached_complete_chat
from openarena.providers.registry import ModelConfig, ModelRegistry, Price, load_registry, parse_registry

__all__ = [
    "ChatResult",
    "ChatStream",
    "ModelConfig",
    "ModelRegistry",
    "PingResult",
    "Price",
    "ProviderError",
    "ResponseCache",
    "RetryPolicy",
    "cached_complete_chat",
    "complete_chat",
    "estimate_tokens",
    "load_registry",
    "map_bounded",
    "parse_registry",
    "ping",
    "stream_chat",
]
