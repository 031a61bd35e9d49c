"""The battle API. Every call is a ``POST`` with a JSON body, the session cookie and the CSRF
header; the client sends only its prompt or its vote, and the battle id it was given.

- ``POST /api/battles`` ``{"mode": "anony"}`` (or ``"named"`` with ``model_a``/``model_b``, or
  ``"direct"`` with ``model_a``) -> ``{"battle_id", "max_turns", "max_prompt_chars"}``; for an
  anonymous battle the server draws the pair (:class:`~openarena.serving.sampling.PairSampler`)
  and stores it with its probability; the answer does not name it.
- ``POST /api/battles/{id}/turns`` ``{"prompt"}`` -> ``text/event-stream`` of the two answers
  (:func:`~openarena.serving.engine.stream_turn`); checks: session owns the battle, rate limits,
  prompt length and turn caps, optional moderation, one turn at a time.
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
(:func:`~openarena.serving.routes.rate_limit`; 429 with Retry-After).

Source: FastChat gradio_block_arena_anony.py (add_text, bot_response_multi, vote buttons,
regenerate, clear history = new round), with the battle state on the server instead of in
gradio's per-tab state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from openarena.data.schema import WINNERS
from openarena.serving.engine import stream_turn
from openarena.serving.routes import ApiError, api_session, client_ip, error_response, rate_limit, state
from openarena.serving.safety import identity_leak
from openarena.serving.sampling import SamplingError
from openarena.serving.sessions import network_hash
from openarena.storage.battles import acquire_turn, create_battle, get_battle, release_turn
from openarena.storage.db import StorageError
from openarena.storage.integrity import INTEGRITY_CODES, reason_code
from openarena.storage.votes import VoteRefused, record_vote_async

router = APIRouter(prefix="/api")
log = logging.getLogger("openarena.serving")

REFUSAL_STATUS = {"not_found": 404, "already_voted": 409, "failed": 409, "no_answer": 409, "empty_answer": 409, "busy": 409, "not_votable": 409, "bad_winner": 422}
NOT_SAVED = "Your vote was NOT saved: the arena's database is not available right now. Please try again in a minute."
VOTE_LABELS = {"model_a": "A", "model_b": "B", "tie": "tie", "tie (bothbad)": "both bad"}


def _not_utf8(value: Any, where: str = "") -> str | None:
    """The key path of the first string in ``value`` (keys included) that cannot be encoded as
    UTF-8, or None. JSON may carry lone surrogates (``"\\ud800"``): Python decodes them, but no
    model endpoint, database or page can take them."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "body"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            bad = _not_utf8(k, where or "body") if isinstance(k, str) else None
            bad = bad or _not_utf8(v, f"{where}.{k}" if where else str(k))
            if bad:
                return bad
    elif isinstance(value, list):
        for i, v in enumerate(value):
            bad = _not_utf8(v, f"{where}[{i}]")
            if bad:
                return bad
    return None


async def _json(request: Request) -> dict[str, Any]:
    """The JSON object of the body. Raises: ApiError 400 (not a JSON object), 422 bad_text (a
    string that is not valid Unicode text, such as a lone surrogate)."""
    try:
        body = await request.json()
    except Exception:  # noqa: BLE001
        raise ApiError(400, "bad_request", "The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The request body must be a JSON object.")
    bad = _not_utf8(body)
    if bad is not None:
        what = "The prompt" if bad == "prompt" else f"The field {bad!r}"
        raise ApiError(422, "bad_text", f"{what} holds characters that are not valid Unicode text (a lone surrogate such as \\ud800): remove them and try again.")
    return body


