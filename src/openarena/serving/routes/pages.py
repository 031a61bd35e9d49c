"""Page rendering shared by the views: the navigation and :func:`render_page` (which issues the
session cookie on a first visit and puts the CSRF token in the page)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from openarena.serving.safety import csrf_token

__all__ = ["NAV", "render_page"]

NAV = [("/", "Arena"), ("/code", "Code"), ("/side-by-side", "Side by side"), ("/direct", "Direct chat"), ("/leaderboard", "Leaderboard"), ("/trust", "Trust"), ("/redteam", "Red team"), ("/about", "About")]


def render_page(request: Request, template: str, context: dict[str, Any] | None = None) -> HTMLResponse:
    """Render a page; issues the session cookie on the first visit."""
    st = request.app.state.arena
    sid, new = st.sessions.ensure(request)
    ctx = {"nav": NAV, "path": request.url.path, "csrf": csrf_token(st.secret, sid), "settings": st.settings}
    ctx.update(context or {})
    resp = st.templates.TemplateResponse(request, template, ctx)
    if new:
        st.sessions.set_cookie(resp, request, sid)
    return resp
