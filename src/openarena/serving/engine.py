"""One turn of a battle: both models stream their answers side by side as server-sent events.

The events (``text/event-stream``; every ``data`` is JSON) never carry a model's name, id,
vendor, endpoint, latency or token count, only what the voter sees anyway:

- ``answer``: ``{"side": "a"|"b", "html": ..., "done": bool}``, the whole answer so far as
  sanitised HTML (:func:`~openarena.serving.safety.render_markdown`), at most every 60 ms per
  side, and once more when the side is done;
- ``failed``: ``{"side", "message"}`` when a model's endpoint fails (a generic message: the
  ProviderError, which names the model and URL, stays in the server's database);
- ``end``: ``{"votable", "turns", "turns_left", "failed", "message"}`` once both sides ended.

Stop = the browser aborts the request: the server is cancelled, closes both upstream streams,
and keeps the partial answers (FastChat keeps them too). Whatever happens, the conversations
are saved and the battle's lease released in ``finally``.

Source: FastChat gradio_block_arena_anony.py (``bot_response_multi``: both models stream
concurrently, the conversation of each side holds its own answers; a failed model ends the
battle's votability).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from openarena.providers.client import ProviderError, RetryPolicy, stream_chat
from openarena.providers.registry import ModelConfig
from openarena.serving.safety import render_markdown
from openarena.storage.battles import BattleRecord, finish_turn
from openarena.storage.db import Database

__all__ = ["sse", "stream_turn"]

log = logging.getLogger("openarena.serving")

EMIT_EVERY_S = 0.06
FAILED_MESSAGE = "This model's endpoint failed ({kind}). This battle cannot be voted on: start a new round."
FAILED_MESSAGE_DIRECT = "The model's endpoint failed ({kind}), so it could not answer. Try again with a new chat, or pick another model."


def failure_messages(mode: str) -> tuple[str, str]:
    """(message of the ``failed`` event, with ``{kind}``; message of the ``end`` event) for a
    battle of ``mode``: a direct chat talks about the chat, a battle about its vote."""
    if mode == "direct":
        return FAILED_MESSAGE_DIRECT, "The model could not answer: start a new chat."
    return FAILED_MESSAGE, "A model failed: this battle cannot be voted on. Start a new round."


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event, ``event: <name>`` then ``data: <json>`` and a blank line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _pump(side: str, model: ModelConfig, messages: list[dict[str, Any]], retry: RetryPolicy, q: asyncio.Queue) -> None:
    try:
        async with stream_chat(model, messages, retry=retry) as stream:
            async for delta in stream:
                q.put_nowait((side, "delta", delta))
        q.put_nowait((side, "done", stream.result))
    except asyncio.CancelledError:
        raise
    except ProviderError as e:
        q.put_nowait((side, "error", e))
    except Exception as e:  # noqa: BLE001 - any failure of one side ends that side, not the server
        log.exception("model call failed")
        q.put_nowait((side, "error", ProviderError(model.name, "malformed", f"{type(e).__name__}: {e}")))


async def stream_turn(
    db: Database,
    battle: BattleRecord,
    models: dict[str, ModelConfig],
    prompt: str | None,
    *,
    max_turns: int,
    retry_attempts: int = 2,
) -> AsyncIterator[bytes]:
    """Run one turn of ``battle`` (whose lease the caller holds) and yield SSE bytes.

    Parameters: models, {'a': ModelConfig, 'b': ModelConfig} ('a' only for a direct chat);
    prompt, the new user message, or None to regenerate the answers to the last one.
    Saves the conversations (and the failure, if any) before returning or when cancelled.
    """
    sides = list(models)
    convs = {"a": list(battle.conversation_a), "b": list(battle.conversation_b or [])}
    turns = battle.turns
    if prompt is None:  # regenerate: drop the last answers, ask again
        for s in sides:
            while convs[s] and convs[s][-1].get("role") == "assistant":
                convs[s].pop()
        turns = max(turns - 1, 0)
    else:
        for s in sides:
            convs[s].append({"role": "user", "content": prompt})
    texts = {s: "" for s in sides}
    results: dict[str, Any] = {}
    errors: dict[str, ProviderError] = {}
    q: asyncio.Queue = asyncio.Queue()
    retry = RetryPolicy(max_attempts=max(1, retry_attempts), base_delay_s=0.3, max_delay_s=2.0)
    tasks = [asyncio.create_task(_pump(s, models[s], list(convs[s]), retry, q)) for s in sides]
    saved = False
    t0 = time.time()

    def save() -> None:
        final = {s: convs[s] + [{"role": "assistant", "content": texts[s]}] for s in sides}
        error = "; ".join(str(e) for e in errors.values()) or None
        meta = {
            s: {
                "latency_s": round(getattr(results.get(s), "latency_s", time.time() - t0), 3),
                "completion_tokens": getattr(results.get(s), "completion_tokens", None),
                "finish_reason": getattr(results.get(s), "finish_reason", "stopped" if s not in errors else "error"),
            }
            for s in sides
        }
        if (battle.meta or {}).get("runs"):  # code runs of earlier answers (storage/code_runs.py)
            meta["runs"] = battle.meta["runs"]
        finish_turn(
            db, battle.id, conversation_a=final["a"], conversation_b=final.get("b") if "b" in sides else None,
            turns=turns + 1, error=error, meta=meta,
        )

    try:
        pending = set(sides)
        dirty: set[str] = set()
        last_emit = {s: 0.0 for s in sides}
        while pending:
            try:
                side, kind, value = await asyncio.wait_for(q.get(), EMIT_EVERY_S if dirty else None)
            except TimeoutError:
                for s in sorted(dirty):
                    yield sse("answer", {"side": s, "html": render_markdown(texts[s]), "done": False})
                    last_emit[s] = time.monotonic()
                dirty.clear()
                continue
            if kind == "delta":
                texts[side] += value
                dirty.add(side)
                now = time.monotonic()
                if now - last_emit[side] >= EMIT_EVERY_S:
                    yield sse("answer", {"side": side, "html": render_markdown(texts[side]), "done": False})
                    last_emit[side] = now
                    dirty.discard(side)
                continue
            pending.discard(side)
            dirty.discard(side)
            if kind == "done":
                results[side] = value
                texts[side] = value.text if value is not None else texts[side]
                yield sse("answer", {"side": side, "html": render_markdown(texts[side]), "done": True})
            else:
                errors[side] = value
                yield sse("answer", {"side": side, "html": render_markdown(texts[side]), "done": True})
                yield sse("failed", {"side": side, "message": failure_messages(battle.mode)[0].format(kind=value.kind.replace("_", " "))})
        await asyncio.to_thread(save)
        saved = True
        votable = not errors and battle.mode != "direct"
        turns_done = turns + 1
        yield sse(
            "end",
            {
                "votable": votable,
                "failed": bool(errors),
                "turns": turns_done,
                "turns_left": max(max_turns - turns_done, 0),
                "message": failure_messages(battle.mode)[1] if errors else "",
            },
        )
    finally:
        for t in tasks:
            t.cancel()
        if not saved:
            # cancelled (Stop, closed tab) or crashed: keep the partial answers, release the lease.
            # A thread, so the save finishes even though this task is being cancelled.
            loop = asyncio.get_running_loop()
            loop.run_in_executor(None, save)
