"""How the web arena refuses a request: :class:`ApiError` and the exception handlers that
:func:`install` registers on the app.

- :func:`refusal` is THE handler of refusals: an :class:`ApiError` raised by a route or a
  dependency, and FastAPI's :class:`~fastapi.exceptions.RequestValidationError` (a body, path or
  query that the request models refuse), both answered with the JSON body ``{"error", "code"}``:
  a plain message for the visitor and a machine code, never pydantic's error list (which
  echoes input and names internal types). Validation errors map as follows: a body that is not
  JSON, or not a JSON object, is ``400 bad_request``; a field refused by a validator of
  :mod:`openarena.serving.routes.bodies` carries its own code and message (``bad_winner``,
  ``bad_mode``, ``bad_text``, ...); anything else is ``422 bad_request`` naming the field. A
  browser navigation (a page's query) gets the HTML error page instead.
- :func:`http_error`: a browser that asks for a page that does not exist (or with the wrong
  method) gets an HTML page in the site's layout with the right status; API and JSON paths
  (``/api/...``, ``*.json``), static files and clients that do not accept HTML keep FastAPI's
  JSON body ``{"detail": ...}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from openarena.serving.routes.pages import NAV

__all__ = ["ApiError", "http_error", "install", "refusal", "wants_html"]

PAGES = {
    400: ("Not understood", "This address was asked for with something it does not understand. Go back to the arena and try again."),
    422: ("Not understood", "This address was asked for with something it does not understand. Go back to the arena and try again."),
    404: ("Page not found", "There is no page at this address. It may have moved, or the link may be mistyped."),
    405: ("Not available here", "This address does not serve pages to a browser."),
}
OTHER = ("Something went wrong", "This request could not be handled. Go back to the arena and try again.")
NOT_JSON = "The request body must be JSON."
NOT_OBJECT = "The request body must be a JSON object."


class ApiError(Exception):
    """An API refusal: HTTP ``status``, a machine ``code`` and a ``message`` for the visitor
    (plain words: no paths, flags or tracebacks), optional response ``headers`` (Retry-After).
    Raised anywhere in a route or dependency; answered by :func:`refusal`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> JSONResponse:
        """The JSON answer ``{"error": message, "code": code}`` with ``status`` and ``headers``."""
        return JSONResponse({"error": self.message, "code": self.code}, status_code=self.status, headers=self.headers)


def from_validation(exc: RequestValidationError) -> ApiError:
    """The refusal for the first error of a :class:`RequestValidationError`.

    A validator of :mod:`openarena.serving.routes.bodies` raises ``PydanticCustomError(code,
    message, {"status": s})``: that code, message and status. JSON that does not parse, a
    missing body, a body sent as another content type, a body that is not an object: 400
    ``bad_request``. Anything else: 422 ``bad_request`` naming the field (its last key), not
    the input or the expected type."""
    errors = list(exc.errors())
    if not errors:
        return ApiError(422, "bad_request", "The request was not understood.")
    err = errors[0]
    ctx = err.get("ctx") or {}
    if isinstance(ctx.get("status"), int):
        return ApiError(ctx["status"], err["type"], err["msg"])
    loc = tuple(err.get("loc") or ())
    if err.get("type") == "json_invalid" or (loc[:1] == ("body",) and len(loc) == 1):
        plain = err.get("type") in ("json_invalid", "missing") or isinstance(err.get("input"), (bytes, str))
        return ApiError(400, "bad_request", NOT_JSON if plain else NOT_OBJECT)
    where = {"body": "field", "query": "parameter", "path": "address part", "header": "header", "cookie": "cookie"}.get(str(loc[0]) if loc else "", "field")
    name = str(loc[-1]) if loc else "request"
    return ApiError(422, "bad_request", f"The {where} {name[:40]!r} is not valid.")


async def refusal(request: Request, exc: Exception):
    """The exception handler of :class:`ApiError` and :class:`RequestValidationError` (see the
    module docstring): JSON ``{"error", "code"}``, or the HTML error page for a browser
    navigation that a query or path parameter made invalid."""
    err = from_validation(exc) if isinstance(exc, RequestValidationError) else exc
    assert isinstance(err, ApiError)
    if isinstance(exc, RequestValidationError) and wants_html(request):
        return _page(request, err.status, None)
    return err.response()


def wants_html(request: Request) -> bool:
    """True for a browser navigation (GET/HEAD accepting text/html) outside the API, JSON and static paths."""
    path = request.url.path
    if request.method not in ("GET", "HEAD") or path.startswith(("/api/", "/static/")) or path == "/api" or path.endswith(".json"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _page(request: Request, status: int, headers: dict[str, str] | None) -> Any:
    heading, message = PAGES.get(status, OTHER)
    ctx = {"nav": NAV, "path": request.url.path, "csrf": "", "title": heading, "status": status, "heading": heading, "message": message}
    return request.app.state.arena.templates.TemplateResponse(request, "error.html", ctx, status_code=status, headers=headers)


async def http_error(request: Request, exc: StarletteHTTPException):
    """Exception handler for HTTPException: the HTML error page for browsers, else FastAPI's
    JSON. A 400 on an API path is FastAPI failing to parse the body before any validation
    (JSON nested too deep, a number too long to convert, bytes that are not UTF-8): answered as
    every other body refusal, ``{"error", "code": "bad_request"}``."""
    if exc.status_code == 400 and request.url.path.startswith("/api/"):
        return ApiError(400, "bad_request", NOT_JSON).response()
    if not wants_html(request):
        return await http_exception_handler(request, exc)
    return _page(request, exc.status_code, getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    """Register the handlers: :func:`refusal` for ApiError and RequestValidationError,
    :func:`http_error` for HTTPException (404/405 pages)."""
    app.add_exception_handler(ApiError, refusal)
    app.add_exception_handler(RequestValidationError, refusal)
    app.add_exception_handler(StarletteHTTPException, http_error)
