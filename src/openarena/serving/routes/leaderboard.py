"""``GET /leaderboard``: the arena's own leaderboard (overall and by category, style control on
or off, whisker plot, votes per model), served from the cache of
:class:`~openarena.serving.leaderboard_cache.LeaderboardCache`; ``POST /leaderboard/refresh``
asks for a recomputation (CSRF-protected; at most one per ``leaderboard_min_refresh_s``);
``GET /leaderboard.json`` gives the rows of one board."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from openarena.serving.leaderboard_cache import ARENA_LABELS, CATEGORIES
from openarena.serving.routes.deps import State, api_session
from openarena.serving.routes.pages import render_page

router = APIRouter()


def _board(st, category: str, style: bool, arena: str = "text"):
    """(snapshot of ``arena``, the category shown, its board or None); an unknown arena or
    category falls back to text / full."""
    snaps = getattr(st.leaderboard, "snapshots", None) or {"text": st.leaderboard.snapshot}
    snap = snaps.get(arena) or st.leaderboard.snapshot
    if category not in snap.categories:
        category = "full"
    return snap, category, snap.boards.get((category, style))


@router.get("/leaderboard", include_in_schema=False)
def leaderboard_page(request: Request, st: State, category: str = "full", style: int = 0, arena: str = "text"):
    """GET /leaderboard: the cached board of an arena (text, vision, code) and category, with
    or without style control."""
    arena = arena if arena in ARENA_LABELS else "text"
    snap, category, board = _board(st, category, bool(style), arena)
    age = time.time() - snap.created if snap.created else None
    return render_page(
        request, "leaderboard.html",
        {"title": "Leaderboard", "snap": snap, "board": board, "category": category, "style": bool(style),
         "categories": [(c, CATEGORIES.get(c, c)) for c in snap.categories], "age": age,
         "arena": arena, "arenas": list(ARENA_LABELS.items())},
    )


@router.get("/leaderboard/plot.png", include_in_schema=False)
def leaderboard_plot(st: State, category: str = "full", style: int = 0, arena: str = "text"):
    """GET /leaderboard/plot.png: the CI whisker plot of a cached board."""
    _, _, board = _board(st, category, bool(style), arena)
    if board is None or board.plot is None:
        return Response(status_code=404)
    return Response(board.plot, media_type="image/png")


@router.get("/leaderboard/reference.png", include_in_schema=False)
def reference_plot(st: State):
    """GET the whisker plot of the public reference board (--reference)."""
    ref = st.leaderboard.snapshot.reference
    if not ref or not ref.get("plot"):
        return Response(status_code=404)
    return Response(ref["plot"], media_type="image/png")


@router.get("/leaderboard.json")
def leaderboard_json(st: State, category: str = "full", style: int = 0, arena: str = "text"):
    """GET /leaderboard.json: the cached boards as JSON (``arena``: text, vision or code)."""
    arena = arena if arena in ARENA_LABELS else "text"
    snap, category, board = _board(st, category, bool(style), arena)
    return {
        "created": snap.created, "n_votes": snap.n_votes, "arena": arena, "category": category, "style_control": bool(style),
        "rows": board.rows if board else [], "unrated": board.unrated if board else [],
        "error": (board.error if board else snap.error),
        "votes_per_model": snap.votes_per_model, "excluded": snap.excluded,
    }


@router.post("/leaderboard/refresh", dependencies=[Depends(api_session)])
def leaderboard_refresh(st: State):
    """POST /leaderboard/refresh (CSRF): ask for a recomputation, at most once per interval."""
    started = st.leaderboard.request_refresh()
    return JSONResponse({"refreshing": started, "message": "Recomputing the leaderboard." if started else "Recomputed moments ago; try again shortly."}, status_code=202)
