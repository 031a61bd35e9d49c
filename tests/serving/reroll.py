"""The re-roll attack replayed against the real app (FastAPI TestClient, one client per voter with
its own cookie jar and IP address): the demo registry (its models and sampling weights, served
by the mock OpenAI server with instant, recognisable answers), the real pair sampler, real
sessions, CSRF and votes in SQLite.

Honest voters prefer models by a known Bradley-Terry truth and abandon battles at random. The
attacker recognises its target's answer (each demo model writes a distinctive text; Huang et al.
2025 recognise real models from their answers with >95% accuracy), votes for it when it appears
and abandons every other battle. Since no answer tells the attacker whether its votes count,
its behaviour is the same with or without the safeguards, so one run measures both: the
leaderboard of all stored votes (what the arena counted before the safeguards) and of the
counted ones.

Used by tests/serving/test_vote_integrity.py and bench/reroll_attack.py.
"""

from __future__ import annotations

import os
import random
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openarena.demo import DEMO_REGISTRY
from openarena.demo.mock_server import Behaviour, MockServer
from openarena.providers.registry import ModelRegistry, load_registry
from openarena.serving.app import build_state, create_app
from openarena.serving.config import ServeSettings

#: Each demo model's answer: distinct, so a voter can tell who wrote it.
ANSWERS = {
    "mock-echo": "You said: hello",
    "mock-poet": "Silent circuits hum, two answers race through the dark",
    "mock-markdown": "A short answer with a list",
    "mock-slow": "This model thinks slowly. Press Stop whenever you like.",
    "mock-flaky": "I failed once, the client retried, and here I am.",
}
#: The honest voters' taste (Bradley-Terry strengths, natural-log odds).
TRUTH = {"demo-echo": 0.0, "demo-poet": 0.4, "demo-markdown": 0.8, "demo-slow": -0.8, "demo-flaky": -0.4}
NO_LIMITS = dict(prompts_per_minute_session=0, prompts_per_minute_ip=0, battles_per_minute_session=0, battles_per_minute_ip=0,
                 votes_per_minute_session=0, votes_per_minute_ip=0)


@dataclass
class Arena:
    app: object
    state: object
    names: dict[str, str]  # answer text -> model name
    roles: dict[str, str] = field(default_factory=dict)  # battle id -> 'honest' | attacker label


@contextmanager
def demo_arena(tmp_path: Path, seed: int = 0, **settings):
    """The demo registry behind instant mock answers; rate limits per minute off (the replay
    stands for a day of patient traffic); the pair sampler seeded; yields an :class:`Arena`."""
    mock = MockServer({mid: Behaviour.fixed(text) for mid, text in ANSWERS.items()} | {"mock-judge": Behaviour.fixed("[[A=B]]")}).start()
    old = os.environ.get("OPENARENA_MOCK_URL")
    os.environ["OPENARENA_MOCK_URL"] = f"http://127.0.0.1:{mock.port}/v1"
    try:
        # the text arena's demo models (the vision demo models answer images; these voters send none)
        registry = ModelRegistry([m for m in load_registry(DEMO_REGISTRY) if not m.vision])
    finally:
        if old is None:
            os.environ.pop("OPENARENA_MOCK_URL", None)
        else:
            os.environ["OPENARENA_MOCK_URL"] = old
    s = ServeSettings(database_url=f"sqlite:///{tmp_path / 'arena.db'}", leaderboard_interval_s=3600, leaderboard_min_refresh_s=0,
                      leaderboard_process=False, retry_attempts=1, **{**NO_LIMITS, **settings})
    state = build_state(s, registry=registry)
    state.sampler._rng = random.Random(seed)
    app = create_app(state=state, start_background=False)
    names = {ANSWERS[m.model_id]: m.name for m in registry if m.model_id in ANSWERS}
    try:
        yield Arena(app, state, names)
    finally:
        state.vote_writer.stop()
        state.db.dispose()
        mock.stop()


