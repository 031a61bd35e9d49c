"""Helpers shared by the benchmark drivers (stdlib only: each driver runs in its own venv).

A driver prints exactly one line ``BENCH_JSON {...}`` on stdout; bench/ratings.py parses it.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from typing import Any, Callable

MARKER = "BENCH_JSON "


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size in MB of this process (or of its largest finished child)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux: KB


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, cpu seconds, result) of one call."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    out = fn()
    t1, c1 = time.perf_counter(), cpu_seconds()
    return t1 - t0, c1 - c0, out


def warm_median(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1) -> dict:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times: median wall and cpu, the
    last result and all results."""
    for _ in range(warmup):
        fn()
    walls, cpus, results = [], [], []
    for _ in range(repeats):
        w, c, out = timed(fn)
        walls.append(w)
        cpus.append(c)
        results.append(out)
    return {"wall": statistics.median(walls), "walls": walls, "cpu": statistics.median(cpus), "result": results[-1], "results": results}


def median_of(results: list[dict], key: str) -> float:
    """Median over runs of one timing component ``key`` of dict results."""
    return statistics.median(r[key] for r in results)


def versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = "absent"
    return out


def emit(payload: dict) -> None:
    sys.stdout.write(MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()
