"""Running bootstrap rounds on both cores.

The rounds are numpy work that releases the GIL, so worker threads scale; BLAS is held to one
thread per worker meanwhile (two BLAS threads per worker on two cores spin-wait on each other
and run slower than one). Results come back in input order, so they do not depend on the
number of workers.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")


def workers(n_jobs: int | None) -> int:
    """The number of workers to use: ``n_jobs`` if given, else every core (at least 1)."""
    return max(1, n_jobs or os.cpu_count() or 1)


def map_threads(func: Callable[[T], R], items: Iterable[T], n_jobs: int | None = None) -> list[R]:
    """``[func(x) for x in items]`` on ``workers(n_jobs)`` threads with single-threaded BLAS.

    Raises: whatever ``func`` raises (the first failing item's exception).
    """
    items = list(items)
    n = workers(n_jobs)
    with threadpool_limits(limits=1, user_api="blas"):
        if n == 1 or len(items) <= 1:
            return [func(x) for x in items]
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(func, items))