class Voter:
    """One browser: a session (cookie jar) from one IP address."""

    def __init__(self, arena: Arena, ip: str, role: str) -> None:
        from fastapi.testclient import TestClient

        self.arena, self.role = arena, role
        self.client = TestClient(arena.app, client=(ip, 40000))
        page = self.client.get("/")
        self.h = {"x-csrf-token": re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text).group(1)}

    def battle(self) -> tuple[str, str | None, str | None]:
        """Open an anonymous battle and send a prompt; (battle id, model of A, model of B) as the
        voter recognises them from the answers (None: not recognised or failed)."""
        r = self.client.post("/api/battles", json={"mode": "anony"}, headers=self.h)
        assert r.status_code == 200, r.text
        bid = r.json()["battle_id"]
        self.arena.roles[bid] = self.role
        t = self.client.post(f"/api/battles/{bid}/turns", json={"prompt": "hello"}, headers=self.h)
        assert t.status_code == 200, t.text
        seen = {}
        for side, html in re.findall(r'"side":"([ab])","html":"((?:[^"\\]|\\.)*)","done":true', t.text):
            seen[side] = next((name for text, name in self.arena.names.items() if text.split(",")[0] in html), None)
        return bid, seen.get("a"), seen.get("b")

    def vote(self, bid: str, winner: str) -> dict:
        r = self.client.post(f"/api/battles/{bid}/vote", json={"winner": winner}, headers=self.h)
        assert r.status_code == 200, r.text
        return r.json()


def honest_voter(arena: Arena, ip: str, battles: int, rng: np.random.Generator, keep: float = 0.7) -> list[dict]:
    """Votes by the Bradley-Terry truth (10% ties) on a random ``keep`` share of its battles."""
    v = Voter(arena, ip, "honest")
    out = []
    for _ in range(battles):
        bid, a, b = v.battle()
        if a is None or b is None or rng.random() > keep:
            continue
        p = 1.0 / (1.0 + np.exp(TRUTH[b] - TRUTH[a]))
        w = "tie" if rng.random() < 0.1 else ("model_a" if rng.random() < p else "model_b")
        out.append(v.vote(bid, w))
    return out


def reroll_attacker(arena: Arena, ip: str, target: str, votes: int, role: str, max_battles: int = 400) -> list[dict]:
    """Opens battles until ``target`` answers, votes for it, abandons the rest; stops after
    ``votes`` votes. Every acknowledgement it gets looks the same."""
    v = Voter(arena, ip, role)
    out = []
    for _ in range(max_battles):
        if len(out) >= votes:
            break
        bid, a, b = v.battle()
        if target in (a, b):
            out.append(v.vote(bid, "model_a" if a == target else "model_b"))
    return out


def ratings(arena: Arena, *, roles: set[str] | None = None, counted_only: bool = False) -> dict[str, float]:
    """Bradley-Terry arena scores (anchored at the mean of 1000) of the anonymous votes, of the
    battles of ``roles`` only (None: all), counted or all stored."""
    from openarena.analysis.leaderboard import build_leaderboard
    from openarena.storage.reading import read_battles

    table = read_battles(arena.state.db, modes=("anony",), conversations=False, counted_only=counted_only)
    if roles is not None:
        keep = table.frame["battle_id"].map(arena.roles).isin(roles).to_numpy()
        table = table.with_frame(table.frame.loc[keep].reset_index(drop=True))
    lb = build_leaderboard(table, ci="none", anchor="mean")
    return dict(zip(lb.table["model"], lb.table["rating"]))


def counted_by_role(arena: Arena) -> dict[str, tuple[int, int]]:
    """{role: (votes stored, votes counted)}."""
    from openarena.storage.reading import read_battles

    f = read_battles(arena.state.db, modes=("anony",), conversations=False, counted_only=False).frame
    role = f["battle_id"].map(arena.roles)
    return {r: (int((role == r).sum()), int(((role == r) & f["counted"]).sum())) for r in sorted(set(role.dropna()))}
