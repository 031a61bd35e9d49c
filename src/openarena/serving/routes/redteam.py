"""The red-team game: ``GET /redteam`` (the page) and its JSON API.

- ``POST /api/redteam/rounds`` ``{"handle"}`` -> ``{"round_id", "target": {"kind", "brief"},
  "max_turns"}``: a target (drawn by weight) and an anonymous model (drawn uniformly from the
  contestants) for this session's player. The answer names neither the model nor the secret.
- ``POST /api/redteam/rounds/{id}/turns`` ``{"prompt"}`` -> ``{"answer_html", "status",
  "turns", "turns_left"}`` and, once the round is over, ``"reveal": {"model", "secret"}``. The
  server sends the conversation (with the target's system prompt, which the player never sees)
  to the model, checks the model's answer against the target (never the player's text) and
  decides: ``won`` when the answer fails the target, ``lost`` when the turns run out, ``open``
  otherwise; ``failed`` when the model's endpoint fails (the round is not rated).
- ``POST /api/redteam/rounds/{id}/forfeit`` ``{}`` -> ``{"status": "forfeit", "reveal"}``: the
  player gives up (a loss).
- ``GET /api/redteam/leaderboard`` -> ``{"players", "models", "targets"}``: the live boards,
  one pass of online extended Bradley-Terry in time order (cached a few seconds); the
  ``openarena redteam leaderboard db`` command gives the batch fit with intervals.

Every call is checked like the battle API: session cookie, CSRF token, same-origin, rate limits
per IP and session (new rounds count as new battles, turns as prompts), prompt length, the
model's answer capped in characters. A round belongs to its session (another session gets 404),
takes one turn at a time, and cannot go on or be replayed after it ended (409).

Source: RedTeam Arena (LMArena, 2024-09): "Bad Words" rounds, the model revealed after the round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from openarena.providers.client import ProviderError, RetryPolicy, complete_chat
from openarena.serving.routes.bodies import EmptyBody, NewRound, RoundTurn
from openarena.serving.routes.deps import BattleLimit, PromptLimit, Session, State, VoteLimit
from openarena.serving.routes.errors import ApiError
from openarena.serving.routes.pages import render_page
from openarena.serving.safety import render_markdown
from openarena.serving.targets import draw_target
from openarena.storage.rounds import abandon_open_rounds, begin_round_turn, claim_handle, create_round, end_round, finish_round_turn, get_round

router = APIRouter()
log = logging.getLogger("openarena.serving")


def _targets(st) -> dict[str, Any]:
    return {t.name: t for t in st.redteam_targets}


def _contestants(st) -> list[str]:
    names = st.settings.redteam_models or [m.name for m in st.registry if m.anonymous]
    return [n for n in names if n in st.registry]


def _reveal(r) -> dict[str, Any]:
    return {"model": r.model, "secret": r.secret}


@router.get("/redteam", include_in_schema=False)
def redteam_page(request: Request, st: State):
    return render_page(request, "redteam.html", {"title": "Red team", "max_turns": st.settings.redteam_max_turns, "max_chars": st.settings.max_prompt_chars})


@router.post("/api/redteam/rounds", dependencies=[BattleLimit])
async def new_round(body: NewRound, st: State, session: Session):
    """Start a round for this session's player: draw a target and an anonymous model."""
    handle, player = body.handle, session.voter
    if not await run_in_threadpool(claim_handle, st.db, handle, player):
        raise ApiError(409, "handle_taken", "This handle is taken by another player: choose another.")
    models = _contestants(st)
    if not models or not st.redteam_targets:
        raise ApiError(503, "no_models", "The red-team game has no models or targets right now.")
    import secrets as _secrets

    target = draw_target(st.redteam_targets)
    model = models[_secrets.randbelow(len(models))]
    secret = target.new_secret()
    if await run_in_threadpool(abandon_open_rounds, st.db, player):  # walking away from a round is a forfeit (a loss)
        st.redteam_board["dirty"] = True
    rid = await run_in_threadpool(create_round, st.db, player_hash=player, handle=handle, model=model, target=target.name, target_kind=target.kind, secret=secret)
    return {"round_id": rid, "target": {"kind": target.kind, "brief": target.brief()}, "max_turns": st.settings.redteam_max_turns}


async def round_message(body: RoundTurn, st: State) -> str:
    """Dependency: the player's message within the server's ``max_prompt_chars``.
    Raises: ApiError 422 ``too_long``."""
    limit = st.settings.max_prompt_chars
    if len(body.prompt) > limit:
        raise ApiError(422, "too_long", f"The message is too long ({len(body.prompt):,} characters; at most {limit:,}).")
    return body.prompt


