"""``GET /`` and ``GET /code``: the anonymous battle page (text, or vision with an image) and
the code arena's. It knows nothing of the models: the pair is drawn when
the battle is created (``POST /api/battles``) and named only in the answer to the vote."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openarena.serving.routes.pages import render_page

router = APIRouter()


@router.get("/", include_in_schema=False)
def arena_page(request: Request):
    """GET /: the anonymous battle page (no model identity in it)."""
    return render_page(request, "arena.html", {"mode": "anony", "title": "Arena (battle)"})


@router.get("/code", include_in_schema=False)
def code_arena_page(request: Request):
    """GET /code: the code arena, an anonymous battle page whose battles are stored with
    ``arena = 'code'`` (their votes form the code leaderboard); HTML answers preview in the
    sandboxed frame and Python blocks run in the sandbox, as on the battle page."""
    return render_page(request, "arena.html", {"mode": "anony", "title": "Code arena (battle)", "base_arena": "code"})
