"""``GET /side-by-side``: two models chosen by the voter, named from the start (votes are stored
with ``anony = False`` and do not enter the anonymous leaderboard)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openarena.serving.routes.deps import State
from openarena.serving.routes.pages import render_page

router = APIRouter()


@router.get("/side-by-side", include_in_schema=False)
def side_by_side_page(request: Request, st: State):
    """GET /side-by-side: two named models answer the same prompt."""
    names = st.registry.names()
    return render_page(request, "arena.html", {"mode": "named", "title": "Side by side", "models": names, "vision": set(st.registry.vision_names())})
