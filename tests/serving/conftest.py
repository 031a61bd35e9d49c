"""Serving fixtures: mock model endpoints on loopback, and the arena served by a real uvicorn
server in a background thread (the same sockets, headers and SSE bytes as production)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from openarena.demo.mock_server import Behaviour, MockServer
from openarena.providers.registry import ModelRegistry
from openarena.serving.app import AppState, build_state, create_app, uvicorn_options
from openarena.serving.config import ServeSettings

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "out" / "screenshots"

#: Names that must never reach the browser before a vote: registry names, endpoint model ids,
#: organisations.
MODELS = {
    "zephyrine-alpha-7b": ("mockid-x1", "Zeta Labs"),
    "orcanova-beta-13b": ("mockid-y2", "Omicron Works"),
}


@dataclass
class LiveArena:
    url: str
    state: AppState
    mock: MockServer
    server: object
    thread: threading.Thread

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.state.db.dispose()


def start_arena(tmp_path: Path, behaviours: dict[str, Behaviour], *, named: dict[str, str] | None = None, extra: dict[str, Behaviour] | None = None,
                anon_extra: dict[str, Behaviour] | None = None, vision: tuple[str, ...] = (), **settings) -> LiveArena:
    """Start a MockServer with ``behaviours`` for the two anonymous models of :data:`MODELS`
    (keyed by registry name) and the arena on a free port. ``extra``: more models (name ->
    behaviour), not anonymous; ``anon_extra``: more anonymous models; ``vision``: the names
    of the models marked ``vision: true``."""
    import uvicorn

    ids = {MODELS[n][0]: b for n, b in behaviours.items()}
    for name, b in {**(extra or {}), **(anon_extra or {})}.items():
        ids[f"id-{name}"] = b
    mock = MockServer(ids).start()
    cfgs = [mock.model_config(MODELS[n][0], name=n, organization=MODELS[n][1], license="Apache 2.0", timeout_s=5, vision=n in vision) for n in behaviours]
    cfgs += [mock.model_config(f"id-{n}", name=n, anonymous=False, timeout_s=5, vision=n in vision) for n in (extra or {})]
    cfgs += [mock.model_config(f"id-{n}", name=n, timeout_s=5, vision=n in vision) for n in (anon_extra or {})]
    s = ServeSettings(database_url=f"sqlite:///{tmp_path / 'arena.db'}", leaderboard_interval_s=3600, leaderboard_min_refresh_s=0, **settings)
    state = build_state(s, registry=ModelRegistry(cfgs))
    app = create_app(state=state, start_background=False)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, **uvicorn_options(s)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("arena did not start")
        time.sleep(0.01)
    return LiveArena(f"http://127.0.0.1:{port}", state, mock, server, thread)


GOOD = {
    "zephyrine-alpha-7b": Behaviour.fixed("Paris is the capital of **France**.\n\n- one\n- two", chunk_delay_s=0.005),
    "orcanova-beta-13b": Behaviour.echo("Echo: ", chunk_delay_s=0.005),
}


@pytest.fixture
def arena(tmp_path):
    live = start_arena(tmp_path, GOOD)
    try:
        yield live
    finally:
        live.stop()
        live.mock.stop()


@pytest.fixture
def arena_factory(tmp_path):
    started: list[LiveArena] = []

    def make(behaviours=None, **kw) -> LiveArena:
        live = start_arena(tmp_path / f"a{len(started)}", behaviours or GOOD, **kw)
        started.append(live)
        return live

    (tmp_path / "a0").mkdir(exist_ok=True)
    for i in range(1, 6):
        (tmp_path / f"a{i}").mkdir(exist_ok=True)
    try:
        yield make
    finally:
        for live in started:
            live.stop()
            live.mock.stop()
