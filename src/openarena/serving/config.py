"""Settings of the web arena (:class:`ServeSettings`) and the secret key.

Every field has a default; ``openarena serve`` fills them from its options. The settings travel
to uvicorn worker processes as JSON in the environment variable ``OPENARENA_SERVE_SETTINGS``
(:meth:`ServeSettings.to_env` / :meth:`ServeSettings.from_env`).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from openarena.providers.registry import DEMO_REGISTRY
from openarena.serving.sampling import SamplingConfig

__all__ = ["ServeSettings", "load_secret"]

ENV_SETTINGS = "OPENARENA_SERVE_SETTINGS"
ENV_SECRET = "OPENARENA_SECRET_KEY"


@dataclass
class ServeSettings:
    """What the arena server needs.

    Attributes:
        registry: path of the model registry YAML.
        database_url / data_dir: where the votes go (see :func:`openarena.storage.database_url`).
        secret_key: hex string signing cookies and CSRF tokens; None = ``OPENARENA_SECRET_KEY``
            or a key generated once and kept in ``<data_dir>/secret.key``.
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
        reference_leaderboard: optional leaderboard JSON (``openarena leaderboard --out-dir``)
            of public votes, shown beside the arena's own.
        moderation_url / moderation_key_env: optional OpenAI-compatible moderation endpoint.
        cookie_secure: None = Secure cookies iff the request came over https.
        lease_s: longest time one turn may stream before another request may take over.
        retry_attempts: attempts per model call before its first token.
        code_execution / runs_per_minute_session / _ip: the code arena's run API and its rate limits.
    """

    registry: str = str(DEMO_REGISTRY)
    database_url: str | None = None
    data_dir: str | None = None
    secret_key: str | None = None
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
    moderation_url: str | None = None
    moderation_key_env: str | None = None
    cookie_secure: bool | None = None
    lease_s: float = 300.0
    retry_attempts: int = 2
    code_execution: bool = True  # run Python blocks in bubblewrap (serving/sandbox.py); off when bwrap cannot run
    runs_per_minute_session: float = 10
    runs_per_minute_ip: float = 60

    def sampling_config(self) -> SamplingConfig:
        return SamplingConfig(
            policy=self.policy, outage=set(self.outage), boost=self.boost,
            battle_targets={k: list(v) for k, v in self.battle_targets.items()},
            anon_only=set(self.anon_only), explore=self.explore,
        )

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "ServeSettings":
        raw = os.environ.get(ENV_SETTINGS)
        return cls(**json.loads(raw)) if raw else cls()


def load_secret(settings: ServeSettings, data_dir: Path | None) -> bytes:
    """The secret key: settings, else ``OPENARENA_SECRET_KEY``, else ``<data_dir>/secret.key``
    (created with 32 random bytes, mode 0600, on first use), else a per-process random key."""
    text = settings.secret_key or os.environ.get(ENV_SECRET)
    if text:
        return text.encode()
    if data_dir is not None:
        path = data_dir / "secret.key"
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32))
            return path.read_text().strip().encode()
        except FileExistsError:
            return path.read_text().strip().encode()
        except OSError:
            pass
    return secrets.token_hex(32).encode()
