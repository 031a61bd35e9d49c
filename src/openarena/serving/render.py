"""Answers rendered to HTML away from the event loop and its GIL: :func:`render_answer`.

Rendering a long answer (markdown-it then nh3, :func:`~openarena.serving.safety.render_markdown`)
is pure Python work: ~50 ms for 12,000 characters of markdown on this project's 2-core test
machine. In a thread it still holds the GIL the event loop needs, so a few long answers ending
together would delay every other request by their sum. It runs instead in a small pool of
worker processes (started with ``spawn``, at a lower CPU priority, so they never take a core
from the server's event loop when both want one), started on first use; if the pool cannot be
started or breaks, a thread does the work.

Short answers (at most :data:`INLINE_CHARS` characters, most of a battle's answers) are rendered
right on the event loop instead: that takes well under a millisecond, less than sending the text
to a process and waking up for its answer. The pool has ``processes`` workers
(:func:`configure`; ``openarena serve`` gives each of its N workers max(1, cores / N), at most
2), so N server workers never start more render processes than the machine has cores for.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from openarena.serving.safety import render_markdown

__all__ = ["INLINE_CHARS", "configure", "render_answer", "shutdown", "warm_up"]

log = logging.getLogger("openarena.serving")

_pool: ProcessPoolExecutor | None = None
_pool_failed = False
_lock = threading.Lock()
NICE = 5
#: answers up to this many characters are rendered on the event loop (~0.1-0.5 ms)
INLINE_CHARS = 400
_processes = max(1, min(2, os.cpu_count() or 1))


def configure(processes: int) -> None:
    """Set the size of the render pool of this process (before its first use; at least 1)."""
    global _processes
    _processes = max(1, int(processes))


def _lower_priority() -> None:  # pragma: no cover - runs in the worker processes
    # Ctrl-C in a terminal reaches the whole process group: the server shuts the pool down
    # itself (:func:`shutdown`), so a renderer ignores it (else each prints a KeyboardInterrupt
    # traceback); a server killed outright (SIGKILL) cannot, so a renderer ends with it
    # (Linux: the parent-death signal), instead of waiting on its queue for ever
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        pass
    try:
        os.nice(NICE)
    except OSError:
        pass


def _get_pool() -> ProcessPoolExecutor | None:
    global _pool, _pool_failed
    with _lock:
        if _pool is None and not _pool_failed:
            try:
                _pool = ProcessPoolExecutor(max_workers=_processes,
                                            mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority)
            except (OSError, ValueError, RuntimeError) as e:
                log.warning("answers are rendered in threads: no render process (%s)", e)
                _pool_failed = True
        return _pool


def _drop_pool(pool: ProcessPoolExecutor, wait: bool = False) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=wait, cancel_futures=True)


async def render_answer(text: str, max_chars: int) -> str:
    """Sanitised HTML of the first ``max_chars`` characters of ``text`` (see
    :func:`~openarena.serving.safety.render_markdown`), rendered in a worker process (else a
    thread); on the event loop only when it is at most :data:`INLINE_CHARS` characters."""
    text = text[:max_chars]
    if len(text) <= INLINE_CHARS:
        return render_markdown(text)
    pool = _get_pool()
    if pool is not None:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, render_markdown, text)
        except (BrokenProcessPool, RuntimeError, OSError) as e:  # a worker died, or the pool is shut down
            log.warning("render process failed (%s): rendering in a thread", e)
            _drop_pool(pool)
    return await asyncio.to_thread(render_markdown, text)


def shutdown() -> None:
    """Stop this process's render processes (at the server's shutdown; started again on use)."""
    pool = _pool
    if pool is not None:
        _drop_pool(pool, wait=True)


def warm_up() -> None:
    """Start the render processes now (the first answer then waits for none to start)."""
    pool = _get_pool()
    if pool is not None:
        try:
            pool.submit(render_markdown, "warm-up")
        except RuntimeError:
            pass
