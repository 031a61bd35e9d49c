"""The demo models: a mock OpenAI-compatible server (:mod:`openarena.demo.mock_server`) and the
registry that points at it (``openarena/demo/models.yaml``, :data:`DEMO_REGISTRY`), so the arena
works with no key and no network (``openarena serve --demo``, ``openarena models check --demo``).

Why ``demo`` and not ``testing``: the entry points start these at run time and the wheel ships
them, so they are a product feature, not a test-only helper; the tests use the same server (one
mock of the OpenAI protocol for the demo, the tests and the bench scripts). It sits above
providers/ (the server hands out :class:`~openarena.providers.registry.ModelConfig` objects) and
below serving/ and cli/; providers/ never imports it.

This module is light (no FastAPI, no pydantic): the CLI reads :data:`DEMO_REGISTRY` at start-up.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEMO_REGISTRY", "start_demo_models"]

#: The registry of the demo models served by the mock server, shipped inside the package.
DEMO_REGISTRY = Path(__file__).with_name("models.yaml")


def start_demo_models(port: int = 0):
    """Start :class:`~openarena.demo.mock_server.MockServer` with the demo behaviours on
    127.0.0.1 (``port`` 0 = a free port) and point ``OPENARENA_MOCK_URL`` at it.
    Returns: the running MockServer (stop it with ``.stop()``)."""
    from openarena.demo.mock_server import DEMO_BEHAVIOURS, MockServer

    srv = MockServer(dict(DEMO_BEHAVIOURS), port=port).start()
    os.environ["OPENARENA_MOCK_URL"] = srv.base_url
    return srv
