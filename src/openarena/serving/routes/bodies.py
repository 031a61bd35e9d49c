"""The request bodies of the JSON API as pydantic models: the boundary where a stranger's JSON
becomes typed values (Literal types for every closed set of words, lengths bounded).

Every refusal here carries the code and plain message the API has always answered with: a
field's validator raises ``PydanticCustomError(code, message, {"status": 422})`` (see
:func:`refuse`), which the app's refusal handler
(:func:`openarena.serving.routes.errors.refusal`) turns into ``{"error", "code"}``. A missing
field is validated as its default (``validate_default``), so "missing" and "wrong" get the
same answer. Unknown keys are ignored. Bounds that depend on the server's settings (the
prompt length, ``max_prompt_chars``) are checked by the route's dependency right after, since a
model class is fixed at import.

:class:`ArenaBody`, the base of every body, refuses a string anywhere in it (keys included)
that is not valid Unicode text, e.g. a lone surrogate ``"\\ud800"``: JSON may carry one and
Python decodes it, but no model endpoint, database or page can take it (422 ``bad_text``,
naming the field).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationError, WrapValidator, model_validator
from fastapi.exceptions import RequestValidationError
from pydantic_core import PydanticCustomError
from starlette.requests import ClientDisconnect, Request

from openarena.serving.routes.errors import NOT_JSON, ApiError, from_validation

__all__ = [
    "ArenaBody", "EmptyBody", "NewBattle", "NewRound", "RoundTurn", "RunBlock", "Turn", "Vote", "NO_JSON", "not_utf8", "read_json", "refuse", "validate_body",
]

Winner = Literal["model_a", "model_b", "tie", "tie (bothbad)"]
Mode = Literal["anony", "named", "direct"]
Arena = Literal["text", "vision", "code"]
MAX_IMAGES_LISTED = 16  # a bound on the list itself; the server's own limit (max_images_per_prompt) is the route's
Side = Literal["a", "b"]
MAX_NAME_CHARS = 200  # a model name (registry names are far shorter)
HANDLE_CHARS = (2, 24)


def not_utf8(value: Any, where: str = "") -> str | None:
    """The key path of the first string in ``value`` (keys included) that cannot be encoded as
    UTF-8, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "body"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            bad = not_utf8(k, where or "body") if isinstance(k, str) else None
            bad = bad or not_utf8(v, f"{where}.{k}" if where else str(k))
            if bad:
                return bad
    elif isinstance(value, list):
        for i, v in enumerate(value):
            bad = not_utf8(v, f"{where}[{i}]")
            if bad:
                return bad
    return None


