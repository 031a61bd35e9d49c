"""FastAPI dependencies of the routes, with their ``Annotated`` aliases:

- :data:`State`: the app's :class:`~openarena.serving.state.AppState` (registry, database,
  sampler, caches).
- :data:`ClientIP`: the client's address (the TCP peer, or what a configured proxy said).
- :data:`Session`: the :class:`VoterSession` of a state-changing API call, after the session
  cookie, Origin and CSRF checks (403 otherwise).
- :class:`RateLimit`: ``Depends(RateLimit("vote"))`` takes one token of a kind for the IP and
  the session (429 with Retry-After when empty); the aliases :data:`BattleLimit`,
  :data:`PromptLimit`, :data:`VoteLimit`, :data:`RunLimit` go in a route's ``dependencies=``.

All are ``async`` and cheap (no I/O but the shared state's token bucket), so they run on the
event loop, not in the thread pool. Each is a thin wrapper of a plain function
(:func:`peer_address`, :func:`check_session`, :func:`take_token`) that a route outside FastAPI's
dependency injection calls itself (the vote, :mod:`openarena.serving.routes.battles`). Refusals
are :class:`~openarena.serving.routes.errors.ApiError`.

Source: FastAPI, "Dependencies" and "Classes as Dependencies" (tutorial), ``Annotated`` aliases.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from openarena.serving.routes.errors import ApiError
from openarena.serving.safety import check_origin, verify_csrf
from openarena.serving.sessions import limit_key, voter_hash
from openarena.serving.state import AppState

__all__ = [
    "BattleLimit", "ClientIP", "PromptLimit", "RateLimit", "RunLimit", "Session", "State", "VoteLimit", "VoterSession",
    "api_session", "check_session", "client_ip", "get_state", "peer_address", "take_token",
]

log = logging.getLogger("openarena.serving")


async def get_state(request: Request) -> AppState:
    """The app's shared state (registry, database, sampler, caches)."""
    return request.app.state.arena


State = Annotated[AppState, Depends(get_state)]


def peer_address(request: Request) -> str:
    """The client's address: the TCP peer, or, when the peer is one of the proxies of
    ``forwarded_allow_ips``, the address that proxy put in X-Forwarded-For (resolved by the
    app's ProxyHeadersMiddleware, :func:`openarena.serving.app.create_app`). A header from
    anyone else is ignored, so a client cannot choose its own rate-limit key."""
    return request.client.host if request.client else "unknown"


async def client_ip(request: Request) -> str:
    """Dependency: :func:`peer_address`."""
    return peer_address(request)


ClientIP = Annotated[str, Depends(client_ip)]


@dataclass(frozen=True)
class VoterSession:
    """A checked session: ``sid`` (the cookie's random id, never stored) and ``voter`` (its
    HMAC, stored with battles and votes, :func:`~openarena.serving.sessions.voter_hash`)."""

    sid: str
    voter: str


def check_session(request: Request, st: AppState) -> VoterSession:
    """The session of a state-changing API call, after the session and CSRF checks.

    Raises: ApiError 403 ``no_session`` when the cookie is missing or forged; 403 ``csrf`` when
    the Origin is another site or the ``X-CSRF-Token`` header is wrong.
    """
    sid = st.sessions.read(request)
    if sid is None:
        raise ApiError(403, "no_session", "Your session has expired or cookies are blocked: reload the page.")
    if not check_origin(request.headers.get("origin"), request.headers.get("host")):
        raise ApiError(403, "csrf", "Cross-site request refused.")
    if not verify_csrf(st.secret, sid, request.headers.get("x-csrf-token")):
        raise ApiError(403, "csrf", "Missing or invalid CSRF token: reload the page.")
    return VoterSession(sid, voter_hash(st.secret, sid))


async def api_session(request: Request, st: State) -> VoterSession:
    """Dependency: :func:`check_session`."""
    return check_session(request, st)


Session = Annotated[VoterSession, Depends(api_session)]

RATE_LIMITED = {"prompt": "prompts", "vote": "votes", "battle": "new battles"}


async def take_token(st: AppState, kind: str, session: VoterSession, ip: str) -> None:
    """Take one token of ``kind`` ('prompt', 'vote', 'battle', 'run') for the IP and the
    session (both or neither), in the state every worker shares.

    Raises: ApiError 429 ``rate_limited`` with Retry-After when either bucket is empty; 503
    ``unavailable`` when the shared state (Redis) cannot be reached (the request is refused,
    not let through unlimited).
    """
    from openarena.serving.shared_state import SharedStateError

    try:
        # the address enters the shared state (Redis) only as a keyed hash, never in clear
        wait = await st.limiter.take([(f"{kind}_ip", limit_key(st.secret, ip)), (f"{kind}_session", session.sid)])
    except SharedStateError:
        log.exception("rate limit check failed")
        what = "Your vote was not saved" if kind == "vote" else "Nothing was sent"
        raise ApiError(503, "unavailable", f"The arena is briefly unavailable. {what}: please try again in a moment.") from None
    if wait > 0:
        secs = max(1, int(wait + 0.999))
        what = RATE_LIMITED.get(kind, f"{kind}s")
        raise ApiError(429, "rate_limited", f"Too many {what}: please wait {secs} s.", headers={"retry-after": str(secs)})


class RateLimit:
    """Dependency: :func:`take_token` of ``kind`` for the request's session and address. Runs
    after the session check (it depends on :data:`Session`). Raises: what take_token raises."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def __call__(self, st: State, session: Session, ip: ClientIP) -> None:
        await take_token(st, self.kind, session, ip)


BattleLimit = Depends(RateLimit("battle"))
PromptLimit = Depends(RateLimit("prompt"))
VoteLimit = Depends(RateLimit("vote"))
RunLimit = Depends(RateLimit("run"))
