"""The vision arena end to end, in Debian's Chromium with the real CSP: a visitor attaches an
image to the prompt, two models that see images answer (the mock describes the image it was
sent as an OpenAI ``image_url`` part), the visitor votes and sees the reveal, and the vote lands
on the vision leaderboard, not the text one. The image was re-encoded without its metadata and
stored content-addressed beside the database. Also: an answer that is a whole HTML document
(no fence) renders in the sandboxed preview, at phone width. Screenshots go to
out/screenshots/vision_*.png and code_artifact_document_phone.png."""

from __future__ import annotations

import base64
import hashlib
import io

import httpx
import pytest
from PIL import Image

from openarena.demo.mock_server import Behaviour
from tests.serving.conftest import MODELS, SCREENSHOTS
from tests.serving.helpers import events, open_session
from tests.serving.test_browser import browser  # noqa: F401  (one Chromium for this module)
from tests.serving.test_page import DESKTOP, PHONE, no_sideways_scroll, open_page  # noqa: F401

VISION = tuple(MODELS)  # both contestants of conftest see images
TEXT_ONLY = "textonly-gamma"


def photo(tmp_path, colour=(200, 30, 30)):
    """A 64 × 48 JPEG with an EXIF GPS position, as a phone would upload it."""
    img = Image.new("RGB", (64, 48), colour)
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    exif[0x010F] = "SpyCam Inc."
    path = tmp_path / "holiday.jpg"
    img.save(path, format="JPEG", exif=exif, quality=95)
    return path


def vision_arena(arena_factory):
    eye = Behaviour.vision(chunk_delay_s=0.002)
    poet = Behaviour.vision("A haiku on it. ", chunk_delay_s=0.002)
    return arena_factory(dict(zip(MODELS, (eye, poet))), anon_extra={TEXT_ONLY: Behaviour.fixed("I cannot see.")}, vision=VISION)


def _battle(live, bid):
    from openarena.storage.battles import get_battle

    return get_battle(live.state.db, bid)


