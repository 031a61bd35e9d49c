"""``GET /about``: what the arena is and the data policy shown to voters."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openarena.serving.routes.pages import render_page

router = APIRouter()


@router.get("/about", include_in_schema=False)
def about_page(request: Request):
    return render_page(request, "about.html", {"title": "About"})
