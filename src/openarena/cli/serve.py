"""``openarena serve``: the web arena (FastAPI + uvicorn)."""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Optional

import typer

from openarena.cli.common import err_console, fail, user_errors

#: uvicorn's log levels (``uvicorn.config.LOG_LEVELS``).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
#: The registry of ``--demo`` when no --registry is given: models served by the mock server.
from openarena.demo import DEMO_REGISTRY  # noqa: E402  shipped inside the package, found from any working folder


def choose_port(host: str) -> int:
    """A port of ``host`` that is free now (what port 0 means), chosen before the server starts
    so that the address printed is the one it listens on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_port_free(host: str, port: int) -> None:
    """Raise the one-line exit (status 2) unless ``host:port`` can be bound now, the way uvicorn
    binds it (SO_REUSEADDR, IPv6 when the host holds a colon). Port 0 (any free port) always
    can."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        raise fail(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise fail(f"port {port} on {host} is already in use (another server is running there?): stop it or choose another --port") from None
        if e.errno == errno.EACCES:
            raise fail(f"cannot listen on {host}:{port}: permission denied (ports below 1024 need privileges): choose another --port") from None
        raise fail(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    finally:
        sock.close()


def display_url(host: str, port: int) -> str:
    """The address to print for ``host:port``: ``localhost`` for the loopback, an IPv6 host in
    brackets (``http://[::]:8000``)."""
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def announce_when_up(host: str, port: int, line: str, timeout_s: float = 300.0, echo=typer.echo) -> threading.Thread:
    """Print ``line`` once the server answers HTTP on ``host:port`` (``GET /healthz``, any
    status: it accepts requests), not before: with several workers the socket is bound at once
    but the workers take seconds to start, and a visitor sent there by the line would wait.
    A daemon thread polling every 0.1 s for at most ``timeout_s`` (nothing is printed if the
    server never answers: its own errors say why); returns the thread. A wildcard host is
    polled on the loopback address."""
    import http.client

    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)

    def poll() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection(target, port, timeout=5)
            try:
                conn.request("GET", "/healthz")
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
                continue
            finally:
                conn.close()
            echo(line)
            return

    thread = threading.Thread(target=poll, name="announce", daemon=True)
    thread.start()
    return thread


LIMIT_KINDS = {
    "prompt_session": "prompts_per_minute_session", "prompt_ip": "prompts_per_minute_ip",
    "battle_session": "battles_per_minute_session", "battle_ip": "battles_per_minute_ip",
    "vote_session": "votes_per_minute_session", "vote_ip": "votes_per_minute_ip",
}


def _set_limit(settings, item: str) -> None:
    """Apply one ``--limit KIND=N``. Raises: the one-line exit for a bad item."""
    kind, _, value = item.partition("=")
    field = LIMIT_KINDS.get(kind.strip())
    try:
        per_minute = float(value)
    except ValueError:
        per_minute = -1.0
    if field is None or per_minute < 0 or per_minute != per_minute:
        raise fail(f"--limit {item!r}: expected KIND=N with KIND one of {', '.join(LIMIT_KINDS)} and N requests per minute (0 = off)")
    setattr(settings, field, per_minute)


