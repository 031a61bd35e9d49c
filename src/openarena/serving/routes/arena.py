"""``GET /``: the anonymous battle page. It knows nothing of the models: the pair is drawn when
the battle is created (``POST /api/battles``) and named only in the answer to the vote."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openarena.serving.routes.pages import render_page

router = APIRouter()


@router.get("/", include_in_schema=False)
def arena_page(request: Request):
    """GET /: the anonymous battle page (no model identity in it)."""
    return render_page(request, "arena.html", {"mode": "anony", "title": "Arena (battle)"})
