"""The vision arena under abuse (found by attacking a real server):

- a burst of large uploads (each a 110 KB PNG declaring 25 million pixels, seconds of decoding)
  waited for the two decoding slots *inside* the server's shared thread pool: 60 of them from
  one IP held every thread, and ``/healthz`` took 27 s. Uploads now wait on the event loop for a
  slot of their own and are refused (503 images_busy) past a small queue;
- the content-addressed store had no total cap: a 2 MB noisy WebP is stored as an 8.7 MB PNG,
  120 prompts a minute per IP. The store now has a cap (the ``images`` table's sum, shared by
  the workers) and a free-disk floor (503 images_full), so uploads cannot fill the disk the
  database lives on.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading

import anyio.to_thread
import httpx
from PIL import Image

from openarena.demo.mock_server import Behaviour
from openarena.serving import images as images_mod
from openarena.serving.images import ImageIntake, ImageRefused
from openarena.storage.images import ImageStore
from tests.serving.conftest import MODELS
from tests.serving.helpers import open_session


def _url(colour) -> str:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_a_burst_of_uploads_waits_off_the_shared_thread_pool_and_is_bounded(tmp_path, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    real = images_mod.clean_image

    def slow_clean(raw, limits=None):  # a decode that takes as long as the test wants
        entered.set()
        release.wait(30)
        return real(raw, limits)

    monkeypatch.setattr(images_mod, "clean_image", slow_clean)
    intake = ImageIntake(ImageStore(tmp_path / "images"), max_decoding=1, max_waiting=2)

    async def burst():
        tasks = [asyncio.create_task(intake.accept_async([_url((i, 0, 0))])) for i in range(10)]
        await asyncio.sleep(0)
        while not entered.is_set():
            await asyncio.sleep(0.01)
        # one upload decodes in the intake's own slot; none holds a thread of the shared pool,
        # so the server's other work (health, pages, votes) still has all of them
        held = anyio.to_thread.current_default_thread_limiter().borrowed_tokens
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return held, results

    held, results = asyncio.run(burst())
    assert held == 0
    busy = [r for r in results if isinstance(r, ImageRefused)]
    stored = [r for r in results if isinstance(r, list)]
    assert len(stored) == 3 and len(busy) == 7  # 1 decoding + 2 waiting; the rest refused at once
    assert {r.code for r in busy} == {"images_busy"} and "try again" in str(busy[0])
    assert all(len(r) == 1 and r[0] in intake.store for r in stored)


def test_the_image_store_has_a_total_cap(tmp_path):
    store = ImageStore(tmp_path / "images")
    first = ImageIntake(store).accept([_url((1, 2, 3))])[0]
    size = len(store.get(first))
    capped = ImageIntake(store, max_store_bytes=size + 10)
    assert capped.accept([_url((1, 2, 3))]) == [first]  # already stored: takes no room
    try:
        capped.accept([_url((9, 9, 9))])
        raise AssertionError("a new image past the cap was stored")
    except ImageRefused as e:
        assert e.code == "images_full"
    assert store.total_bytes() == size  # nothing written
    floor = ImageIntake(store, min_free_bytes=2**62)  # more than any disk holds
    try:
        floor.accept([_url((7, 7, 7))])
        raise AssertionError("an image was stored below the free-space floor")
    except ImageRefused as e:
        assert e.code == "images_full"


def test_a_full_store_refuses_images_with_503_and_writes_nothing(arena_factory):
    vision = (Behaviour.vision(chunk_delay_s=0.001), Behaviour.vision(chunk_delay_s=0.001))
    live = arena_factory(dict(zip(MODELS, vision)), vision=tuple(MODELS), max_image_store_bytes=300)
    with httpx.Client(base_url=live.url, timeout=30) as c:
        h = open_session(c)
        codes = []
        for i in range(4):  # a 16 × 16 PNG is about 90 bytes re-encoded: the cap takes three
            bid = c.post("/api/battles", json={"mode": "anony", "arena": "vision"}, headers=h).json()["battle_id"]
            r = c.post(f"/api/battles/{bid}/turns", json={"prompt": "see?", "images": [_url((i * 40, 0, 0))]}, headers=h)
            codes.append(r.status_code)
        assert codes[:2] == [200, 200] and codes[-1] == 503, codes
        assert r.json()["code"] == "images_full" and "without the image" in r.json()["error"]
        assert r.headers["retry-after"] == "60"
    from openarena.storage.images import stored_bytes

    assert stored_bytes(live.state.db) <= 300 and live.state.images.store.total_bytes() == stored_bytes(live.state.db)


def test_a_refused_turn_stores_no_image_and_an_image_refusal_frees_the_turn(arena_factory):
    vision = (Behaviour.vision(chunk_delay_s=0.001), Behaviour.vision(chunk_delay_s=0.001))
    live = arena_factory(dict(zip(MODELS, vision)), vision=tuple(MODELS), max_turns=1)
    store = live.state.images.store
    with httpx.Client(base_url=live.url, timeout=30) as c:
        h = open_session(c)
        bid = c.post("/api/battles", json={"mode": "anony", "arena": "vision"}, headers=h).json()["battle_id"]
        assert c.post(f"/api/battles/{bid}/turns", json={"prompt": "see?", "images": [_url((1, 0, 0))]}, headers=h).status_code == 200
        before = store.total_bytes()
        # the battle is at its turn limit: the image of a turn that will not run is not stored
        r = c.post(f"/api/battles/{bid}/turns", json={"prompt": "and?", "images": [_url((2, 0, 0))]}, headers=h)
        assert r.status_code == 409 and r.json()["code"] == "turn_limit"
        assert store.total_bytes() == before
        # an image refused by the checks releases the turn: the same battle takes the next prompt
        tid = c.post("/api/battles", json={"mode": "anony"}, headers=h).json()["battle_id"]
        r = c.post(f"/api/battles/{tid}/turns", json={"prompt": "see?", "images": [_url((3, 0, 0))]}, headers=h)
        assert r.status_code == 422 and r.json()["code"] == "not_vision"
        r = c.post(f"/api/battles/{tid}/turns", json={"prompt": "hello"}, headers=h)
        assert r.status_code == 200 and "event: end" in r.text
        assert store.total_bytes() == before
