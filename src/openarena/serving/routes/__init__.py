"""Routes of the web arena, one module per view. What they share lives in its own module and is
re-exported here:

- :mod:`~openarena.serving.routes.deps`: FastAPI dependencies (``State``, ``ClientIP``,
  ``Session``, ``RateLimit``) with their ``Annotated`` aliases;
- :mod:`~openarena.serving.routes.bodies`: the pydantic request bodies (Literal types, text
  checks);
- :mod:`~openarena.serving.routes.errors`: :class:`ApiError` and the one refusal handler
  (``{"error", "code"}``), the HTML error pages;
- :mod:`~openarena.serving.routes.pages`: the navigation and :func:`render_page`.
"""

from __future__ import annotations

from openarena.serving.routes.deps import (
    BattleLimit, ClientIP, PromptLimit, RateLimit, RunLimit, Session, State, VoteLimit, VoterSession, api_session, client_ip, get_state,
)
from openarena.serving.routes.errors import ApiError
from openarena.serving.routes.pages import NAV, render_page

__all__ = [
    "NAV", "ApiError", "BattleLimit", "ClientIP", "PromptLimit", "RateLimit", "RunLimit", "Session", "State", "VoteLimit",
    "VoterSession", "api_session", "client_ip", "get_state", "render_page",
]
