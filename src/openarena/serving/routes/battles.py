"""The battle API. Every call is a ``POST`` with a JSON body, the session cookie and the CSRF
header; the client sends only its prompt or its vote, and the battle id it was given.

- ``POST /api/battles`` ``{"mode": "anony", "arena": "text"}`` (or ``"named"`` with
  ``model_a``/``model_b``, or ``"direct"`` with ``model_a``; ``arena`` text, vision or code) ->
  ``{"battle_id", "max_turns", "max_prompt_chars"}``; for an
  anonymous battle the server draws the pair (:class:`~openarena.serving.sampling.PairSampler`)
  and stores it with its probability; the answer does not name it.
- ``POST /api/battles/{id}/turns`` ``{"prompt", "images": [data URL, ...]}`` ->
  ``text/event-stream`` of the two answers (:func:`~openarena.serving.engine.stream_turn`);
  checks: session owns the battle, rate limits, prompt length and turn caps, optional
  moderation, one turn at a time. Images (PNG, JPEG, WebP, GIF as ``data:`` URLs) only in a
  vision battle (``{"arena": "vision"}`` at creation): checked, re-encoded without metadata,
  screened and stored by :class:`~openarena.serving.images.ImageIntake` before any model is
  called; refusals not_vision, bad_image, too_large, too_many_pixels, bad_format,
  too_many_images, blocked (422); images_busy, images_full (503).
- ``POST /api/battles/{id}/regenerate`` ``{}`` -> the same stream, answering the last prompt again.
- ``POST /api/battles/{id}/vote`` ``{"winner": "model_a"|"model_b"|"tie"|"tie (bothbad)"}`` ->
  ``{"model_a", "model_b", "counted", "message"}``: the reveal (``counted`` is False only for an
  identity leak; the vote-integrity checks of :mod:`openarena.serving.vote_integrity` are not
  revealed). Refusals (4xx) carry
  ``{"error", "code"}``: not_found (forged or other session's id), already_voted, failed,
  no_answer, empty_answer (an answer stopped before any text), busy (a turn is still
  streaming), rate_limited, csrf, no_session, bad_text; 503 not_saved when the database cannot
  take the vote (nothing was stored; the battle stays open). (a string of the body that is not
  valid Unicode, e.g. a lone surrogate ``"\\ud800"``: refused before any model is called).

New battles, turns (and regenerations) and votes are rate-limited per IP and per session
(:class:`~openarena.serving.routes.deps.RateLimit`; 429 with Retry-After). The session and CSRF
checks and the rate limits run before the body is looked at (dependencies; the vote, a plain
Starlette route, calls the same functions itself); bodies are the models of
:mod:`openarena.serving.routes.bodies`; refusals are raised as
:class:`~openarena.serving.routes.errors.ApiError`.

Source: FastChat gradio_block_arena_anony.py (add_text, bot_response_multi, vote buttons,
regenerate, clear history = new round), with the battle state on the server instead of in
gradio's per-tab state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from openarena.serving.engine import stream_turn
from openarena.serving.images import ImageRefused
from openarena.serving.routes.bodies import NewBattle, Turn, Vote, read_json, validate_body
from openarena.serving.routes.deps import BattleLimit, ClientIP, PromptLimit, Session, State, check_session, peer_address, take_token
from openarena.serving.routes.errors import ApiError
from openarena.serving.safety import identity_leak
from openarena.serving.sampling import SamplingError
from openarena.serving.sessions import network_hash
from openarena.serving.state import AppState
from openarena.storage.battles import acquire_turn, create_battle, get_battle, release_turn
from openarena.storage.db import StorageError
from openarena.storage.integrity import INTEGRITY_CODES, reason_code
from openarena.storage.votes import VoteRefused, record_vote_async

router = APIRouter(prefix="/api")
log = logging.getLogger("openarena.serving")

REFUSAL_STATUS = {"not_found": 404, "already_voted": 409, "failed": 409, "no_answer": 409, "empty_answer": 409, "busy": 409, "not_votable": 409, "bad_winner": 422}
NOT_SAVED = "Your vote was NOT saved: the arena's database is not available right now. Please try again in a minute."
VOTE_LABELS = {"model_a": "A", "model_b": "B", "tie": "tie", "tie (bothbad)": "both bad"}


NO_VISION = "{name} cannot see images: choose models that can, or send the prompt without an image."


@router.post("/battles", dependencies=[BattleLimit])
async def new_battle(body: NewBattle, st: State, session: Session, ip: ClientIP):
    """POST /api/battles (CSRF, rate-limited): sample a pair, store the battle; returns its id
    only. A vision battle (``arena: "vision"``) is drawn among the ``vision: true`` models; in
    named and direct modes the chosen models must take images."""
    mode, reg, arena = body.mode, st.registry, body.arena
    prob = policy = None
    if mode == "anony":
        try:
            st.sampler.observe(await st.vote_counts.read())  # the counts every worker sees
        except Exception:  # noqa: BLE001 - the shared state failed: draw from the last known counts
            log.warning("shared vote counts unavailable; sampling on this worker's counts", exc_info=True)
        try:
            pair = st.sampler.sample(only=reg.vision_names(anonymous_only=True) if arena == "vision" else None)
        except SamplingError as e:
            raise ApiError(503, "no_models", str(e)) from None
        a, b, prob, policy = pair.model_a, pair.model_b, pair.prob, pair.policy
    else:
        a, b = body.model_a, body.model_b if mode == "named" else None
        for m in (a, b) if mode == "named" else (a,):
            if m is None or m not in reg:
                raise ApiError(422, "bad_model", "Choose models from the list.")
        if mode == "named" and a == b:
            raise ApiError(422, "bad_model", "Choose two different models.")
        if arena == "vision":
            for m in (a, b) if mode == "named" else (a,):
                if not reg.get(m).vision:
                    raise ApiError(422, "no_vision", NO_VISION.format(name=m))
    bid = await run_in_threadpool(
        create_battle, st.db, mode=mode, model_a=a, model_b=b, session_hash=session.voter, sampling_policy=policy, sampling_prob=prob,
        ip_hash=network_hash(st.secret, ip), arena=arena,
    )
    return {"battle_id": bid, "max_turns": st.settings.max_turns, "max_prompt_chars": st.settings.max_prompt_chars}


async def turn_input(body: Turn, st: State) -> Turn:
    """Dependency: the turn's body, its prompt within the server's ``max_prompt_chars`` (a
    setting, so checked here rather than in :class:`~openarena.serving.routes.bodies.Turn`;
    the images are checked by the route, once it knows the battle).
    Raises: ApiError 422 ``too_long``."""
    limit = st.settings.max_prompt_chars
    if len(body.prompt) > limit:
        raise ApiError(422, "too_long", f"The prompt is too long ({len(body.prompt):,} characters; at most {limit:,}).")
    return body


async def _accept_images(st: AppState, judge: str, battle_id: str, urls: list[str]) -> list[str]:
    """Check, re-encode, screen and store the images of a turn; returns their SHA-256
    addresses. Only a vision battle of this session takes images.
    Raises: ApiError 404 not_found, 422 not_vision / bad_image / too_large / too_many_pixels /
    bad_format / too_many_images / blocked, 503 images_unavailable / images_busy (too many
    uploads decoding or waiting in this worker) / images_full (the store's cap)."""
    b = await run_in_threadpool(get_battle, st.db, battle_id, judge)
    if b is None:
        raise ApiError(404, "not_found", "No such battle in this session: start a new round.")
    if b.arena != "vision" or st.images is None:
        raise ApiError(422, "not_vision", "This battle was started without an image, so its models may not see images: start a new round to send one.")
    try:
        return await st.images.accept_async(urls)
    except ImageRefused as e:
        if e.code in ("images_busy", "images_full"):
            raise ApiError(503, e.code, e.message, headers={"retry-after": "60"}) from None
        raise ApiError(422, e.code, e.message) from None
    except StorageError:
        log.exception("image not stored")
        raise ApiError(503, "images_unavailable", "Images cannot be stored right now: try again in a minute, or send the prompt without the image.") from None


async def _start_turn(st: AppState, session, battle_id: str, prompt: str | None, image_urls: list[str] | None = None):
    judge = session.voter
    if prompt is not None and st.moderator is not None:
        flagged, why = await st.moderator.flagged(prompt)
        if flagged:
            raise ApiError(422, "moderated", "This prompt was flagged by moderation and not sent" + (f" ({why})." if why else "."))
    lease = await run_in_threadpool(acquire_turn, st.db, battle_id, judge, st.settings.lease_s)
    if lease is None:
        b = await run_in_threadpool(get_battle, st.db, battle_id, judge)
        if b is None:
            raise ApiError(404, "not_found", "No such battle in this session: start a new round.")
        if b.status == "voted":
            raise ApiError(409, "already_voted", "This battle is over (voted): start a new round.")
        if b.status == "failed":
            raise ApiError(409, "failed", "The model failed in this chat: start a new chat." if b.mode == "direct" else "A model failed in this battle: start a new round.")
        if b.mode == "direct":
            raise ApiError(409, "busy", "The answer is still being written: wait, or start a new chat.")
        raise ApiError(409, "busy", "Answers are still being written for this battle: wait or start a new round.")
    refusal = None
    if prompt is not None and lease.turns >= st.settings.max_turns:
        if lease.mode == "direct":
            refusal = ApiError(409, "turn_limit", f"This chat reached its {st.settings.max_turns} turns: start a new chat.")
        else:
            refusal = ApiError(409, "turn_limit", f"This battle reached its {st.settings.max_turns} turns: vote, or start a new round.")
    elif prompt is None and lease.turns < 1:
        refusal = ApiError(409, "no_answer", "Nothing to regenerate yet.")
    if refusal is not None:
        await run_in_threadpool(release_turn, st.db, battle_id)
        raise refusal
    images: list[str] = []
    if image_urls:  # only for a turn that will run: a refused turn stores no image
        try:
            images = await _accept_images(st, judge, battle_id, image_urls)
        except BaseException:
            await run_in_threadpool(release_turn, st.db, battle_id)
            raise
    models = {"a": st.registry.get(lease.model_a)}
    if lease.model_b is not None:
        models["b"] = st.registry.get(lease.model_b)
    gen = stream_turn(st.db, lease, models, prompt, max_turns=st.settings.max_turns, retry_attempts=st.settings.retry_attempts,
                      limits=st.settings.turn_limits(), images=images, image_url=st.images.data_url if st.images is not None else None)
    return StreamingResponse(gen, media_type="text/event-stream", headers={"x-accel-buffering": "no"})


@router.post("/battles/{battle_id}/turns", dependencies=[PromptLimit])
async def battle_turn(battle_id: str, body: Annotated[Turn, Depends(turn_input)], st: State, session: Session):
    """POST /api/battles/{id}/turns: stream both answers (SSE) for a new user turn (with its
    images, in a vision battle)."""
    return await _start_turn(st, session, battle_id, body.prompt, list(body.images))


@router.post("/battles/{battle_id}/regenerate", dependencies=[PromptLimit])
async def battle_regenerate(battle_id: str, st: State, session: Session):
    """POST /api/battles/{id}/regenerate: stream both answers to the last turn again."""
    return await _start_turn(st, session, battle_id, None)


def _leak_check(st, seen: dict[str, str] | None = None):
    def check(b) -> str | None:
        if seen is not None:
            seen["mode"] = b.mode
        if b.mode != "anony":
            return None
        leak = identity_leak(b.conversation_a, b.conversation_b or [], st.leak_words)
        return f"identity leak: an answer or prompt names {leak!r}" if leak else None

    return check


def _vote_payload(res, winner: str) -> dict[str, Any]:
    """The reveal. ``counted`` is False only for what the voter can see for themselves (the
    conversation named a model); a vote withheld by the integrity checks (daily cap, abandon
    ratio, selective voting) gets the acknowledgement of a counted vote, so the answer is not an
    oracle for the thresholds (the reason is stored with the vote)."""
    visible = res.counted or reason_code(res.reason) in INTEGRITY_CODES
    if visible:
        message = f"Thanks! Your vote ({VOTE_LABELS[winner]}) was recorded."
    else:
        message = f"Your vote ({VOTE_LABELS[winner]}) was recorded, but it will not count: the conversation revealed a model's identity."
    return {"model_a": res.model_a, "model_b": res.model_b, "counted": visible, "message": message, "winner": winner}


async def battle_vote(request: Request) -> JSONResponse:
    """POST /api/battles/{id}/vote: record the vote in one transaction; the only response that
    names the models.

    The same checks, in the same order and with the same answers, as a FastAPI route with
    dependencies (a body that does not parse; session and CSRF; rate limit; the body's fields),
    but called here as plain functions (:func:`~openarena.serving.routes.bodies.read_json`,
    :func:`~openarena.serving.routes.deps.check_session`,
    :func:`~openarena.serving.routes.deps.take_token`,
    :func:`~openarena.serving.routes.bodies.validate_body`): this is a plain Starlette route, not a
    FastAPI one, because the vote is the arena's most frequent request and FastAPI's dependency
    resolution cost more CPU than the vote's own work (``bench/serve_load.md``, stop 20)."""
    st: AppState = request.app.state.arena
    battle_id = request.path_params["battle_id"]
    data = await read_json(request)  # a body that does not parse is refused first, as FastAPI does
    session = check_session(request, st)
    ip = peer_address(request)
    await take_token(st, "vote", session, ip)
    winner = validate_body(data, Vote).winner
    ip_hash = network_hash(st.secret, ip)
    for attempt in range(3):
        try:
            seen: dict[str, str] = {}
            res = await record_vote_async(st.db, st.vote_writer, battle_id, session.voter, winner, check=_leak_check(st, seen), ip_hash=ip_hash)
        except (SQLAlchemyError, StorageError) as e:  # nothing committed: say so plainly, at once
            log.error("vote not saved: %s", (str(e).splitlines() or [type(e).__name__])[0])  # one line per refused vote
            raise ApiError(503, "not_saved", NOT_SAVED, headers={"retry-after": "30"}) from None
        except VoteRefused as e:
            if e.code == "busy" and attempt < 2:  # the stream's final save may still be landing
                await asyncio.sleep(0.2)
                continue
            raise ApiError(REFUSAL_STATUS.get(e.code, 409), e.code, e.message) from None
        if res.counted and seen.get("mode") == "anony":
            # the sampler's shared counts, sent with the other votes of the next moment (one
            # Redis round trip for them all, after this answer); the vote is committed already
            st.vote_counts.add_vote_soon(res.model_a, res.model_b)
        return JSONResponse(_vote_payload(res, winner))  # plain JSON types: no response-model encoding
    raise AssertionError("unreachable")  # pragma: no cover


router.add_route(router.prefix + "/battles/{battle_id}/vote", battle_vote, methods=["POST"])  # a plain route: the prefix is not added for it