def refuse(code: str, message: str, status: int = 422) -> WrapValidator:
    """A field validator (for ``Annotated[T, refuse(...)]``) that answers any failure of the
    field's own validation with ``code`` and ``message`` instead of pydantic's words."""

    def wrap(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except (ValidationError, ValueError):
            raise PydanticCustomError(code, message, {"status": status}) from None

    return WrapValidator(wrap)


class ArenaBody(BaseModel):
    """Base of the API's bodies: unknown keys ignored, defaults validated, frozen; refuses text
    that is not valid Unicode anywhere in the body (422 ``bad_text``)."""

    model_config = ConfigDict(extra="ignore", validate_default=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        bad = not_utf8(data) if isinstance(data, dict) else None
        if bad is not None:
            what = "The prompt" if bad == "prompt" else f"The field {bad[:40]!r}"
            raise PydanticCustomError(
                "bad_text", what + " holds characters that are not valid Unicode text (a lone surrogate such as \\ud800): remove them and try again.",
                {"status": 422},
            )
        return data


class EmptyBody(ArenaBody):
    """A body with nothing to say (``{}``): e.g. a forfeit."""


ModelName = Annotated[str | None, Field(max_length=MAX_NAME_CHARS), refuse("bad_model", "Choose models from the list.")]


class NewBattle(ArenaBody):
    """``POST /api/battles``: ``mode`` (anony, named or direct; default anony), ``model_a``
    (named, direct) and ``model_b`` (named) from the registry (checked by the route), ``arena``
    (text, vision or code; default text: a vision battle is drawn among the models that take
    images)."""

    mode: Annotated[Mode, refuse("bad_mode", "mode must be anony, named or direct.")] = "anony"
    arena: Annotated[Arena, refuse("bad_arena", "arena must be text, vision or code.")] = "text"
    model_a: ModelName = None
    model_b: ModelName = None


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("blank")
    return text


class Turn(ArenaBody):
    """``POST /api/battles/{id}/turns``: the voter's ``prompt`` (text, not blank); its length
    bound (``max_prompt_chars``) is the route's."""

    prompt: Annotated[str, AfterValidator(_not_blank), refuse("empty_prompt", "Type a prompt first.")] = None  # type: ignore[assignment]
    images: Annotated[list[str], Field(max_length=MAX_IMAGES_LISTED),
                      refuse("bad_image", "images must be a list of image data URLs (data:image/png;base64,...).")] = []


class Vote(ArenaBody):
    """``POST /api/battles/{id}/vote``: ``winner``, one of model_a, model_b, tie, tie (bothbad)."""

    winner: Annotated[Winner, refuse("bad_winner", "Vote for model_a, model_b, tie or tie (bothbad).")] = None  # type: ignore[assignment]


class RunBlock(ArenaBody):
    """``POST /api/battles/{id}/run``: ``side`` (a or b) and ``block``, the index (0-999) of a
    Python block of that side's last answer."""

    side: Annotated[Side, refuse("bad_side", 'side must be "a" or "b".')] = None  # type: ignore[assignment]
    block: Annotated[StrictInt, Field(ge=0, lt=1000), refuse("bad_block", "block must be the index (0, 1, ...) of a Python block of the answer.")] = None  # type: ignore[assignment]


def _handle(text: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,23}", text):  # fullmatch: no trailing newline
        raise ValueError("bad handle")
    return text


class NewRound(ArenaBody):
    """``POST /api/redteam/rounds``: the player's ``handle`` (2 to 24 letters, digits, dots,
    dashes or underscores, starting with a letter or digit)."""

    handle: Annotated[str, Field(max_length=HANDLE_CHARS[1]), AfterValidator(_handle),
                      refuse("bad_handle", "Choose a handle of 2 to 24 letters, digits, dots, dashes or underscores.")] = None  # type: ignore[assignment]


class RoundTurn(ArenaBody):
    """``POST /api/redteam/rounds/{id}/turns``: the player's ``prompt`` (text, not blank); its
    length bound (``max_prompt_chars``) is the route's."""

    prompt: Annotated[str, AfterValidator(_not_blank), refuse("empty_prompt", "Type a message first.")] = None  # type: ignore[assignment]


Body = TypeVar("Body", bound=ArenaBody)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


#: what :func:`read_json` returns for a request without a JSON body (no body, or another content type)
NO_JSON: Any = object()


async def read_json(request: Request) -> Any:
    """The first half of what FastAPI does with a body parameter, for a route outside its
    dependency injection (the vote): read the body and parse it as JSON, before any other check
    (as FastAPI does, so the answers and their order are the same). Returns the parsed value, or
    :data:`NO_JSON` when there is no body or its content type is not JSON (refused by
    :func:`validate_body`, after the route's checks).

    Raises: ApiError 400 ``bad_request`` "must be JSON" for a body that cannot be read (refused
    as too large: the 413 is already sent) or parsed (not JSON, bytes that are not UTF-8, a
    number too long to convert, nested too deep).
    Source: FastAPI ``routing.get_request_handler`` (JSON body of an ``application/json`` or
    ``+json`` request, strict content type; a body that does not parse is a 400 before the
    dependencies run).
    """
    try:
        raw = await request.body()
    except ClientDisconnect:  # the body was refused as too large (413 sent) or the client left
        raise ApiError(400, "bad_request", NOT_JSON) from None
    if not raw or not _is_json(request.headers.get("content-type")):
        return NO_JSON
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a number too long, nested too deep
        raise ApiError(400, "bad_request", NOT_JSON) from None


def validate_body(data: Any, model: type[Body]) -> Body:
    """The second half: ``data`` (from :func:`read_json`) as ``model``, with FastAPI's refusals
    as the app answers them (:func:`openarena.serving.routes.errors.from_validation`): no JSON
    body, or a JSON string: 400 ``bad_request`` "must be JSON"; other JSON that is not an
    object: 400 "must be a JSON object"; a field refused by the model: its own code and status.

    Raises: :class:`~openarena.serving.routes.errors.ApiError`.
    """
    if data is NO_JSON:
        raise ApiError(400, "bad_request", NOT_JSON)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in e.errors()]
        raise from_validation(RequestValidationError(errors)) from None
