"""``openarena serve``: the web arena (FastAPI + uvicorn)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import typer

from openarena.cli.common import err_console, fail, user_errors


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    registry: Path = typer.Option(Path("examples/models.demo.yaml"), "--registry", "-r", help="Model registry YAML."),
    db: Optional[str] = typer.Option(None, "--db", help="Database URL (default: $OPENARENA_DATABASE_URL, else SQLite in --data-dir)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder of the SQLite database and the secret key (default: $OPENARENA_DATA_DIR or ./arena-data)."),
    demo: bool = typer.Option(False, "--demo", help="Also start the mock model server of examples/models.demo.yaml (no API key needed)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Uvicorn worker processes (for PostgreSQL; with SQLite one worker is fastest: there is one writer)."),
    policy: str = typer.Option("fastchat", "--policy", help="Pair sampling: fastchat, uniform or active."),
    outage: list[str] = typer.Option([], "--outage", help="Model not to sample in anonymous battles (repeatable)."),
    max_turns: int = typer.Option(10, "--max-turns", min=1, help="User turns per battle."),
    max_prompt_chars: int = typer.Option(12000, "--max-prompt-chars", min=1, help="Longest prompt accepted."),
    rate_limits: bool = typer.Option(True, "--rate-limits/--no-rate-limits", help="Per-IP and per-session rate limits."),
    leaderboard_interval: float = typer.Option(300.0, "--leaderboard-interval", min=1.0, help="Seconds between leaderboard recomputations."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="leaderboard.json of public votes (openarena leaderboard --out-dir) shown beside the arena's own."),
    moderation_url: Optional[str] = typer.Option(None, "--moderation-url", help="OpenAI-compatible base URL (…/v1) whose /moderations screens prompts."),
    moderation_key_env: Optional[str] = typer.Option(None, "--moderation-key-env", help="NAME of the variable holding the moderation key."),
    secure_cookies: Optional[bool] = typer.Option(None, "--secure-cookies/--no-secure-cookies", help="Force the Secure cookie flag (default: when the request is https)."),
    log_level: str = typer.Option("warning", "--log-level", help="Uvicorn log level."),
) -> None:
    """Start the web arena: anonymous battles, side-by-side, direct chat, leaderboard."""
    import uvicorn

    from openarena.serving.config import ENV_SETTINGS, ServeSettings

    mock = None
    with user_errors():
        if demo:
            from openarena.cli._demo import start_demo_models

            mock = start_demo_models()
            err_console.print(f"demo models served by the mock server at {mock.base_url}", highlight=False)
        if reference is not None and not reference.exists():
            raise fail(f"--reference {reference}: file not found (build it with openarena leaderboard ... --out-dir)")
        settings = ServeSettings(
            registry=str(registry), database_url=db, data_dir=str(data_dir) if data_dir else None, policy=policy,
            outage=list(outage), max_turns=max_turns, max_prompt_chars=max_prompt_chars,
            leaderboard_interval_s=leaderboard_interval, reference_leaderboard=str(reference) if reference else None,
            moderation_url=moderation_url, moderation_key_env=moderation_key_env, cookie_secure=secure_cookies,
        )
        if not rate_limits:
            settings.prompts_per_minute_session = settings.prompts_per_minute_ip = 0
            settings.votes_per_minute_session = settings.votes_per_minute_ip = 0
        settings.sampling_config()  # validates the policy
        from openarena.serving.app import build_state, create_app

        state = build_state(settings)  # loads the registry, opens and migrates the database
        names = state.registry.names(anonymous_only=True)
        if len(names) < 2:
            raise fail(f"{registry}: anonymous battles need at least two models with anonymous: true")
        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        url = f"http://{shown}:{port}"
        err_console.print(f"database: {state.db.describe()}; registry: {registry} ({len(state.registry)} models)", highlight=False)
        typer.echo(f"OpenArena is running at {url}  (Ctrl+C to stop)", err=False)
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING))
    try:
        if workers == 1:
            uvicorn.run(create_app(state=state), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=3)
        else:
            state.db.dispose()
            os.environ[ENV_SETTINGS] = settings.to_env()
            uvicorn.run("openarena.serving.app:create_app_from_env", factory=True, host=host, port=port, workers=workers, log_level=log_level, timeout_graceful_shutdown=3)
    finally:
        if mock is not None:
            mock.stop()
