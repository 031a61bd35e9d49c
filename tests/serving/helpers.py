"""What the API tests share: open a session like a page view, run a battle turn, parse SSE."""

from __future__ import annotations

import json
import re

import httpx


def open_session(client: httpx.Client, path: str = "/") -> dict[str, str]:
    """GET a page (sets the session cookie); returns the headers an API call needs."""
    r = client.get(path)
    assert r.status_code == 200
    token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', r.text).group(1)
    return {"x-csrf-token": token}


def events(raw: str) -> list[tuple[str, dict]]:
    out = []
    for block in raw.split("\n\n"):
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        if data:
            out.append((name, json.loads(data)))
    return out


def new_battle(client: httpx.Client, h: dict[str, str], **body) -> str:
    r = client.post("/api/battles", json={"mode": "anony", **body}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()["battle_id"]


def turn(client: httpx.Client, h: dict[str, str], bid: str, prompt: str) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    r = client.post(f"/api/battles/{bid}/turns", json={"prompt": prompt}, headers=h)
    return r, (events(r.text) if r.headers.get("content-type", "").startswith("text/event-stream") else [])


def play(client: httpx.Client, h: dict[str, str], prompt: str = "hello", winner: str = "model_a") -> dict:
    bid = new_battle(client, h)
    r, ev = turn(client, h, bid, prompt)
    assert r.status_code == 200 and ev[-1][0] == "end" and ev[-1][1]["votable"], r.text
    v = client.post(f"/api/battles/{bid}/vote", json={"winner": winner}, headers=h)
    assert v.status_code == 200, v.text
    return v.json()