def _guard(handler):
    """Turn ApiError into its JSON response (HTTPException handling would wrap it in 'detail')."""
    import functools

    @functools.wraps(handler)
    async def wrapped(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except ApiError as e:
            return error_response(e)

    return wrapped


@router.post("/battles")
@_guard
async def new_battle(request: Request):
    """POST /api/battles (CSRF, rate-limited): sample a pair, store the battle; returns its id only."""
    st = state(request)
    sid, judge = api_session(request)
    await rate_limit(request, "battle", sid)
    body = await _json(request)
    mode = body.get("mode", "anony")
    reg = st.registry
    prob = policy = None
    if mode == "anony":
        try:
            st.sampler.observe(await st.vote_counts.read())  # the counts every worker sees
        except Exception:  # noqa: BLE001 - the shared state failed: draw from the last known counts
            log.warning("shared vote counts unavailable; sampling on this worker's counts", exc_info=True)
        try:
            pair = st.sampler.sample()
        except SamplingError as e:
            raise ApiError(503, "no_models", str(e)) from None
        a, b, prob, policy = pair.model_a, pair.model_b, pair.prob, pair.policy
    elif mode in ("named", "direct"):
        a, b = body.get("model_a"), body.get("model_b") if mode == "named" else None
        for m in (a, b) if mode == "named" else (a,):
            if not isinstance(m, str) or m not in reg:
                raise ApiError(422, "bad_model", "Choose models from the list.")
        if mode == "named" and a == b:
            raise ApiError(422, "bad_model", "Choose two different models.")
    else:
        raise ApiError(422, "bad_mode", "mode must be anony, named or direct.")
    bid = await run_in_threadpool(
        create_battle, st.db, mode=mode, model_a=a, model_b=b, session_hash=judge, sampling_policy=policy, sampling_prob=prob,
        ip_hash=network_hash(st.secret, client_ip(request)),
    )
    return {"battle_id": bid, "max_turns": st.settings.max_turns, "max_prompt_chars": st.settings.max_prompt_chars}


async def _start_turn(request: Request, battle_id: str, prompt: str | None):
    st = state(request)
    sid, judge = api_session(request)
    await rate_limit(request, "prompt", sid)
    if prompt is not None:
        if not prompt.strip():
            raise ApiError(422, "empty_prompt", "Type a prompt first.")
        if len(prompt) > st.settings.max_prompt_chars:
            raise ApiError(422, "too_long", f"The prompt is too long ({len(prompt):,} characters; at most {st.settings.max_prompt_chars:,}).")
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
    models = {"a": st.registry.get(lease.model_a)}
    if lease.model_b is not None:
        models["b"] = st.registry.get(lease.model_b)
    gen = stream_turn(st.db, lease, models, prompt, max_turns=st.settings.max_turns, retry_attempts=st.settings.retry_attempts,
                      limits=st.settings.turn_limits())
    return StreamingResponse(gen, media_type="text/event-stream", headers={"x-accel-buffering": "no"})


@router.post("/battles/{battle_id}/turns")
@_guard
async def battle_turn(request: Request, battle_id: str):
    """POST /api/battles/{id}/turns: stream both answers (SSE) for a new user turn."""
    body = await _json(request)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise ApiError(422, "empty_prompt", "Type a prompt first.")
    return await _start_turn(request, battle_id, prompt)


@router.post("/battles/{battle_id}/regenerate")
@_guard
async def battle_regenerate(request: Request, battle_id: str):
    """POST /api/battles/{id}/regenerate: stream both answers to the last turn again."""
    return await _start_turn(request, battle_id, None)


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


@router.post("/battles/{battle_id}/vote")
@_guard
async def battle_vote(request: Request, battle_id: str):
    """POST /api/battles/{id}/vote: record the vote in one transaction; the only response that names the models."""
    st = state(request)
    sid, judge = api_session(request)
    await rate_limit(request, "vote", sid)
    body = await _json(request)
    winner = body.get("winner")
    if winner not in WINNERS:
        raise ApiError(422, "bad_winner", "Vote for model_a, model_b, tie or tie (bothbad).")
    for attempt in range(3):
        try:
            seen: dict[str, str] = {}
            res = await record_vote_async(st.db, st.vote_writer, battle_id, judge, winner, check=_leak_check(st, seen))
            if res.counted and seen.get("mode") == "anony":
                try:  # the sampler's shared counts; the vote itself is committed already
                    await st.vote_counts.add_vote(res.model_a, res.model_b)
                except Exception:  # noqa: BLE001
                    log.warning("shared vote counts not updated", exc_info=True)
            return JSONResponse(_vote_payload(res, winner))  # plain JSON types: no response-model encoding
        except (SQLAlchemyError, StorageError) as e:  # nothing committed: say so plainly, at once
            log.error("vote not saved: %s", e)
            return JSONResponse({"error": NOT_SAVED, "code": "not_saved"}, status_code=503, headers={"retry-after": "30"})
        except VoteRefused as e:
            if e.code == "busy" and attempt < 2:  # the stream's final save may still be landing
                await asyncio.sleep(0.2)
                continue
            return JSONResponse({"error": e.message, "code": e.code}, status_code=REFUSAL_STATUS.get(e.code, 409))
    raise AssertionError("unreachable")  # pragma: no cover
