"""The FastAPI application of the web arena: :func:`create_app`.

Pages (server-rendered Jinja2, a little plain JavaScript in ``static/arena.js``, no build step):
``/`` Arena (anonymous battle), ``/side-by-side`` (named models), ``/direct`` (one model),
``/leaderboard``, ``/trust`` (trust analyses), ``/about`` (data policy), an HTML error page for browsers (404). JSON/SSE API under ``/api`` (see
:mod:`openarena.serving.routes.battles`). ``/healthz`` for probes.

Request bodies and heads are size-limited (413/431, :mod:`openarena.serving.limits`).

Every response carries a strict Content-Security-Policy (scripts and styles from this origin
only, no inline script, no framing), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
same-origin`` and ``Cache-Control: no-store`` on dynamic pages; nothing identifies a model.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError

from openarena.providers.registry import ModelRegistry, load_registry
from openarena.serving.config import ServeSettings, load_secret
from openarena.serving.leaderboard_cache import LeaderboardCache, SharedBoard
from openarena.serving.limits import RequestLimits
from openarena.serving.render import configure as configure_render, shutdown as shutdown_render, warm_up
from openarena.serving.safety import Moderator, RateLimiter, identity_words
from openarena.serving.sampling import PairSampler, SharedVoteCounts
from openarena.serving.shared_state import LocalState, RedisState, open_shared_state
from openarena.serving.sessions import SessionManager
from openarena.serving.state import AppState
from openarena.serving.targets import load_targets
from openarena.serving.trust import trust_options
from openarena.storage.db import Database, StorageError
from openarena.storage.votes import VoteWriter

__all__ = ["AppState", "create_app", "create_app_from_env", "uvicorn_options"]

HERE = Path(__file__).parent
log = logging.getLogger("openarena.serving")

#: The worker's GIL switch interval (seconds; CPython's default is 0.005). The vote writer's
#: thread (:class:`~openarena.storage.votes.VoteWriter`) needs the GIL back after each database
#: round trip of a batch; while the event loop runs Python it waits up to this long each time,
#: and on PostgreSQL it holds the voters' advisory locks meanwhile, which every worker may be
#: waiting for (a shared IP address). A shorter interval cuts those waits.
GIL_SWITCH_S = 0.0005


def freeze_startup_objects() -> int:
    """Move every object alive now (the modules, the app and its state: ~10^5 objects) out of
    the garbage collector's scans (:func:`gc.freeze`), after collecting the start-up's garbage.
    A full (oldest-generation) collection walks every tracked object while holding the GIL: over
    the start-up objects it took 20-70 ms on this 2-core machine, a pause of every request of the
    worker and of its vote writer (which holds voters' locks meanwhile), at random moments under
    load: the vote tail. Frozen objects are never freed, which is what start-up objects are for
    anyway. Returns how many are frozen. Source: CPython docs, ``gc.freeze`` (for servers)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


DB_DOWN_MESSAGE = "The arena's database is not available right now, so nothing was saved. Please try again in a minute."

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Pure ASGI middleware adding :data:`SECURITY_HEADERS` (and no-store on non-static paths)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                own = {k.lower() for k, _ in headers}  # a route's own CSP (code artifacts) wins
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in own)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _on_refresh(sampler: PairSampler, counts: SharedVoteCounts):
    def update(snap, pairs) -> None:
        if pairs is None:
            sampler.update(votes={})
            return
        board = snap.boards.get(("full", False))
        ratings = {r["model"]: r["rating"] for r in board.rows} if board else {}
        sampler.update(votes=snap.votes_per_model, pair_votes=pairs, ratings=ratings)
        counts.seed(snap.votes_per_model)

    return update


def build_state(settings: ServeSettings, *, registry: ModelRegistry | None = None, db: Database | None = None, migrate: bool = True) -> AppState:
    """Load the registry, open (and migrate) the database, and assemble the :class:`AppState`.

    Raises: DataError for a bad registry; StorageError for an unreachable database.
    """
    registry = registry if registry is not None else load_registry(settings.registry)
    targets = load_targets(settings.redteam_targets)
    db = db if db is not None else Database.open(settings.database_url, settings.data_dir, run_migrations=migrate, lock_timeout_s=settings.db_lock_timeout_s,
                                                 processes=settings.workers)
    data_dir = Path(db.engine.url.database).parent if db.backend == "sqlite" and db.engine.url.database else (Path(settings.data_dir) if settings.data_dir else None)
    secret = load_secret(settings, data_dir, db)
    shared = open_shared_state(settings.redis_url, workers=settings.workers, prefix=settings.redis_prefix)
    anon = [(m.name, m.weight, m.vote_target) for m in registry if m.anonymous]
    sampler = PairSampler(anon, settings.sampling_config())
    vote_counts = SharedVoteCounts(shared, [a[0] for a in anon])
    # several workers: one recomputes the leaderboard, the others load its result (Redis)
    board = SharedBoard(settings.redis_url, settings.redis_prefix, db.url) if shared.kind == "redis" else None
    cache = LeaderboardCache(
        db, registry, interval_s=settings.leaderboard_interval_s, min_refresh_s=settings.leaderboard_min_refresh_s,
        reference=settings.reference_leaderboard, on_refresh=_on_refresh(sampler, vote_counts), process=settings.leaderboard_process,
        trust=trust_options(registry, window=settings.trust_drift_window, provisional_votes=settings.provisional_votes),
        shared=board,
    )
    limiter = RateLimiter({
        "prompt_session": settings.prompts_per_minute_session, "prompt_ip": settings.prompts_per_minute_ip,
        "battle_session": settings.battles_per_minute_session, "battle_ip": settings.battles_per_minute_ip,
        "vote_session": settings.votes_per_minute_session, "vote_ip": settings.votes_per_minute_ip,
    }, shared)
    moderator = Moderator(settings.moderation_url, settings.moderation_key_env) if settings.moderation_url else None
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    images = _image_intake(settings, db)
    return AppState(
        settings=settings, registry=registry, db=db, secret=secret,
        sessions=SessionManager(secret, settings.cookie_secure), limiter=limiter, sampler=sampler,
        leaderboard=cache, moderator=moderator, leak_words=identity_words(registry), templates=templates,
        vote_writer=VoteWriter(db, integrity=settings.integrity_policy()).start(), shared=shared, vote_counts=vote_counts,
        redteam_targets=targets, images=images,
    )