@pytest.mark.parametrize("viewport,name", [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_image_battle_end_to_end(arena_factory, open_page, tmp_path, viewport, name):  # noqa: F811
    live = vision_arena(arena_factory)
    page = open_page(viewport=viewport)
    page.goto(live.url + "/")
    page.set_input_files("#image", str(photo(tmp_path)))
    page.locator("#attachment:not([hidden]) #attachment-img").wait_for()
    assert page.locator("#attachment-name").inner_text() == "holiday.jpg"
    page.fill("#prompt", "What colour is this picture?")
    page.click("#send")
    page.wait_for_selector(".msg.assistant.done >> nth=1")
    page.wait_for_selector("#stop:disabled")
    assert page.locator("#attachment").is_hidden()  # sent with the prompt, the attachment is gone
    # the user's own image shows in both chats; both models saw it (the mock describes what it got)
    assert page.locator("#chat-a .msg.user img.user-image").count() == 1
    for side in "ab":
        text = page.locator(f"#chat-{side} .msg.assistant.done").inner_text()
        assert "1 image: a JPEG of 64 × 48 pixels" in text and "mostly red" in text, text
    bid = page.locator("#arena").get_attribute("data-battle-id")
    assert page.locator("#arena").get_attribute("data-arena") == "vision"
    b = _battle(live, bid)
    assert b.arena == "vision" and {b.model_a, b.model_b} == set(VISION) and b.sampling_prob == pytest.approx(1.0)
    sha = b.conversation_a[0]["images"][0]
    stored = live.state.images.store.get(sha)
    assert hashlib.sha256(stored).hexdigest() == sha
    assert b"SpyCam" not in stored and not Image.open(io.BytesIO(stored)).getexif()  # metadata gone
    assert live.state.images.store.folder == tmp_path / "a0" / "images"  # beside the database
    # every request to the models carried the image as an image_url data URL
    reqs = [r for r in live.mock.requests if r.messages and isinstance(r.messages[-1].get("content"), list)]
    assert len(reqs) == 2
    part = reqs[0].messages[-1]["content"][1]
    assert part["type"] == "image_url" and base64.b64decode(part["image_url"]["url"].split(",", 1)[1]) == stored
    # vote, reveal
    page.click("#votes button[data-winner='model_a']")
    page.wait_for_selector("#reveal:not([hidden])")
    assert "Thanks! Your vote (A) was recorded." in page.locator("#reveal").inner_text()
    assert page.locator("#label-a .model-name").inner_text() == b.model_a
    if name == "phone":
        width, inner = no_sideways_scroll(page)
        assert width <= inner
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"vision_battle_{name}.png"), full_page=True)

    # more image battles through the API, then the vision leaderboard
    with httpx.Client(base_url=live.url, timeout=30) as c:
        h = open_session(c)
        png = io.BytesIO()
        Image.new("RGB", (10, 10), (0, 0, 200)).save(png, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
        winners = ["model_a", "model_b", "tie", "model_a", "model_b", "model_a"]
        for w in winners:
            r = c.post("/api/battles", json={"mode": "anony", "arena": "vision"}, headers=h)
            vid = r.json()["battle_id"]
            r = c.post(f"/api/battles/{vid}/turns", json={"prompt": "and this one?", "images": [url]}, headers=h)
            assert events(r.text)[-1][1]["votable"], r.text
            assert c.post(f"/api/battles/{vid}/vote", json={"winner": w}, headers=h).status_code == 200
    snaps = live.state.leaderboard.refresh() and live.state.leaderboard.snapshots
    assert snaps["vision"].n_votes == 7 and snaps["text"].n_votes == 0
    page.goto(live.url + "/leaderboard?arena=vision")
    assert page.locator("#arena-tabs a[aria-current='page']").inner_text() == "Vision"
    models = set(page.locator("#board td.model").all_inner_texts())
    assert models == set(VISION) and TEXT_ONLY not in page.content()
    if name == "phone":
        width, inner = no_sideways_scroll(page)
        assert width <= inner
    page.screenshot(path=str(SCREENSHOTS / f"vision_leaderboard_{name}.png"), full_page=True)
    page.goto(live.url + "/leaderboard?arena=text")
    assert page.locator("#board").count() == 0  # no text vote yet
    assert page.problems == []


def test_image_refusals_on_the_page_and_the_api(arena_factory, open_page, tmp_path):  # noqa: F811
    live = vision_arena(arena_factory)
    page = open_page(viewport=DESKTOP)
    page.goto(live.url + "/")
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is text pretending to be a PNG")
    page.set_input_files("#image", str(bad))
    page.fill("#prompt", "what is this?")
    page.click("#send")
    page.wait_for_selector("#status.error")
    assert page.locator("#status").inner_text() == "This file is not an image the arena can read: send a PNG, JPEG, WebP or GIF file."
    with httpx.Client(base_url=live.url, timeout=30) as c:
        h = open_session(c)
        # a text battle does not take images; its pair may not see them
        tid = c.post("/api/battles", json={"mode": "anony"}, headers=h).json()["battle_id"]
        url = "data:image/png;base64," + base64.b64encode(photo(tmp_path).read_bytes()).decode()
        r = c.post(f"/api/battles/{tid}/turns", json={"prompt": "see?", "images": [url]}, headers=h)
        assert r.status_code == 422 and r.json()["code"] == "not_vision"
        vid = c.post("/api/battles", json={"mode": "anony", "arena": "vision"}, headers=h).json()["battle_id"]
        r = c.post(f"/api/battles/{vid}/turns", json={"prompt": "see?", "images": [url, url]}, headers=h)
        assert r.status_code == 422 and r.json() == {"error": "Too many images: one image per prompt.", "code": "too_many_images"}
        # a direct chat with a model that cannot see images is refused at once
        r = c.post("/api/battles", json={"mode": "direct", "model_a": TEXT_ONLY, "arena": "vision"}, headers=h)
        assert r.status_code == 422 and r.json()["code"] == "no_vision" and TEXT_ONLY in r.json()["error"]
        r = c.post("/api/battles", json={"mode": "anony", "arena": "smell"}, headers=h)
        assert r.status_code == 422 and r.json()["code"] == "bad_arena"
    assert not [p for p in page.problems if "422" not in p]


def test_a_whole_html_document_answer_previews_at_phone_width(arena_factory, open_page):  # noqa: F811
    doc = ("<!DOCTYPE html>\n<html><head><style>body{font:16px sans-serif;background:#fdf6e3}h1{color:#b58900}</style></head>"
           "<body><h1 id='t'>Counter</h1><button id='b'>+1</button> <span id='n'>0</span>"
           "<script>let n=0;document.getElementById('b').onclick=()=>{document.getElementById('n').textContent=++n;};"
           "document.getElementById('t').textContent='Counter ready';</script></body></html>")
    live = arena_factory({n: Behaviour.fixed("Here is the page:\n\n" + doc, chunk_delay_s=0.001) for n in MODELS})
    page = open_page(viewport=PHONE)
    page.goto(live.url + "/")
    page.fill("#prompt", "make me a counter page")
    page.click("#send")
    page.wait_for_selector(".msg.assistant.done >> nth=1")
    page.wait_for_selector("#stop:disabled")
    btn = page.locator("#chat-a button.preview")
    assert btn.count() == 1
    btn.click()
    frame = page.frame_locator("#chat-a iframe.artifact")
    frame.locator("#t").filter(has_text="Counter ready").wait_for()  # its script ran, in the sandbox
    frame.locator("#b").click()
    assert frame.locator("#n").inner_text() == "1"
    assert page.locator("#chat-a iframe.artifact").get_attribute("sandbox") == "allow-scripts"
    width, inner = no_sideways_scroll(page)
    assert width <= inner
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#chat-a iframe.artifact").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "code_artifact_document_phone.png"), full_page=True)
    assert page.problems == []


@pytest.mark.parametrize("viewport,name", [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_a_code_arena_battle_lands_on_the_code_leaderboard(arena_factory, open_page, viewport, name):  # noqa: F811
    """The Code tab (/code) starts battles stored with arena 'code': the visitor previews the
    HTML answer, votes, and the vote counts on the code board, not the text one."""
    page_html = "```html\n<h1 id='t'>Hello</h1><script>document.getElementById('t').textContent='Hello from the sandbox';</script>\n```"
    live = arena_factory({n: Behaviour.fixed("Here it is:\n\n" + page_html, chunk_delay_s=0.001) for n in MODELS})
    page = open_page(viewport=viewport)
    page.goto(live.url + "/code")
    assert page.locator("nav.main a[aria-current='page']").inner_text().strip() == "Code"
    page.fill("#prompt", "a page that says hello")
    page.click("#send")
    page.wait_for_selector(".msg.assistant.done >> nth=1")
    page.wait_for_selector("#stop:disabled")
    assert page.locator("#arena").get_attribute("data-arena") == "code"
    page.locator("#chat-b button.preview").click()
    page.frame_locator("#chat-b iframe.artifact").locator("#t").filter(has_text="Hello from the sandbox").wait_for()
    page.click("#votes button[data-winner='model_b']")
    page.wait_for_selector("#reveal:not([hidden])")
    bid = page.locator("#arena").get_attribute("data-battle-id")
    assert _battle(live, bid).arena == "code"
    if name == "phone":
        width, inner = no_sideways_scroll(page)
        assert width <= inner
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"code_arena_{name}.png"), full_page=True)
    snaps = live.state.leaderboard.refresh() and live.state.leaderboard.snapshots
    assert snaps["code"].n_votes == 1 and snaps["text"].n_votes == 0
    # a new round on the code page stays in the code arena
    page.click("#new-round")
    page.fill("#prompt", "another one")
    page.click("#send")
    page.wait_for_selector(".msg.assistant.done >> nth=1")
    assert page.locator("#arena").get_attribute("data-arena") == "code"
    assert page.problems == []
