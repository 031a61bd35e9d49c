"""The Trust page: its payload (recomputed with the leaderboard, through openarena.trust_report)
checked against the report it lays out, and the page in Debian's headless Chromium (real CSP)
at desktop and phone widths, light and dark. Screenshots: out/screenshots/trust_*.png."""

from __future__ import annotations

import json
import re
import time

import pandas as pd
import pytest

import openarena
from openarena.serving.leaderboard_cache import Snapshot
from openarena.serving.trust import MESSAGES, compute_trust, trust_options, trust_payload
from tests.analysis.trust.test_report import ORGS, PRICES, _votes
from tests.serving.conftest import MODELS, SCREENSHOTS
from tests.serving.helpers import open_session, play
from tests.serving.test_browser import browser  # noqa: F401  (one Chromium for this module)
from tests.serving.test_page import DESKTOP, PHONE, luminance, no_sideways_scroll, open_page  # noqa: F401

OPTIONS = {"organizations": ORGS, "prices": [tuple(r) for r in PRICES.itertuples(index=False)], "window": "7d", "provisional_votes": 4850}
LEAKS = re.compile(r"Traceback|Error\b|--[a-z]|/work/|\.py\b|tstamp|DataError|min_votes")


@pytest.fixture(scope="module")
def sim():
    """Two weeks of simulated votes with a planted change ('core' gains 0.6 logits in week 2)."""
    return _votes(change=0.6)


def test_payload_lays_out_the_report_it_came_from(sim):
    payload = compute_trust(sim, OPTIONS)
    json.dumps(payload)  # plain JSON types only
    prices = pd.DataFrame(OPTIONS["prices"], columns=["model", "input_price", "output_price"])
    rep = openarena.trust_report(sim, organizations=ORGS, prices=prices, window="7d", provisional_votes=4850)
    assert payload == trust_payload(rep)
    assert payload["n_votes"] == 12000 and payload["missing"] == {}
    shares = {p["provider"]: p["share"] for p in payload["providers"]}
    f = sim.frame
    alpha = {"ace", "bolt"}
    assert shares["Alpha Labs"] == pytest.approx((f.model_a.isin(alpha) | f.model_b.isin(alpha)).mean())
    flagged = {m["model"] for m in payload["provisional"]["models"] if m["provisional"]}
    assert flagged == set(rep.provisional.loc[rep.provisional["votes"] < 4850, "model"])
    assert [a["model"] for a in payload["drift"]["alarms"]] == ["core"] and payload["drift"]["window"] == "7-day"
    assert 80 < payload["drift"]["alarms"][0]["delta"] < 130  # planted: 0.6 logits = 104 points
    # the plot: every priced model inside the box, the frontier's models labelled, a step path
    pl = payload["frontier"]["plot"]
    box = pl["box"]
    assert len(pl["dots"]) == 4 and payload["frontier"]["unpriced"] == ["echo"]
    for d in pl["dots"]:
        assert box["x0"] <= d["x"] <= box["x1"] and box["y0"] <= d["y_hi"] <= d["y"] <= d["y_lo"] <= box["y1"]
    on = {p["model"] for p in payload["frontier"]["points"] if p["status"] == "frontier"}
    assert {d["label"] for d in pl["dots"] if "label" in d} == on and pl["frontier"].startswith("M")
    cheap = min(pl["dots"], key=lambda d: d["x"])
    assert cheap["model"] == "dune"  # $0.15 blended: the leftmost dot
    ranks = {r["model"]: (r["rank_lower"], r["rank_upper"]) for r in payload["ranks"]["rows"]}
    assert ranks["ace"] == (1, 1) and ranks["echo"][0] <= 5 <= ranks["echo"][1]


def test_missing_parts_and_failures_are_plain_sentences(sim):
    short = _votes(n=300, days=2.0)
    payload = compute_trust(short, {**OPTIONS, "prices": []})
    assert set(payload["missing"]) == {"drift", "frontier"}
    assert "7-day windows" in payload["missing"]["drift"] and "No prices are configured" in payload["missing"]["frontier"]
    tiny = openarena.load(pd.DataFrame({"model_a": ["a", "a"], "model_b": ["b", "b"], "winner": ["model_a", "model_a"]}))
    assert compute_trust(tiny, OPTIONS) == {"error": MESSAGES["not_enough_votes"]}
    shown = [m for m in MESSAGES.values() if "{" not in m] + list(payload["missing"].values())  # templates are shown filled in
    for text in shown:
        assert not LEAKS.search(text), text


def test_options_come_from_the_registry_and_are_checked_at_start_up(arena):
    opts = trust_options(arena.state.registry)
    assert opts["organizations"] == {n: org for n, (_, org) in MODELS.items()} and opts["prices"] == []
    from openarena.errors import DataError

    with pytest.raises(DataError):
        trust_options(arena.state.registry, window="fortnight")


def test_trust_page_after_real_votes_in_the_browser(arena, open_page):  # noqa: F811
    with arena.client() as c:
        h = open_session(c)
        for i in range(12):
            play(c, h, f"q{i}", winner=["model_a", "model_b", "model_a", "tie"][i % 4])
        arena.state.leaderboard.refresh()
        doc = c.get("/trust.json").json()
    assert doc["error"] is None and doc["trust"]["n_votes"] == 12
    assert {p["provider"] for p in doc["trust"]["providers"]} == {org for _, org in MODELS.values()}
    assert doc["trust"]["missing"]["drift"].startswith("Not enough data yet")
    page = open_page()
    page.goto(arena.url + "/trust")
    assert page.locator("nav.main a[aria-current='page']").inner_text() == "Trust"
    assert page.locator("#provider-shares tbody tr").count() == 2
    assert page.locator("#provisional-models tbody tr").count() == 2  # 12 votes: both provisional
    assert "Not enough data yet" in page.inner_text("#drift-missing")
    assert "No prices are configured" in page.inner_text("#frontier-missing")
    assert page.locator("#rank-intervals tbody tr").count() == 2
    assert not LEAKS.search(page.inner_text("main"))
    shot(page, "trust_live_desktop")
    assert page.problems == []


def test_trust_page_desktop_phone_and_dark(arena, sim, open_page):  # noqa: F811
    arena.state.leaderboard.snapshot = Snapshot(created=time.time(), n_votes=12000, trust=compute_trust(sim, OPTIONS))
    backgrounds = {}
    for viewport, dark, name in ((DESKTOP, False, "desktop"), (PHONE, False, "phone"), (PHONE, True, "phone_dark"), (DESKTOP, True, "desktop_dark")):
        page = open_page(viewport=viewport, dark=dark)
        page.goto(arena.url + "/trust")
        assert page.locator("#frontier-plot .dot").count() == 4
        assert page.locator("#frontier-plot .dot.frontier").count() >= 2
        assert page.locator("#drift-alarms tr.alarm").all_inner_texts()[0].startswith("core")
        assert page.locator("#rank-intervals tbody tr").count() == 5
        width, inner = no_sideways_scroll(page)
        assert width <= inner, f"/trust: {width} px wide at {inner} px ({name})"
        svg_width = page.locator("#frontier-plot").evaluate("s => s.getBoundingClientRect().width")
        assert svg_width <= inner
        backgrounds[dark] = page.locator("#frontier-plot .plot-bg").evaluate("r => getComputedStyle(r).fill")
        shot(page, f"trust_{name}")
        assert page.problems == []
    assert luminance(backgrounds[False]) > 0.9 and luminance(backgrounds[True]) < 0.15  # the plot follows the theme


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
