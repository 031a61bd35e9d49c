"""Calling models: the registry of models (YAML), a thin client over the official ``openai``
package for any OpenAI-compatible endpoint and an on-disk response cache for batch jobs. The mock
server speaking the same protocol (tests and the demo) is :mod:`openarena.demo.mock_server`.

Shared by the web arena (two streams side by side), the category taggers and the LLM judges.
Names are imported on first use, so that ``import openarena.providers.registry`` (or the mock
server of openarena.demo) does not pay for importing ``openai``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ChatResult": "client",
    "ChatStream": "client",
    "PingResult": "client",
    "ProviderError": "client",
    "RetryPolicy": "client",
    "complete_chat": "client",
    "estimate_tokens": "client",
    "map_bounded": "client",
    "ping": "client",
    "stream_chat": "client",
    "ResponseCache": "cache",
    "cached_complete_chat": "cache",
    "ModelConfig": "registry",
    "ModelRegistry": "registry",
    "Price": "registry",
    "load_registry": "registry",
    "parse_registry": "registry",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from openarena.providers.cache import ResponseCache, cached_complete_chat
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
    from openarena.providers.registry import ModelConfig, ModelRegistry, Price, load_registry, parse_registry


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'openarena.providers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"openarena.providers.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
