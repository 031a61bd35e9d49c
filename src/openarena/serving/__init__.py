"""The web arena: a FastAPI application with server-rendered pages where people battle two
anonymous models, vote, and see the live leaderboard.

Build it with :func:`openarena.serving.app.create_app` (``openarena serve`` does). Modules:
app (factory, security headers), config (settings), routes/ (one module per view + the battle
API), engine (one streamed turn), sampling (pair sampling), safety (CSRF, rate limits,
sanitising, identity leaks, moderation), sessions (signed cookie), shared_state (rate limits and
counters shared by the workers: Redis, or in process for one worker), leaderboard_cache.
"""
