"""Routes of the web arena, one module per view; what they share is here: the app state, page
rendering with the session cookie, JSON errors, the client's address, session and CSRF checks."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from openarena.serving.safety import check_origin, csrf_token, verify_csrf
from openarena.serving.sessions import voter_hash

log = logging.getLogger("openarena.serving")

NAV = [("/", "Arena"), ("/side-by-side", "Side by side"), ("/direct", "Direct chat"), ("/leaderboard", "Leaderboard"), ("/redteam", "Red team"), ("/about", "About")]


class ApiError(HTTPException):
    """An API refusal: HTTP status, a machine ``code`` and a message for the voter."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail={"error": message, "code": code}, headers=headers)


def error_response(exc: ApiError) -> JSONResponse:
    """A JSON error body {error, message} with ``status``."""
    return JSONResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def state(request: Request):
    """The app's shared state (registry, database, sampler, caches) from the request."""
    return request.app.state.arena


def client_ip(request: Request) -> str:
    """The client's address: the TCP peer, or, when the peer is one of the proxies of
    ``--forwarded-allow-ips``, the address that proxy put in X-Forwarded-For (resolved by the
    app's ProxyHeadersMiddleware, :func:`openarena.serving.app.create_app`). A header from
    anyone else is ignored, so a client cannot choose its own rate-limit key."""
    return request.client.host if request.client else "unknown"


def render_page(request: Request, template: str, context: dict[str, Any] | None = None) -> HTMLResponse:
    """Render a page; issues the session cookie on the first visit."""
    st = state(request)
    sid, new = st.sessions.ensure(request)
    ctx = {"nav": NAV, "path": request.url.path, "csrf": csrf_token(st.secret, sid), "settings": st.settings}
    ctx.update(context or {})
    resp = st.templates.TemplateResponse(request, template, ctx)
    if new:
        st.sessions.set_cookie(resp, request, sid)
    return resp


def api_session(request: Request) -> tuple[str, str]:
    """(session id, voter hash) of a state-changing API call, after the session and CSRF checks.

    Raises: ApiError 403 when the cookie is missing/forged, the CSRF token is wrong or the
    Origin is another site.
    """
    st = state(request)
    sid = st.sessions.read(request)
    if sid is None:
        raise ApiError(403, "no_session", "Your session has expired or cookies are blocked: reload the page.")
    if not check_origin(request.headers.get("origin"), request.headers.get("host")):
        raise ApiError(403, "csrf", "Cross-site request refused.")
    if not verify_csrf(st.secret, sid, request.headers.get("x-csrf-token")):
        raise ApiError(403, "csrf", "Missing or invalid CSRF token: reload the page.")
    return sid, voter_hash(st.secret, sid)


RATE_LIMITED = {"prompt": "prompts", "vote": "votes", "battle": "new battles"}


async def rate_limit(request: Request, kind: str, sid: str) -> None:
    """Take one token of ``kind`` ('prompt', 'vote' or 'battle') for the IP and the session
    (both or neither), in the state every worker shares.

    Raises: ApiError 429 with Retry-After when either bucket is empty; 503 when the shared
    state (Redis) cannot be reached (the request is refused, not let through unlimited).
    """
    from openarena.serving.shared_state import SharedStateError

    st = state(request)
    try:
        wait = await st.limiter.take([(f"{kind}_ip", client_ip(request)), (f"{kind}_session", sid)])
    except SharedStateError:
        log.exception("rate limit check failed")
        what = "Your vote was not saved" if kind == "vote" else "Nothing was sent"
        raise ApiError(503, "unavailable", f"The arena is briefly unavailable. {what}: please try again in a moment.") from None
    if wait > 0:
        secs = max(1, int(wait + 0.999))
        what = RATE_LIMITED.get(kind, f"{kind}s")
        raise ApiError(429, "rate_limited", f"Too many {what}: please wait {secs} s.", headers={"retry-after": str(secs)})