def _image_intake(settings: ServeSettings, db: Database):
    """The vision arena's :class:`~openarena.serving.images.ImageIntake`: the image folder
    (``settings.image_dir`` or beside the database), the limits and the block-list.
    Raises: DataError for an unreadable block-list; ValueError for a limit < 1."""
    from openarena.serving.images import ImageIntake, load_block_list
    from openarena.storage.images import ImageStore, default_image_dir

    folder = Path(settings.image_dir) if settings.image_dir else default_image_dir(db.url, settings.data_dir)
    moderator = load_block_list(settings.image_block_list) if settings.image_block_list else None
    return ImageIntake(ImageStore(folder), settings.image_limits(), moderator, db,
                       max_store_bytes=settings.max_image_store_bytes or None, min_free_bytes=settings.min_free_disk_bytes)


def create_app(settings: ServeSettings | None = None, *, state: AppState | None = None, start_background: bool = True) -> FastAPI:
    """The arena application.

    Parameters: settings (default :class:`ServeSettings`()); state, a prebuilt AppState (tests);
    start_background, start the leaderboard refresh thread with the app.
    Raises: what :func:`build_state` raises.
    """
    from openarena.serving.routes import about, arena, battles, code, direct, errors, leaderboard, redteam, side_by_side, trust

    state = state or build_state(settings or ServeSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        sys.setswitchinterval(GIL_SWITCH_S)
        if start_background:
            state.leaderboard.start()
        state.vote_writer.start()
        workers = max(1, state.settings.workers)
        configure_render(max(1, min(2, (os.cpu_count() or 1) // workers)))
        if workers == 1:
            warm_up()  # the answer-rendering processes (several workers start theirs at the first long answer)
        freeze_startup_objects()
        try:
            yield
        finally:
            state.leaderboard.stop()
            state.vote_writer.stop()
            try:  # the sampler's counts of the last votes (add_vote_soon)
                await state.vote_counts.flush()
            except Exception:  # noqa: BLE001 - healed at the next leaderboard refresh
                log.warning("shared vote counts not updated at shutdown", exc_info=True)
            await state.shared.aclose()
            shutdown_render()

    app = FastAPI(title="OpenArena", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.arena = state
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (arena, side_by_side, direct, leaderboard, trust, redteam, about, battles):
        app.include_router(module.router)

    code.install(app, state.settings)  # run API of the code arena (sandbox probed once)

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        """GET /healthz: 200 ``{"status": "ok"}`` when the database can be written now
        (:meth:`~openarena.storage.db.Database.health`) and the shared state (Redis) answers,
        else 503 (the reason goes to the log)."""
        problem = await run_in_threadpool(state.db.health)
        if problem is not None:
            log.error("health check failed: %s", problem)
            return JSONResponse({"status": "unavailable", "database": "cannot be written"}, status_code=503)
        if not await state.shared.ping():
            return JSONResponse({"status": "shared state unreachable"}, status_code=503)
        return {"status": "ok"}

    errors.install(app)  # ApiError / RequestValidationError -> {"error", "code"}; HTML 404 page for browsers

    async def database_down(request, exc):
        """A database failure in any route: 503 with a plain message (details in the log)."""
        log.error("database failure on %s %s: %s", request.method, request.url.path, exc)
        if request.url.path.startswith("/api/"):
            return errors.ApiError(503, "db_unavailable", DB_DOWN_MESSAGE, headers={"retry-after": "30"}).response()
        return PlainTextResponse(DB_DOWN_MESSAGE, status_code=503, headers={"retry-after": "30"})

    app.add_exception_handler(SQLAlchemyError, database_down)
    app.add_exception_handler(StorageError, database_down)

    app.add_middleware(RequestLimits, max_body_bytes=state.settings.body_limit(), max_header_bytes=state.settings.max_header_bytes)
    app.add_middleware(SecurityHeaders)  # outside the limits: also on their 413/431
    if state.settings.forwarded_allow_ips:
        # X-Forwarded-For / -Proto only from the configured proxies (uvicorn's own middleware,
        # added here so the app obeys the setting under any ASGI server; uvicorn itself is run
        # with proxy_headers=False, see uvicorn_options)
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(state.settings.forwarded_allow_ips))
    return app


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that every way of serving the
    arena must pass: uvicorn's own proxy-header handling off (its default trusts
    X-Forwarded-For from 127.0.0.1, so anyone behind a same-host proxy could choose their
    address); :func:`create_app` applies ``settings.forwarded_allow_ips`` itself; and request
    heads bounded at ``settings.max_header_bytes`` in the HTTP parser itself
    (:func:`openarena.serving.limits.uvicorn_options`)."""
    from openarena.serving.limits import uvicorn_options as parser_limits

    return {"proxy_headers": False, "forwarded_allow_ips": "", **parser_limits(settings.max_header_bytes)}


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: settings from ``OPENARENA_SERVE_SETTINGS`` (the
    parent already migrated the database)."""
    settings = ServeSettings.from_env()
    return create_app(state=build_state(settings, migrate=False))
