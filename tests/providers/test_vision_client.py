"""Images reach the models as OpenAI ``image_url`` content parts with data URLs."""

from __future__ import annotations

import asyncio
import base64

from openarena.providers.client import complete_chat, image_content, with_images
from openarena.providers.mock_server import Behaviour, MockServer

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
