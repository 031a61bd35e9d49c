"""Shared test fixtures: where the real public data lives (../shared/data, or $OPENARENA_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPENARENA_SHARED", ROOT.parent / "shared")).resolve()
DATA = SHARED / "data"


def shared_file(rel: str) -> Path:
    """Path of a file under shared/data; skips the test if it is not there (fails under CI)."""
    path = DATA / rel
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"shared data not found in CI: {path} (set OPENARENA_SHARED)")
        pytest.skip(f"shared data not found: {path} (set OPENARENA_SHARED)")
    return path


@pytest.fixture(scope="session")
def arena_20240814() -> Path:
    """The 1,670,250-vote aggregate of leaderbot 0.4.3 (models, X, Y)."""
    return shared_file("leaderbot/chatbotarena_20240814.json")


@pytest.fixture(scope="session")
def published_20240813() -> Path:
    """The official Bradley-Terry leaderboard of 2024-08-13."""
    return shared_file("thurstone_models/results/tables/published_bt_20240813.csv")
