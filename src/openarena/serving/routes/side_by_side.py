"""``GET /side-by-side``: two models chosen by the voter, named from the start (votes are stored
with ``anony = False`` and do not enter the anonymous leaderboard)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openarena.serving.routes import render_page, state

router = APIRouter()


@router.get("/side-by-side", include_in_schema=False)
def side_by_side_page(request: Request):
    """GET /side-by-side: two named models answer the same prompt."""
    names = state(request).registry.names()
    return render_page(request, "arena.html", {"mode": "named", "title": "Side by side", "models": names})