@router.post("/api/redteam/rounds/{round_id}/turns", dependencies=[PromptLimit])
async def round_turn(round_id: str, prompt: Annotated[str, Depends(round_message)], st: State, session: Session):
    """One player turn: the model answers, the server decides the outcome."""
    player = session.voter
    r = await run_in_threadpool(begin_round_turn, st.db, round_id, player, st.settings.lease_s)
    if r is None:
        r = await run_in_threadpool(get_round, st.db, round_id, player)
        if r is None:
            raise ApiError(404, "not_found", "No such round in this session: start a new one.")
        if r.status != "open":
            raise ApiError(409, "round_over", "This round is over: start a new one.")
        raise ApiError(409, "busy", "The model is still answering.")
    target = _targets(st).get(r.target)
    model = st.registry.get(r.model) if r.model in st.registry else None
    conversation = list(r.conversation) + [{"role": "user", "content": prompt}]
    if target is None or model is None:
        await run_in_threadpool(finish_round_turn, st.db, round_id, conversation=list(r.conversation), turns=r.turns, status="failed")
        raise ApiError(409, "round_over", "This round's model or target was removed: start a new one.")
    messages = conversation
    system = target.system_prompt(r.secret)
    if system:
        messages = [{"role": "system", "content": system}] + conversation
    cap = st.settings.redteam_answer_chars
    try:
        result = await complete_chat(model, messages, retry=RetryPolicy(max_attempts=max(1, st.settings.retry_attempts)), max_tokens=min(model.max_tokens or 10**9, max(16, cap // 2)))
        answer = result.text.encode("utf-8", "replace").decode("utf-8")[:cap]
    except ProviderError as e:
        log.warning("red-team round %s: %s", round_id, e)
        await run_in_threadpool(finish_round_turn, st.db, round_id, conversation=conversation, turns=r.turns + 1, status="failed")
        ended = await run_in_threadpool(get_round, st.db, round_id, player)
        return {"answer_html": "", "status": "failed", "turns": r.turns + 1, "turns_left": 0,
                "message": "The model's endpoint failed: this round is not rated. Start a new one.", "reveal": _reveal(ended)}
    conversation.append({"role": "assistant", "content": answer})
    turns = r.turns + 1
    if target.achieved(answer, r.secret):
        status = "won"
    elif turns >= st.settings.redteam_max_turns:
        status = "lost"
    else:
        status = "open"
    await run_in_threadpool(finish_round_turn, st.db, round_id, conversation=conversation, turns=turns, status=status)
    html = await run_in_threadpool(render_markdown, answer)
    out: dict[str, Any] = {"answer_html": html, "status": status, "turns": turns, "turns_left": max(st.settings.redteam_max_turns - turns, 0)}
    if status != "open":
        st.redteam_board["dirty"] = True  # this worker's live boards are recomputed soon
        out["reveal"] = _reveal(r)
        out["message"] = "You broke it: the model failed its target!" if status == "won" else "Out of turns: the model held."
    return out


@router.post("/api/redteam/rounds/{round_id}/forfeit", dependencies=[VoteLimit])
async def round_forfeit(round_id: str, _: EmptyBody, st: State, session: Session):
    """The player gives up: a loss; the model (and secret) are revealed."""
    player = session.voter
    r = await run_in_threadpool(end_round, st.db, round_id, player, "forfeit")
    if r is None:
        cur = await run_in_threadpool(get_round, st.db, round_id, player)
        if cur is None:
            raise ApiError(404, "not_found", "No such round in this session: start a new one.")
        if cur.status != "open":
            raise ApiError(409, "round_over", "This round is over: start a new one.")
        raise ApiError(409, "busy", "The model is still answering.")
    st.redteam_board["dirty"] = True
    return {"status": "forfeit", "message": "You gave up this round (it counts as a loss).", "reveal": _reveal(r)}


def _live_boards(st) -> dict[str, Any]:
    """The page's three boards from the arena's rounds through the public pipeline
    (:func:`openarena.api.redteam_leaderboard`, online estimate): {players, models, targets:
    [{name, rating (points), rounds}], rounds}."""
    from openarena.api import redteam_leaderboard
    from openarena.errors import OpenArenaError
    from openarena.storage.rounds import read_rounds

    try:
        board = redteam_leaderboard(read_rounds(st.db), online=True)
    except OpenArenaError:
        return {"players": [], "models": [], "targets": [], "rounds": 0}
    out: dict[str, Any] = {"rounds": int(board.fit.counts.total)}
    for kind in ("player", "model", "target"):
        b = board.board(kind)
        out[kind + "s"] = [{"name": n, "rating": round(float(r), 1), "rounds": int(k)} for n, r, k in zip(b["name"], b["rating"], b["num_rounds"])]
    return out


_board_lock = asyncio.Lock()


@router.get("/api/redteam/leaderboard")
async def redteam_leaderboard(st: State):
    """The three live boards (online estimate, linear in the rounds): recomputed after a round of
    this worker ended and at least every 5 s, by one request at a time (concurrent requests wait
    for it and share its result), off the event loop."""
    cache = st.redteam_board

    def fresh() -> bool:
        age = time.monotonic() - cache.get("at", -1e9)
        return "data" in cache and age < 5 and not cache.get("dirty")

    if not fresh():
        async with _board_lock:
            if not fresh():
                cache["dirty"] = False
                cache["data"] = await run_in_threadpool(_live_boards, st)
                cache["at"] = time.monotonic()
    return cache["data"]
