"""``GET /trust``: the Trust page (provider vote shares, provisional scores, drift alarms, the
cost-vs-score Pareto plot and simultaneous rank intervals), served from the leaderboard's
cached snapshot (:mod:`openarena.serving.trust`, recomputed with the leaderboard);
``GET /trust.json`` gives the same payload as JSON."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from openarena.serving.routes.deps import State
from openarena.serving.routes.pages import render_page

router = APIRouter()

NO_VOTES = "No votes yet: battle in the Arena tab, and the trust figures appear here with the leaderboard."


def _payload(st) -> tuple[object, dict | None, str | None]:
    snap = st.leaderboard.snapshot
    trust = snap.trust
    if trust is None:
        return snap, None, (snap.error or NO_VOTES) if snap.created else None
    if "error" in trust:
        return snap, None, trust["error"]
    return snap, trust, None


@router.get("/trust", include_in_schema=False)
def trust_page(request: Request, st: State):
    """GET /trust: the cached trust figures of the arena's votes."""
    snap, trust, error = _payload(st)
    age = time.time() - snap.created if snap.created else None
    return render_page(request, "trust.html", {"title": "Trust", "snap": snap, "trust": trust, "error": error, "age": age})


@router.get("/trust.json")
def trust_json(st: State):
    """GET /trust.json: {created, trust (see :func:`openarena.serving.trust.trust_payload`) or
    None, error (a plain sentence) or None}."""
    snap, trust, error = _payload(st)
    return {"created": snap.created, "trust": trust, "error": error}
