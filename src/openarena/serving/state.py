"""The web arena's per-process state, :class:`AppState`: what every route needs, built once by
:func:`openarena.serving.app.build_state` and handed to routes by the dependency
:data:`openarena.serving.routes.deps.State`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.templating import Jinja2Templates

from openarena.providers.registry import ModelRegistry
from openarena.serving.config import ServeSettings
from openarena.serving.leaderboard_cache import LeaderboardCache
from openarena.serving.safety import Moderator, RateLimiter
from openarena.serving.sampling import PairSampler, SharedVoteCounts
from openarena.serving.sessions import SessionManager
from openarena.serving.shared_state import LocalState, RedisState
from openarena.storage.votes import VoteWriter
from openarena.storage.db import Database

__all__ = ["AppState"]


@dataclass
class AppState:
    """What every route needs, built once per process (``app.state.arena``)."""

    settings: ServeSettings
    registry: ModelRegistry
    db: Database
    secret: bytes
    sessions: SessionManager
    limiter: RateLimiter
    sampler: PairSampler
    leaderboard: LeaderboardCache
    moderator: Moderator | None
    leak_words: list[str]
    templates: Jinja2Templates
    vote_writer: VoteWriter
    shared: LocalState | RedisState
    vote_counts: SharedVoteCounts
    redteam_targets: list = field(default_factory=list)
    redteam_board: dict = field(default_factory=dict)
    images: Any = None  # the vision arena's ImageIntake (serving/images.py)
