"""The code arena's run API: run a Python block of an answer in the sandbox
(:mod:`openarena.serving.sandbox`).

- ``GET /api/code/status`` -> ``{"available", "reason"}``: whether this server runs code (the
  page shows its Run buttons only then).
- ``POST /api/battles/{id}/run`` ``{"side": "a"|"b", "block": k}`` (session cookie, CSRF header,
  rate-limited per IP and per session like prompts) -> ``{"stdout", "stderr", "exit_code",
  "timed_out", "truncated", "images", "message", "duration_s"}``. The server takes the code from
  the stored conversation (the k-th ``python`` block of that side's last answer), never from the
  client, and records the result in the battle's ``meta["runs"]``
  (:func:`openarena.storage.code_runs.record_run`). Refusals carry ``{"error", "code"}``:
  not_found (404), no_answer / no_block / busy_turn (409: the answer is still being written),
  busy_session / busy (429), code_disabled (503), bad_side / bad_block / too_long (422).
- ``GET /artifacts/{id}/{side}/{k}``: the k-th ``html`` block of that side's last answer as a
  page of its own, for the page's ``<iframe sandbox="allow-scripts">`` (static/code.js). Its
  headers make it inert even when opened directly: ``Content-Security-Policy: sandbox
  allow-scripts`` (an opaque origin: no cookies, no access to the arena's DOM or storage),
  ``default-src 'none'`` with inline scripts and styles only (no fetch, XHR, WebSocket, images
  or fonts from the network), ``form-action 'none'``, ``frame-ancestors 'self'``; the iframe's
  sandbox (no allow-top-navigation, no allow-popups, no allow-same-origin) stops navigation of
  the arena and popups. Only the battle's own session can load it.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from openarena.serving.routes.bodies import RunBlock
from openarena.serving.routes.deps import RunLimit, Session, State
from openarena.serving.routes.errors import ApiError
from openarena.serving.sandbox import HTML_LANGS, CodeLimits, CodeRunner, CodeTooLong, RunRefused, SandboxUnavailable, fenced_blocks, python_blocks
from openarena.serving.sessions import voter_hash
from openarena.storage.battles import get_battle
from openarena.storage.code_runs import record_run

router = APIRouter()
log = logging.getLogger("openarena.serving")


def install(app: FastAPI, settings) -> CodeRunner:
    """Add the run API to ``app`` and build its :class:`CodeRunner` (``app.state.code_runner``).
    Probes the sandbox once: when it cannot run, code execution is disabled with a logged
    reason and the rest of the arena is unaffected."""
    enabled = bool(getattr(settings, "code_execution", True))
    runner = CodeRunner(CodeLimits(), enabled=enabled)
    if enabled and not runner.available:
        log.warning("%s", runner.reason)
    app.state.code_runner = runner
    st = app.state.arena
    st.limiter.limits.setdefault("run_session", float(getattr(settings, "runs_per_minute_session", 10)))
    st.limiter.limits.setdefault("run_ip", float(getattr(settings, "runs_per_minute_ip", 60)))
    app.include_router(router)
    return runner


def _runner(request: Request) -> CodeRunner | None:
    return getattr(request.app.state, "code_runner", None)


@router.get("/api/code/status")
def code_status(request: Request):
    """GET /api/code/status: {"available", "reason"} (no secrets: the reason names no path)."""
    runner = _runner(request)
    if runner is None:
        return {"available": False, "reason": "Code execution is not set up on this server."}
    return {"available": runner.available, "reason": None if runner.available else "Code execution is unavailable on this server."}


async def available_runner(request: Request, session: Session) -> CodeRunner:
    """Dependency (after the session check, before the rate limit): the app's code runner.
    Raises: ApiError 503 ``code_disabled`` when this server does not run code."""
    runner = _runner(request)
    if runner is None or not runner.available:
        raise ApiError(503, "code_disabled", "Code execution is unavailable on this server; the rest of the arena works.")
    return runner


Runner = Annotated[CodeRunner, Depends(available_runner)]


@router.post("/api/battles/{battle_id}/run", dependencies=[Depends(available_runner), RunLimit])
async def run_block(battle_id: str, body: RunBlock, runner: Runner, st: State, session: Session):
    """POST /api/battles/{id}/run: run the k-th Python block of a side's last answer."""
    side, block, judge = body.side, body.block, session.voter
    b = await run_in_threadpool(get_battle, st.db, battle_id, judge)
    if b is None:
        raise ApiError(404, "not_found", "No such battle in this session: start a new round.")
    if b.streaming:
        raise ApiError(409, "busy_turn", "The answer is still being written: run its code when it is done.")
    conv = b.conversation_a if side == "a" else b.conversation_b
    answers = [m for m in conv or [] if m.get("role") == "assistant"]
    if not answers:
        raise ApiError(409, "no_answer", "There is no answer to run yet.")
    blocks = python_blocks(answers[-1].get("content") or "")
    if block >= len(blocks):
        raise ApiError(409, "no_block", "That answer has no such Python block.")
    code = blocks[block]
    runner.warm_in_background()  # matplotlib's font cache, built once on the first run
    try:
        res = await runner.run(session.sid, code)
    except RunRefused as e:
        raise ApiError(429, e.code, e.message, headers={"retry-after": "5"}) from None
    except SandboxUnavailable:
        raise ApiError(503, "code_disabled", "Code execution is unavailable on this server; the rest of the arena works.") from None
    except CodeTooLong as e:
        raise ApiError(422, "too_long", f"This block is too long to run ({e}).") from None
    out = res.to_dict()
    await run_in_threadpool(record_run, st.db, battle_id, judge, side, turn=b.turns, block=block, code=code, result=out)
    return JSONResponse(out)


ARTIFACT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; media-src data: blob:; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'self'"
)
MAX_ARTIFACT_CHARS = 200_000


@router.get("/artifacts/{battle_id}/{side}/{block}", include_in_schema=False)
async def artifact(request: Request, st: State, battle_id: str, side: str, block: int):
    """GET /artifacts/{id}/{side}/{k}: the k-th html block of a side's last answer, sandboxed."""
    sid = st.sessions.read(request)
    not_found = PlainTextResponse("No such artifact in this session.", status_code=404)
    if sid is None or side not in ("a", "b") or not 0 <= block < 1000:
        return not_found
    b = await run_in_threadpool(get_battle, st.db, battle_id, voter_hash(st.secret, sid))
    if b is None:
        return not_found
    answers = [m for m in (b.conversation_a if side == "a" else b.conversation_b) or [] if m.get("role") == "assistant"]
    blocks = fenced_blocks(answers[-1].get("content") or "", HTML_LANGS) if answers else []
    if block >= len(blocks) or len(blocks[block]) > MAX_ARTIFACT_CHARS:
        return not_found
    headers = {
        "content-security-policy": ARTIFACT_CSP, "x-frame-options": "SAMEORIGIN",
        "referrer-policy": "no-referrer", "cross-origin-resource-policy": "same-origin",
    }
    return HTMLResponse(blocks[block], headers=headers)
