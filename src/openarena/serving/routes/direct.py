"""``GET /direct``: chat with one model of the registry (stored as a 'direct' battle, no vote)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openarena.serving.routes.deps import State
from openarena.serving.routes.pages import render_page

router = APIRouter()


@router.get("/direct", include_in_schema=False)
def direct_page(request: Request, st: State):
    """GET /direct: chat with one named model."""
    names = st.registry.names()
    return render_page(request, "arena.html", {"mode": "direct", "title": "Direct chat", "models": names, "vision": set(st.registry.vision_names())})
