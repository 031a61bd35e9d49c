"""What the fixtures of real services (PostgreSQL, Redis) share: hand a found server to the tests,
or skip them (fail under CI) saying why, and stop a server the fixture started itself."""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest


def provide(found: tuple[str | None, Any, str], what: str, require_env: str) -> Iterator[str]:
    """Yield the URL of ``found`` = (url or None, own server or None, why), the answer of a
    ``find_*`` function; without a URL, skip with ``no {what}: why`` (fail when ``CI`` or
    ``require_env`` is set). The own server is stopped (its ``stop()``) after the session."""
    url, own, info = found
    if url is None:
        msg = f"no {what}: {info}"
        if os.environ.get(require_env) or os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    try:
        yield url
    finally:
        if own is not None:
            own.stop()
