"""``--demo``: start the mock OpenAI-compatible server that the demo registry (openarena/providers/demo_models.yaml) points
at (``OPENARENA_MOCK_URL``), so the arena works with no key and no network."""

from __future__ import annotations

import os


def start_demo_models(port: int = 0):
    """Start :class:`~openarena.providers.mock_server.MockServer` with the demo behaviours on
    127.0.0.1 (``port`` 0 = a free port) and point ``OPENARENA_MOCK_URL`` at it.
    Returns: the running MockServer (stop it with ``.stop()``)."""
    from openarena.providers.mock_server import DEMO_BEHAVIOURS, MockServer

    srv = MockServer(dict(DEMO_BEHAVIOURS), port=port).start()
    os.environ["OPENARENA_MOCK_URL"] = srv.base_url
    return srv
