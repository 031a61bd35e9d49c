"""Settings of the web arena (:class:`ServeSettings`) and the secret key (:func:`load_secret`).

Every field has a default; ``openarena serve`` fills them from its options. The settings travel
to uvicorn worker processes as JSON in the environment variable ``OPENARENA_SERVE_SETTINGS``
(:meth:`ServeSettings.to_env` / :meth:`ServeSettings.from_env`).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from openarena.demo import DEMO_REGISTRY
from openarena.errors import OpenArenaError
from openarena.serving.sampling import SamplingConfig
from openarena.serving.vote_integrity import IntegrityPolicy

__all__ = ["SecretError", "ServeSettings", "configured_secret", "load_secret"]

ENV_SETTINGS = "OPENARENA_SERVE_SETTINGS"
ENV_SECRET = "OPENARENA_SECRET"
ENV_SECRET_OLD = "OPENARENA_SECRET_KEY"  # the name before 0.2, still read
MIN_SECRET_CHARS = 32


class SecretError(OpenArenaError):
    """The configured secret cannot be used (file missing or unreadable, too short)."""


@dataclass
class ServeSettings:
    """What the arena server needs.

    Attributes:
        registry: path of the model registry YAML.
        database_url / data_dir: where the votes go (see :func:`openarena.storage.database_url`).
        secret_key / secret_file: the secret signing cookies and CSRF tokens (at least 32
            characters), or the file holding it; None = see :func:`load_secret`.
        redis_url: Redis shared by the workers (rate limits, counters, sampler state); None =
            in-process state, valid with one worker only. redis_prefix: prefix of its keys.
        workers: worker processes (more than one needs ``redis_url``).
        forwarded_allow_ips: proxies whose X-Forwarded-For / X-Forwarded-Proto are trusted (IP
            addresses or CIDR networks, ``*`` = any); empty (default) = trust no one: the
            client address is the TCP peer.
        max_prompt_chars: longest accepted prompt (FastChat INPUT_CHAR_LEN_LIMIT is 12,000).
        max_turns: user turns per battle (then: new round).
        prompts_per_minute_session / _ip (turns and regenerations), battles_per_minute_session
            / _ip (new battles, every mode), votes_per_minute_session / _ip: rate limits (0 = off).
        policy, outage, boost, battle_targets, anon_only, explore: pair sampling
            (:class:`~openarena.serving.sampling.SamplingConfig`).
        leaderboard_interval_s: seconds between two leaderboard recomputations.
        leaderboard_min_refresh_s: an on-demand refresh is ignored within this many seconds of
            the last one.
        leaderboard_process: recompute in a child process at a lower priority (default), so
            the seconds of GIL-holding work do not stall the requests; False: in a thread of
            the server (see :mod:`openarena.serving.leaderboard_cache`).
        trust_drift_window: the Trust page's drift windows ('7d', '12h', '2w').
        provisional_votes: the Trust page marks a model's score provisional until it has this
            many votes since it was first seen (2,000, as LMArena does).
        reference_leaderboard: optional leaderboard JSON (``openarena leaderboard --out-dir``)
            of public votes, shown beside the arena's own.
        moderation_url / moderation_key_env: optional OpenAI-compatible moderation endpoint.
        cookie_secure: None = Secure cookies iff the request came over https.
        lease_s: the lease of a streaming turn on its battle; the turn renews it every
            lease_s / 3 s while it runs, so only a turn whose process died loses it (after lease_s).
        max_answer_tokens: ``max_tokens`` sent with every answer request (a model's registry
            ``max_tokens`` is capped by it).
        max_answer_chars: the server cuts an answer at this many characters (with a note).
        max_turn_s: the server cuts a turn after this many seconds (with a note).
        max_body_bytes: largest request body (413 above; 0 = enough for the longest prompt
            written entirely as JSON escapes: 12 bytes per character + 16 KiB).
        max_header_bytes: largest request head, URL and headers together (431 above).
        db_lock_timeout_s: longest wait for the database's write lock (SQLite busy timeout,
            PostgreSQL lock_timeout) before a write fails with 503 "not saved".
        retry_attempts: attempts per model call before its first token.
        redteam_targets: the red-team game's targets file (YAML; None = the bundled demo
            targets, see :mod:`openarena.serving.targets`).
        redteam_models: the game's contestants (empty = every anonymous model).
        redteam_max_turns: player turns per red-team round.
        redteam_answer_chars: longest model answer kept per red-team turn (characters).
        votes_per_day_session / votes_per_day_ip, abandon_ratio, abandon_min_battles,
            selective_alpha, selective_min_votes, integrity_window_s: the vote-integrity checks
            (votes stored but not counted; 0 turns a check off), see
            :class:`~openarena.serving.vote_integrity.IntegrityPolicy` for their meaning and defaults.
        code_execution / runs_per_minute_session / _ip: the code arena's run API and its rate limits.
        image_dir: the vision arena's image folder (None = ``images/`` beside the SQLite
            database, or in the data folder; :func:`openarena.storage.images.default_image_dir`).
        max_image_bytes, max_image_pixels (width × height, checked before decoding),
            max_image_side (larger images are shrunk), max_images_per_prompt: image limits
            (:class:`~openarena.serving.images.ImageLimits`); images count as prompts for the
            rate limits.
        max_image_store_bytes: cap on the total size of the stored images (0 = none; 20 GiB by
            default), min_free_disk_bytes: images are refused while the image folder's disk has
            less free space than this (1 GiB by default), so uploads never fill the disk the
            database lives on.
        image_block_list: a file of SHA-256 digests of images to refuse (one per line), the
            moderation hook's hash block-list (:func:`openarena.serving.images.load_block_list`).
    """

    registry: str = str(DEMO_REGISTRY)
    database_url: str | None = None
    data_dir: str | None = None
    secret_key: str | None = None
    secret_file: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "openarena:"
    workers: int = 1
    forwarded_allow_ips: list[str] = field(default_factory=list)
    max_prompt_chars: int = 12_000
    max_turns: int = 10
    prompts_per_minute_session: float = 20
    prompts_per_minute_ip: float = 120
    battles_per_minute_session: float = 20
    battles_per_minute_ip: float = 120
    votes_per_minute_session: float = 30
    votes_per_minute_ip: float = 600
    policy: str = "fastchat"
    outage: list[str] = field(default_factory=list)
    boost: float = 5.0
    battle_targets: dict[str, list[str]] = field(default_factory=dict)
    anon_only: list[str] = field(default_factory=list)
    explore: float = 0.2
    leaderboard_interval_s: float = 300.0
    leaderboard_min_refresh_s: float = 10.0
    leaderboard_process: bool = True
    reference_leaderboard: str | None = None
    trust_drift_window: str = "7d"
    provisional_votes: int = 2000
    moderation_url: str | None = None
    moderation_key_env: str | None = None
    cookie_secure: bool | None = None
    lease_s: float = 300.0
    retry_attempts: int = 2
    redteam_targets: str | None = None
    redteam_models: list[str] = field(default_factory=list)
    redteam_max_turns: int = 5
    redteam_answer_chars: int = 4000
    votes_per_day_session: int = IntegrityPolicy.max_votes_session
    votes_per_day_ip: int = IntegrityPolicy.max_votes_ip
    abandon_ratio: float = IntegrityPolicy.abandon_ratio
    abandon_min_battles: int = IntegrityPolicy.abandon_min_battles
    selective_alpha: float = IntegrityPolicy.selective_alpha
    selective_min_votes: int = IntegrityPolicy.selective_min_votes
    integrity_window_s: float = IntegrityPolicy.window_s

    def integrity_policy(self) -> IntegrityPolicy:
        """The vote-integrity thresholds. Raises: ValueError for a negative limit."""
        return IntegrityPolicy(
            window_s=self.integrity_window_s, max_votes_session=self.votes_per_day_session, max_votes_ip=self.votes_per_day_ip,
            abandon_ratio=self.abandon_ratio, abandon_min_battles=self.abandon_min_battles,
            selective_alpha=self.selective_alpha, selective_min_votes=self.selective_min_votes,
        )
    max_answer_tokens: int = 4096
    max_answer_chars: int = 20_000
    max_turn_s: float = 120.0
    max_body_bytes: int = 0
    max_header_bytes: int = 16_384
    db_lock_timeout_s: float = 3.0
    code_execution: bool = True  # run Python blocks in bubblewrap (serving/sandbox.py); off when bwrap cannot run
    runs_per_minute_session: float = 10
    runs_per_minute_ip: float = 60
    image_dir: str | None = None
    max_image_bytes: int = 5 * 1024 * 1024
    max_image_pixels: int = 25_000_000
    max_image_side: int = 2048
    max_images_per_prompt: int = 1
    max_image_store_bytes: int = 20 * 1024**3
    min_free_disk_bytes: int = 1024**3
    image_block_list: str | None = None

    def image_limits(self):
        """The image limits (:class:`~openarena.serving.images.ImageLimits`). Raises: ValueError for a limit < 1."""
        from openarena.serving.images import ImageLimits

        return ImageLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels, max_side=self.max_image_side,
                           max_images=self.max_images_per_prompt)

    def sampling_config(self) -> SamplingConfig:
        return SamplingConfig(
            policy=self.policy, outage=set(self.outage), boost=self.boost,
            battle_targets={k: list(v) for k, v in self.battle_targets.items()},
            anon_only=set(self.anon_only), explore=self.explore,
        )

    def body_limit(self) -> int:
        """Largest accepted request body in bytes (see ``max_body_bytes``): by default the
        longest prompt written as JSON escapes plus the images of one prompt as base64 data
        URLs (4 characters per 3 bytes)."""
        images = self.max_images_per_prompt * (4 * ((self.max_image_bytes + 2) // 3) + 256)
        return self.max_body_bytes or 12 * self.max_prompt_chars + 16_384 + images

    def turn_limits(self):
        """The bounds of one battle turn (:class:`~openarena.serving.engine.TurnLimits`)."""
        from openarena.serving.engine import TurnLimits

        return TurnLimits(max_tokens=self.max_answer_tokens or None, max_answer_chars=self.max_answer_chars,
                          max_turn_s=self.max_turn_s, lease_s=self.lease_s)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "ServeSettings":
        raw = os.environ.get(ENV_SETTINGS)
        return cls(**json.loads(raw)) if raw else cls()


def configured_secret(settings: ServeSettings) -> bytes | None:
    """The secret the operator set (``settings.secret_key``, ``OPENARENA_SECRET`` or its old
    name ``OPENARENA_SECRET_KEY``, ``settings.secret_file``), or None when none is set.
    Raises: SecretError for a secret shorter than 32 characters or an unreadable file."""
    text = settings.secret_key or os.environ.get(ENV_SECRET) or os.environ.get(ENV_SECRET_OLD)
    where = "the secret (OPENARENA_SECRET)"
    if not text and settings.secret_file:
        path = Path(settings.secret_file).expanduser()
        where = f"--secret-file {path}"
        try:
            text = path.read_text().strip()
            mode = path.stat().st_mode
        except OSError as e:
            raise SecretError(f"{where}: cannot read it ({e.strerror or type(e).__name__})") from None
        if mode & 0o077:
            logging.getLogger("openarena.serving").warning(
                "%s can be read by other users (mode %o): whoever reads it can forge sessions; chmod 600 it", where, mode & 0o777)
    if not text:
        return None
    text = text.strip()
    if len(text) < MIN_SECRET_CHARS:
        raise SecretError(f"{where} is {len(text)} characters long; use at least {MIN_SECRET_CHARS} random characters "
                          "(e.g. the output of: python -c 'import secrets; print(secrets.token_hex(32))')")
    return text.encode()


def load_secret(settings: ServeSettings, data_dir: Path | None, db=None) -> bytes:
    """The secret signing session cookies and CSRF tokens, the same in every worker and across
    restarts. First match wins:

    1. ``settings.secret_key``, else the environment variable ``OPENARENA_SECRET`` (or its old
       name ``OPENARENA_SECRET_KEY``);
    2. ``settings.secret_file`` (``--secret-file``): the file's text, stripped;
    3. ``<data_dir>/secret.key`` if it exists (SQLite deployments of earlier versions);
    4. the database (``db``, a :class:`~openarena.storage.db.Database`): a key generated once
       and stored in ``arena_settings`` (:func:`openarena.storage.settings.shared_secret`);
    5. without a database, a random per-process key (sessions then end with the process).

    Raises: SecretError for a secret shorter than 32 characters or an unreadable file;
    StorageError when the database cannot be read.
    """
    configured = configured_secret(settings)
    if configured is not None:
        return configured
    if data_dir is not None:
        legacy = data_dir / "secret.key"
        try:
            if legacy.is_file():
                return legacy.read_text().strip().encode()
        except OSError:
            pass
    if db is not None:
        from openarena.storage.settings import shared_secret

        return shared_secret(db).encode()
    return secrets.token_hex(32).encode()
