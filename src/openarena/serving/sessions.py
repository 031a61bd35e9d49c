"""Voter sessions: a signed, HttpOnly cookie holding a random session id.

The id never leaves the server in any other form: the voter id stored with votes (``judge``)
is an HMAC of it (:func:`voter_hash`), so the published data cannot be joined back to cookies,
and the CSRF token is another HMAC of it (:func:`openarena.serving.safety.csrf_token`).
Sessions are created by page views only; API calls without a valid session are refused (the
page tells the voter to reload).

Cookie: ``oa_session``, value signed with itsdangerous (HMAC-SHA1 over the secret key, salt
'openarena-session'), ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, ``Secure`` when the request
came over https (or ``cookie_secure`` forces it), 30 days.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["COOKIE", "SessionManager", "network_hash", "voter_hash"]

COOKIE = "oa_session"
MAX_AGE_S = 30 * 24 * 3600


@functools.lru_cache(maxsize=8192)
def voter_hash(secret: bytes, session_id: str) -> str:
    """The published voter id: first 32 hex digits of HMAC-SHA256(secret, 'voter:' + id).
    Cached (a pure function; every API call of a session asks for it)."""
    return hmac.new(secret, f"voter:{session_id}".encode(), hashlib.sha256).hexdigest()[:32]


@functools.lru_cache(maxsize=8192)
def limit_key(secret: bytes, ip: str) -> str:
    """The rate-limit key of a client address: the first 24 hex digits of
    HMAC-SHA256(secret, 'rate:' + ip) (the exact address, unlike :func:`network_hash`), so the
    shared state (Redis keys) never holds an address."""
    return hmac.new(secret, f"rate:{ip}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:24]


def network_hash(secret: bytes, ip: str) -> str:
    """The second voter key of the vote-integrity checks: first 32 hex digits of
    HMAC-SHA256(secret, 'ip:' + network), where network is the IPv4 address, or the /64 prefix
    of an IPv6 address (one subscriber usually holds a whole /64, so its addresses would
    otherwise be free new keys); anything else (a test client's name) is used as it is. Stored
    with each battle (``battles.ip_hash``), never published."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        net = ip
    else:
        if addr.version == 6 and addr.ipv4_mapped is not None:
            net = str(addr.ipv4_mapped)
        elif addr.version == 6:
            net = str(ipaddress.ip_network(f"{addr}/64", strict=False))
        else:
            net = str(addr)
    return hmac.new(secret, f"ip:{net}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass
class SessionManager:
    """Reads and issues the session cookie. ``cookie_secure``: None = Secure iff https."""

    secret: bytes
    cookie_secure: bool | None = None

    def __post_init__(self) -> None:
        self._signer = URLSafeSerializer(self.secret, salt="openarena-session")
        # the signature check of a cookie already seen is not redone on every API call
        self._session_of = functools.lru_cache(maxsize=8192)(self._verify)

    def _verify(self, raw: str) -> str | None:
        try:
            sid = self._signer.loads(raw)
        except BadSignature:
            return None
        return sid if isinstance(sid, str) and len(sid) == 32 else None

    def read(self, request: Request) -> str | None:
        """The session id of a valid cookie, else None (absent, forged or from another key)."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        return self._session_of(raw)

    def ensure(self, request: Request) -> tuple[str, bool]:
        """(session id, created?): the cookie's session or a new random one."""
        sid = self.read(request)
        if sid is not None:
            return sid, False
        return secrets.token_hex(16), True

    def set_cookie(self, response: Response, request: Request, session_id: str) -> None:
        """Attach the signed cookie to ``response``."""
        secure = self.cookie_secure if self.cookie_secure is not None else request.url.scheme == "https"
        response.set_cookie(
            COOKIE, self._signer.dumps(session_id), max_age=MAX_AGE_S, path="/", httponly=True, secure=secure, samesite="lax"
        )
