"""The tables of the arena (SQLAlchemy 2 declarative models).

``battles``: one row per battle (anonymous or named) and per direct chat. The server owns it:
the browser only ever holds its opaque ``id``, bound to the voter's session by
``session_hash``. Columns: id (32 hex characters, 128 random bits), mode ('anony' | 'named' |
'direct'), model_a, model_b (None for a direct chat), session_hash (the voter's hashed id,
published as ``judge``), status ('open' | 'voted' | 'failed'), sampling_policy and
sampling_prob (probability that the sampler drew this unordered pair, in (0, 1]; None when the
voter chose the models), created_at / updated_at (Unix seconds), turns (completed user turns),
conversation_a / conversation_b (lists of {"role", "content"}), version (incremented by every
update: the optimistic lock of a vote), lease_until (Unix seconds: a turn is streaming until
then), error (why the battle failed; internal, never shown to the voter), meta (per-side
latency, tokens, finish reasons), ip_hash (HMAC of the client's IP address under the server's
secret, or None: the second voter key of the vote-integrity checks, never published; added by
migration 0002).

``votes``: at most one per battle (unique ``battle_id``: the database itself refuses a second
vote). Columns: id, battle_id, winner ('model_a' | 'model_b' | 'tie' | 'tie (bothbad)'),
tstamp (Unix seconds), judge (= the battle's session_hash), counted (False when the battle
leaked a model identity or a vote-integrity check withheld it), reason (why not counted; the
integrity reasons start with a code: ``daily_cap``, ``abandon_ratio``, ``selective_voting``, see
:mod:`openarena.serving.vote_integrity`), ip_hash (the battle's, copied so that a voter key's votes
in a window are one index range; migration 0002).

FastChat keeps the same facts in JSON log files (fastchat/serve/gradio_block_arena_anony.py
``vote_last_response``); it does not store the sampling probability.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["ARENAS", "ArenaSetting", "Base", "Battle", "Image", "Vote", "RedTeamRound", "RedTeamHandle", "BATTLE_MODES", "BATTLE_STATUSES", "ROUND_STATUSES"]

BATTLE_MODES = ("anony", "named", "direct")
from openarena.data.schema import ARENAS  # noqa: E402 - the arenas a battle can belong to; each has its own leaderboard
BATTLE_STATUSES = ("open", "voted", "failed")
ROUND_STATUSES = ("open", "won", "lost", "forfeit", "failed")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the arena's tables (SQLAlchemy 2)."""
    metadata = MetaData(naming_convention=NAMING)


class Battle(Base):
    """One battle: both models, mode, sampling probability and policy, both conversations (JSON), state and timestamps; see the module docstring for the columns."""
    __tablename__ = "battles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    model_a: Mapped[str] = mapped_column(String(200))
    model_b: Mapped[str | None] = mapped_column(String(200), nullable=True)
    session_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    sampling_policy: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sampling_prob: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    conversation_a: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    conversation_b: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    arena: Mapped[str] = mapped_column(String(16), default="text", server_default="text")

    __table_args__ = (
        Index("ix_battles_arena", "arena"),
        Index("ix_battles_session_hash", "session_hash"),
        Index("ix_battles_status", "status"),
        Index("ix_battles_session_created", "session_hash", "created_at"),
        Index("ix_battles_ip_created", "ip_hash", "created_at"),
    )


class Vote(Base):
    """The vote on a battle; ``battle_id`` is unique, so the database itself refuses a second vote."""
    __tablename__ = "votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    battle_id: Mapped[str] = mapped_column(String(32), ForeignKey("battles.id", ondelete="CASCADE"), unique=True)
    winner: Mapped[str] = mapped_column(String(16))
    tstamp: Mapped[float] = mapped_column(Float)
    judge: Mapped[str] = mapped_column(String(64))
    counted: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_votes_tstamp", "tstamp"), Index("ix_votes_judge_tstamp", "judge", "tstamp"), Index("ix_votes_ip_tstamp", "ip_hash", "tstamp"))


class RedTeamRound(Base):
    """One round of the red-team game: a player (``player_hash`` = the session's hashed id,
    ``handle`` = the pseudonym shown on the leaderboard) against ``model`` on ``target``
    (``target_kind`` 'phrase' | 'secret'; ``secret`` is the one planted in the system prompt,
    never sent to the player before the round ends). ``status``: 'open', 'won' / 'lost' (for
    the player), 'forfeit' (the player gave up: a loss), 'failed' (the model's endpoint failed:
    not rated). ``conversation``: the player's and the model's messages (no system prompt);
    ``turns``: completed player turns; ``lease_until``: a turn is running until then (one at a
    time); ``version``: incremented by every update."""
    __tablename__ = "redteam_rounds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    player_hash: Mapped[str] = mapped_column(String(64))
    handle: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(200))
    target_kind: Mapped[str] = mapped_column(String(16))
    secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    turns: Mapped[int] = mapped_column(Integer, default=0)
    conversation: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_redteam_rounds_player_hash", "player_hash"),
        Index("ix_redteam_rounds_handle", "handle"),
        Index("ix_redteam_rounds_status", "status"),
    )


class RedTeamHandle(Base):
    """A red-team player's pseudonym, owned by the session (``player_hash``) that claimed it
    first: the primary key makes two sessions racing for a new handle end with one owner."""
    __tablename__ = "redteam_handles"

    handle: Mapped[str] = mapped_column(String(40), primary_key=True)
    player_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)



class ArenaSetting(Base):
    """A value every server process must agree on, written once (``name`` is the primary key,
    so two processes racing to create it keep the first): today the cookie secret
    (:func:`openarena.storage.settings.shared_secret`)."""
    __tablename__ = "arena_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[float] = mapped_column(Float)


class Image(Base):
    """An image of the vision arena, stored content-addressed (:mod:`openarena.storage.images`):
    its SHA-256 (the file's name), mime type, size in pixels and bytes, first upload time."""
    __tablename__ = "images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    mime: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    n_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
