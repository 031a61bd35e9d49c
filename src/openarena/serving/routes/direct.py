"""``GET /direct``: chat with one model of the registry (stored as a 'direct' battle, no vote)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openarena.serving.routes import render_page, state

router = APIRouter()


@router.get("/direct", include_in_schema=False)
def direct_page(request: Request):
    """GET /direct: chat with one named model."""
    names = state(request).registry.names()
    return render_page(request, "arena.html", {"mode": "direct", "title": "Direct chat", "models": names})
