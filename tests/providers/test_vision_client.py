"""Images reach the models as OpenAI ``image_url`` content parts with data URLs."""

from __future__ import annotations

import asyncio
import base64

from openarena.providers.client import complete_chat, image_content, with_images
from openarena.demo.mock_server import Behaviour, MockServer

PNG = b"\x89PNG\r\n\x1a\nnot really pixels"
URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_stored_messages_become_content_parts():
    stored = [
        {"role": "user", "content": "what is this?", "images": ["ab" * 32]},
        {"role": "assistant", "content": "a cat"},
        {"role": "user", "content": "and now?", "images": []},
    ]
    sent = with_images(stored, lambda sha: URL if sha == "ab" * 32 else None)
    assert sent[0] == {"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": URL}}]}
    assert sent[1] == stored[1] and sent[2] == {"role": "user", "content": "and now?"}  # no stray "images" key
    assert stored[0]["images"] == ["ab" * 32]  # the stored conversation is left as it was
    assert image_content("hi", []) == [{"type": "text", "text": "hi"}]


def test_the_mock_receives_the_image_url_part():
    seen = []

    def answer(body):
        seen.append(body["messages"])
        return "ok"

    with MockServer({"eye": Behaviour.from_function(answer)}) as srv:
        res = asyncio.run(complete_chat(srv.model_config("eye", vision=True), [{"role": "user", "content": image_content("describe", [URL])}]))
        assert res.text == "ok"
        content = srv.requests[0].messages[-1]["content"]
    assert content[1]["type"] == "image_url" and base64.b64decode(content[1]["image_url"]["url"].split(",", 1)[1]) == PNG
    assert seen[0][-1]["content"][0] == {"type": "text", "text": "describe"}


def test_the_mock_vision_model_describes_the_image_and_refuses_bad_parts():
    import io

    import httpx
    from PIL import Image

    from openarena.demo.mock_server import DEMO_BEHAVIOURS, describe_images

    png = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 30, 200)).save(png, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    with MockServer({"eye": DEMO_BEHAVIOURS["mock-vision-eye"].model_copy(update={"chunk_delay_s": 0})}) as srv:
        res = asyncio.run(complete_chat(srv.model_config("eye"), [{"role": "user", "content": image_content("what is it?", [url, url])}]))
        assert res.text == "I see 2 images: a PNG of 64 × 48 pixels, mostly blue; a PNG of 64 × 48 pixels, mostly blue."
        res = asyncio.run(complete_chat(srv.model_config("eye"), [{"role": "user", "content": "no picture"}]))
        assert res.text == "I see no image."
        bad = {"model": "eye", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]}
        r = httpx.post(srv.base_url + "/chat/completions", json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_image_url" and "content[0].image_url.url" in r.json()["error"]["message"]
    garbled = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}
    assert describe_images(garbled) == "I see 1 image: an image this mock could not decode."
