"""Error pages: a browser that asks for a page that does not exist (or with the wrong method)
gets an HTML page in the site's layout with the right status; API and JSON paths
(``/api/...``, ``*.json``), static files and clients that do not accept HTML keep FastAPI's
JSON body ``{"detail": ...}``."""

from __future__ import annotations

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException

from openarena.serving.routes import NAV, state

__all__ = ["http_error", "wants_html"]

PAGES = {
    404: ("Page not found", "There is no page at this address. It may have moved, or the link may be mistyped."),
    405: ("Not available here", "This address does not serve pages to a browser."),
}
OTHER = ("Something went wrong", "This request could not be handled. Go back to the arena and try again.")


def wants_html(request: Request) -> bool:
    """True for a browser navigation (GET/HEAD accepting text/html) outside the API, JSON and static paths."""
    path = request.url.path
    if request.method not in ("GET", "HEAD") or path.startswith(("/api/", "/static/")) or path == "/api" or path.endswith(".json"):
        return False
    return "text/html" in request.headers.get("accept", "")


async def http_error(request: Request, exc: StarletteHTTPException):
    """Exception handler for HTTPException: the HTML error page for browsers, else FastAPI's JSON."""
    if not wants_html(request):
        return await http_exception_handler(request, exc)
    heading, message = PAGES.get(exc.status_code, OTHER)
    ctx = {"nav": NAV, "path": request.url.path, "csrf": "", "title": heading, "status": exc.status_code, "heading": heading, "message": message}
    return state(request).templates.TemplateResponse(request, "error.html", ctx, status_code=exc.status_code, headers=getattr(exc, "headers", None))