def _proxies(text: str) -> list[str]:
    """``--forwarded-allow-ips`` as a list, each an IP address, a network or '*'. Raises: the
    one-line exit for anything else."""
    import ipaddress

    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if item != "*":
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise fail(f"--forwarded-allow-ips {item!r}: not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/8)") from None
        out.append(item)
    return out


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    registry: Optional[Path] = typer.Option(None, "--registry", "-r", help="Model registry YAML (required, except with --demo: then the packaged demo registry)."),
    db: Optional[str] = typer.Option(None, "--db", help="Database URL (default: $OPENARENA_DATABASE_URL, else SQLite in --data-dir)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder of the SQLite database (default: $OPENARENA_DATA_DIR or ./arena-data)."),
    demo: bool = typer.Option(False, "--demo", help="Also start the mock model server of the demo models (no API key needed)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Uvicorn worker processes (for PostgreSQL; with SQLite one worker is fastest: there is one writer)."),
    policy: str = typer.Option("fastchat", "--policy", help="Pair sampling: fastchat, uniform, active (the Chatbot Arena paper's rule) or targeted (aims at the leaderboard's widest intervals; see openarena sampling simulate)."),
    outage: list[str] = typer.Option([], "--outage", help="Model not to sample in anonymous battles (repeatable)."),
    max_turns: int = typer.Option(10, "--max-turns", min=1, help="User turns per battle."),
    max_prompt_chars: int = typer.Option(12000, "--max-prompt-chars", min=1, help="Longest prompt accepted."),
    rate_limits: bool = typer.Option(True, "--rate-limits/--no-rate-limits", help="Per-IP and per-session rate limits."),
    votes_per_day: int = typer.Option(100, "--votes-per-day", min=0, help="Votes per session per 24 h that count (0 = no cap); later ones are stored, not counted."),
    votes_per_day_ip: int = typer.Option(300, "--votes-per-day-ip", min=0, help="Votes per client network (IPv4 address, IPv6 /64) per 24 h that count (0 = no cap)."),
    vote_integrity: bool = typer.Option(True, "--vote-integrity/--no-vote-integrity", help="Abandoned-battle ratio and selective-voting checks (votes they flag are stored, not counted)."),
    leaderboard_interval: float = typer.Option(300.0, "--leaderboard-interval", min=1.0, help="Seconds between leaderboard recomputations."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="leaderboard.json of public votes (openarena leaderboard --out-dir) shown beside the arena's own."),
    moderation_url: Optional[str] = typer.Option(None, "--moderation-url", help="OpenAI-compatible base URL (…/v1) whose /moderations screens prompts."),
    moderation_key_env: Optional[str] = typer.Option(None, "--moderation-key-env", help="NAME of the variable holding the moderation key."),
    secure_cookies: Optional[bool] = typer.Option(None, "--secure-cookies/--no-secure-cookies", help="Force the Secure cookie flag (default: when the request is https)."),
    log_level: str = typer.Option("warning", "--log-level", help="Uvicorn log level: " + ", ".join(LOG_LEVELS) + "."),
    redis: Optional[str] = typer.Option(None, "--redis", help="Redis URL shared by the workers: rate limits, counters, sampler state (default: $OPENARENA_REDIS_URL; required with --workers > 1)."),
    secret_file: Optional[Path] = typer.Option(None, "--secret-file", help="File holding the secret that signs session cookies (default: $OPENARENA_SECRET, else one generated once and kept in the database)."),
    forwarded_allow_ips: str = typer.Option("", "--forwarded-allow-ips", help="Comma-separated IPs or networks of the reverse proxies whose X-Forwarded-For/-Proto are trusted (default: none; '*' trusts anyone)."),
    limit: list[str] = typer.Option([], "--limit", help="A rate limit per minute, KIND=N (repeatable): prompt_session, prompt_ip, battle_session, battle_ip, vote_session, vote_ip; 0 = off."),
    image_dir: Optional[Path] = typer.Option(None, "--image-dir", help="Folder of the vision arena's images, stored by SHA-256 after re-encoding (default: images/ beside the SQLite database, or in --data-dir)."),
    image_block_list: Optional[Path] = typer.Option(None, "--image-block-list", help="File of SHA-256 digests of images to refuse, one per line (the image moderation hook)."),
    max_image_mb: float = typer.Option(5.0, "--max-image-mb", min=0.01, max=50.0, help="Largest image accepted with a prompt, in MB."),
    max_image_pixels: int = typer.Option(25_000_000, "--max-image-pixels", min=1, max=200_000_000, help="Largest image accepted, in pixels (width × height, checked before decoding)."),
    max_image_store_gb: float = typer.Option(20.0, "--max-image-store-gb", min=0.0, help="Cap on the total size of the stored images, in GB (0 = no cap); images are also refused while the disk has less than 1 GB free."),
) -> None:
    """Start the web arena: anonymous battles, side-by-side, direct chat, leaderboard.

    Everything the user gave is checked before anything starts (log level, registry, --outage
    names, --reference, sampling policy, the port, the database), so bad input is one line and
    exit status 2; only then the demo mock server (--demo) and the arena start."""
    import uvicorn

    from openarena.serving.config import ENV_SETTINGS, ServeSettings

    mock = None
    with user_errors():
        if log_level.lower() not in LOG_LEVELS:
            raise fail(f"--log-level {log_level!r}: unknown level (expected one of: {', '.join(LOG_LEVELS)})")
        log_level = log_level.lower()
        if registry is None:
            if not demo:
                raise fail("no model registry: pass --registry FILE with your models (see examples/models.yaml), "
                           f"or --demo to try the arena with the demo models of {DEMO_REGISTRY} on a local mock server")
            registry = DEMO_REGISTRY
        if reference is not None:
            if not reference.exists():
                raise fail(f"--reference {reference}: file not found (build it with openarena leaderboard ... --out-dir)")
            from openarena.serving.leaderboard_cache import load_reference

            load_reference(reference)  # DataError: not a leaderboard JSON
        settings = ServeSettings(
            registry=str(registry), database_url=db, data_dir=str(data_dir) if data_dir else None, policy=policy,
            outage=list(outage), max_turns=max_turns, max_prompt_chars=max_prompt_chars,
            leaderboard_interval_s=leaderboard_interval, reference_leaderboard=str(reference) if reference else None,
            moderation_url=moderation_url, moderation_key_env=moderation_key_env, cookie_secure=secure_cookies,
            votes_per_day_session=votes_per_day, votes_per_day_ip=votes_per_day_ip,
            image_dir=str(image_dir) if image_dir else None, image_block_list=str(image_block_list) if image_block_list else None,
            max_image_bytes=int(max_image_mb * 1024 * 1024), max_image_pixels=max_image_pixels,
            max_image_store_bytes=int(max_image_store_gb * 1024**3),
        )
        if image_block_list is not None:
            from openarena.serving.images import load_block_list

            load_block_list(image_block_list)  # DataError: missing file, a line that is not a SHA-256
        if not vote_integrity:
            settings.abandon_ratio = settings.selective_alpha = 0
        if not rate_limits:
            settings.prompts_per_minute_session = settings.prompts_per_minute_ip = 0
            settings.battles_per_minute_session = settings.battles_per_minute_ip = 0
            settings.votes_per_minute_session = settings.votes_per_minute_ip = 0
        for item in limit:
            _set_limit(settings, item)
        from openarena.serving.shared_state import DEFAULT_PREFIX, ENV_REDIS_PREFIX, ENV_REDIS_URL, check_redis

        settings.workers = workers
        settings.redis_url = redis or os.environ.get(ENV_REDIS_URL, "").strip() or None
        settings.redis_prefix = os.environ.get(ENV_REDIS_PREFIX, "").strip() or DEFAULT_PREFIX
        settings.secret_file = str(secret_file) if secret_file else None
        settings.forwarded_allow_ips = _proxies(forwarded_allow_ips)
        if workers > 1 and not settings.redis_url:
            raise fail(f"--workers {workers} needs Redis for the rate limits and counters the workers share (else each worker "
                       "allows the full limit): pass --redis redis://HOST:6379/0 or set OPENARENA_REDIS_URL, or run one worker")
        settings.sampling_config()  # validates the policy
        from openarena.providers.registry import load_registry

        # loaded again by build_state, after --demo has set the mock server's URL
        models = load_registry(registry)
        unknown = [name for name in outage if name not in models]
        if unknown:
            raise fail(f"--outage {unknown[0]!r}: no such model in {registry} (its models: {', '.join(models.names())})")
        if len(models.names(anonymous_only=True)) < 2:
            raise fail(f"{registry}: anonymous battles need at least two models with anonymous: true")
        from openarena.serving.config import configured_secret

        configured_secret(settings)  # SecretError: too short, unreadable file
        check_port_free(host, port)
        if port == 0:  # the printed address must be the real one
            port = choose_port(host)
        if settings.redis_url:
            check_redis(settings.redis_url)  # SharedStateError: one line, exit 2
        from openarena.serving.app import build_state, create_app
        from openarena.storage.db import Database

        database = Database.open(settings.database_url, settings.data_dir, lock_timeout_s=settings.db_lock_timeout_s, processes=settings.workers)  # opens and migrates
        try:
            if demo:
                from openarena.demo import start_demo_models

                mock = start_demo_models()
                err_console.print(f"demo models served by the mock server at {mock.base_url}", highlight=False)
            state = build_state(settings, db=database)  # loads the registry
        except BaseException:
            if mock is not None:
                mock.stop()
            database.dispose()
            raise
        url = display_url(host, port)
        err_console.print(f"database: {state.db.describe()}; registry: {registry} ({len(state.registry)} models); "
                          f"workers: {workers}, shared state: {state.shared.describe()}", highlight=False)
        announce_when_up(host, port, f"OpenArena is running at {url}  (Ctrl+C to stop)")
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING))

    try:
        from openarena.serving.app import uvicorn_options

        if workers == 1:
            uvicorn.run(create_app(state=state), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=3, **uvicorn_options(settings))
        else:
            state.db.dispose()
            state.vote_writer.stop()
            os.environ[ENV_SETTINGS] = settings.to_env()
            uvicorn.run("openarena.serving.app:create_app_from_env", factory=True, host=host, port=port, workers=workers, log_level=log_level,
                        timeout_graceful_shutdown=3, **uvicorn_options(settings))
    finally:
        if mock is not None:
            mock.stop()
