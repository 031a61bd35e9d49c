"""One turn of a battle: both models stream their answers side by side as server-sent events.

The events (``text/event-stream``; every ``data`` is JSON) never carry a model's name, id,
vendor, endpoint, latency or token count, only what the voter sees anyway:

- ``delta``: ``{"side": "a"|"b", "text": ...}``, the raw text written since the previous delta
  of that side (deltas arriving within 60 ms are sent together). The page shows it as plain
  text (never as HTML) until the side is done. The bytes sent are O(answer length): nothing is
  re-rendered or re-sent while streaming;
- ``answer``: ``{"side", "html", "done": true}``, once per side when it ends: the whole answer
  as sanitised HTML (:func:`~openarena.serving.safety.render_markdown`), rendered once, in a
  worker process (:mod:`openarena.serving.render`: neither on the event loop nor holding its
  GIL), from at most ``max_answer_chars`` characters;
- ``note``: ``{"side", "message"}`` when a side was cut by a limit of the arena (answer length
  or turn duration); the answer so far is kept, and the battle stays votable;
- ``failed``: ``{"side", "message"}`` when a model's endpoint fails (a generic message: the
  ProviderError, which names the model and URL, stays in the server's database);
- ``end``: ``{"votable", "turns", "turns_left", "failed", "message"}`` once both sides ended.
  Every stream that is not cancelled by the client ends with it, also when something fails
  on the server (then ``votable`` is false and the message says why).

Limits per turn (:class:`TurnLimits`, from :class:`~openarena.serving.config.ServeSettings`):
``max_tokens`` is sent to each model (its registry ``max_tokens``, capped by the server-wide
value); the server itself cuts an answer at ``max_answer_chars`` characters and the whole turn
at ``max_turn_s`` seconds, whatever the endpoint does. While the turn runs, its lease on the
battle is renewed every ``lease_s / 3`` seconds, so no vote (and no other turn) can slip in
however long it lasts; a lease left by a killed process still expires after ``lease_s``.

Stop = the browser aborts the request: the server is cancelled, closes both upstream streams,
and keeps the partial answers (FastChat keeps them too). Whatever happens, the conversations
are saved and the battle's lease released in ``finally``.

Source: FastChat gradio_block_arena_anony.py (``bot_response_multi``: both models stream
concurrently, the conversation of each side holds its own answers; a failed model ends the
battle's votability); FastChat's ``max_new_tokens`` per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from openarena.providers.client import ProviderError, RetryPolicy, stream_chat, with_images
from openarena.providers.registry import ModelConfig
from openarena.serving.render import render_answer
from openarena.storage.battles import BattleRecord, finish_turn, renew_lease
from openarena.storage.db import Database
from openarena.text import clean_text

__all__ = ["TurnLimits", "sse", "stream_turn"]

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
CUT_LENGTH = "This answer was cut at {n:,} characters, the arena's limit per answer."
CUT_TIME = "This answer was cut after {s:g} s, the arena's limit per turn."
EMPTY_MESSAGE = "An answer is empty, so there is nothing to compare: send another prompt or start a new round."
INTERNAL_MESSAGE = "Something went wrong on the server while writing the answers: this battle cannot be voted on. Start a new round."
NOT_SAVED_MESSAGE = ("The answers could not be saved (the arena's database is not available right now): "
                     "this battle cannot be voted on. Try again in a moment with a new round.")


@dataclass(frozen=True)
class TurnLimits:
    """Bounds of one turn. max_tokens: sent to every model (a model's own registry
    ``max_tokens`` is capped by it; None = the model's own only); max_answer_chars: the server
    cuts a side's answer there; max_turn_s: seconds a turn may stream; lease_s: the battle's
    lease, renewed every lease_s / 3 seconds while the turn runs."""

    max_tokens: int | None = 4096
    max_answer_chars: int = 20_000
    max_turn_s: float = 120.0
    lease_s: float = 300.0

    def tokens_for(self, model: ModelConfig) -> int | None:
        """The ``max_tokens`` to send to ``model``: the smaller of its own and the server's."""
        caps = [v for v in (model.max_tokens, self.max_tokens) if v]
        return min(caps) if caps else None


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event, ``event: <name>`` then ``data: <json>`` and a blank line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _pump(side: str, model: ModelConfig, messages: list[dict[str, Any]], retry: RetryPolicy, q: asyncio.Queue, max_tokens: int | None) -> None:
    try:
        overrides = {"max_tokens": max_tokens} if max_tokens else {}
        async with stream_chat(model, messages, retry=retry, **overrides) as stream:
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


async def _fail(side: str, model: ModelConfig, q: asyncio.Queue, why: str) -> None:
    """A side that cannot be asked at all: its error, through the same queue as an answer."""
    q.put_nowait((side, "error", ProviderError(model.name, "malformed", why)))


async def _keep_lease(db: Database, battle_id: str, lease_s: float) -> None:
    """Renew the battle's lease every lease_s / 3 seconds until cancelled."""
    every = max(lease_s / 3, 0.05)
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(renew_lease, db, battle_id, lease_s)
        except Exception:  # noqa: BLE001 - the next round tries again; the turn goes on
            log.warning("could not renew the lease of a battle", exc_info=True)


async def stream_turn(
    db: Database,
    battle: BattleRecord,
    models: dict[str, ModelConfig],
    prompt: str | None,
    *,
    max_turns: int,
    retry_attempts: int = 2,
    limits: TurnLimits | None = None,
    images: Sequence[str] = (),
    image_url: Callable[[str], str] | None = None,
) -> AsyncIterator[bytes]:
    """Run one turn of ``battle`` (whose lease the caller holds) and yield SSE bytes.

    Parameters: models, {'a': ModelConfig, 'b': ModelConfig} ('a' only for a direct chat);
    prompt, the new user message, or None to regenerate the answers to the last one; limits,
    the bounds of the turn (default :class:`TurnLimits`()); images, SHA-256 addresses of the
    (already stored) images sent with ``prompt``, kept in the user message as ``"images"``;
    image_url, sha256 -> data URL (from the image store), used to send every image of the
    conversation to the models as OpenAI ``image_url`` parts
    (:func:`openarena.providers.client.with_images`; read in a worker thread).
    Saves the conversations (and the failure, if any) before returning or when cancelled.
    """
    limits = limits or TurnLimits()
    sides = list(models)
    convs = {"a": list(battle.conversation_a), "b": list(battle.conversation_b or [])}
    turns = battle.turns
    if prompt is None:  # regenerate: drop the last answers, ask again
        for s in sides:
            while convs[s] and convs[s][-1].get("role") == "assistant":
                convs[s].pop()
        turns = max(turns - 1, 0)
    else:
        message: dict[str, Any] = {"role": "user", "content": prompt}
        if images:
            message["images"] = list(images)
        for s in sides:
            convs[s].append(dict(message))
    parts: dict[str, list[str]] = {s: [] for s in sides}
    sizes = {s: 0 for s in sides}
    results: dict[str, Any] = {}
    cut: dict[str, str] = {}  # side -> "length" | "time"
    errors: dict[str, ProviderError] = {}
    q: asyncio.Queue = asyncio.Queue()
    retry = RetryPolicy(max_attempts=max(1, retry_attempts), base_delay_s=0.3, max_delay_s=2.0)
    sent: dict[str, list[dict[str, Any]] | None] = {s: list(convs[s]) for s in sides}
    if any(m.get("images") for s in sides for m in convs[s]):
        for s in sides:
            try:
                if image_url is None:
                    raise LookupError("no image store")
                sent[s] = await asyncio.to_thread(with_images, convs[s], image_url)
            except Exception:  # noqa: BLE001 - an image that cannot be read fails the side, not the server
                log.exception("could not load the images of a battle")
                sent[s] = None
    tasks = {
        s: asyncio.create_task(
            _pump(s, models[s], sent[s], retry, q, limits.tokens_for(models[s])) if sent[s] is not None
            else _fail(s, models[s], q, "an image of the conversation could not be read from the image store")
        )
        for s in sides
    }
    keeper = asyncio.create_task(_keep_lease(db, battle.id, limits.lease_s))
    saved = False
    t0 = time.time()

    def text(s: str) -> str:
        return "".join(parts[s])

    def save() -> None:
        final = {s: convs[s] + [{"role": "assistant", "content": clean_text(text(s))}] for s in sides}
        error = "; ".join(str(e) for e in errors.values()) or None
        meta = {
            s: {
                "latency_s": round(getattr(results.get(s), "latency_s", time.time() - t0), 3),
                "completion_tokens": getattr(results.get(s), "completion_tokens", None),
                "finish_reason": cut.get(s) or getattr(results.get(s), "finish_reason", "stopped" if s not in errors else "error"),
            }
            for s in sides
        }
        if (battle.meta or {}).get("runs"):  # code runs of earlier answers (storage/code_runs.py)
            meta["runs"] = battle.meta["runs"]
        finish_turn(
            db, battle.id, conversation_a=final["a"], conversation_b=final.get("b") if "b" in sides else None,
            turns=turns + 1, error=error, meta=meta,
        )

    async def rendered(s: str) -> bytes:
        html = await render_answer(text(s), limits.max_answer_chars)
        return sse("answer", {"side": s, "html": html, "done": True})

    try:
        pending = set(sides)
        buffered: dict[str, list[str]] = {s: [] for s in sides}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.max_turn_s
        last_flush = loop.time()

        def flush(only: str | None = None) -> list[bytes]:
            nonlocal last_flush
            out = []
            for s in sides if only is None else [only]:
                if buffered[s]:
                    out.append(sse("delta", {"side": s, "text": "".join(buffered[s])}))
                    buffered[s] = []
            if only is None:
                last_flush = loop.time()
            return out

        internal = False
        try:
            while pending:
                now = loop.time()
                wait = deadline - now
                if any(buffered.values()):
                    wait = min(wait, last_flush + EMIT_EVERY_S - now)
                try:
                    side, kind, value = await asyncio.wait_for(q.get(), max(wait, 0.0))
                except TimeoutError:
                    if loop.time() >= deadline:  # the turn's time is up: cut every side still writing
                        for s in sorted(pending):
                            tasks[s].cancel()
                            cut[s] = "time"
                            for chunk in flush(s):
                                yield chunk
                            yield await rendered(s)
                            yield sse("note", {"side": s, "message": CUT_TIME.format(s=limits.max_turn_s)})
                        pending.clear()
                        break
                    for chunk in flush():
                        yield chunk
                    continue
                if side not in pending:
                    continue  # a late item of a side already cut
                if kind == "delta":
                    room = limits.max_answer_chars - sizes[side]
                    if len(value) > room:  # the length limit: keep what fits, stop this side
                        value = value[:room]
                        cut[side] = "length"
                    if value:
                        parts[side].append(value)
                        sizes[side] += len(value)
                        buffered[side].append(value)
                    if side in cut:
                        tasks[side].cancel()
                        pending.discard(side)
                        for chunk in flush(side):
                            yield chunk
                        yield await rendered(side)
                        yield sse("note", {"side": side, "message": CUT_LENGTH.format(n=limits.max_answer_chars)})
                    elif loop.time() - last_flush >= EMIT_EVERY_S:
                        for chunk in flush():
                            yield chunk
                    continue
                pending.discard(side)
                for chunk in flush(side):
                    yield chunk
                if kind == "done":
                    results[side] = value
                    yield await rendered(side)
                else:
                    errors[side] = value
                    yield await rendered(side)
                    yield sse("failed", {"side": side, "message": failure_messages(battle.mode)[0].format(kind=value.kind.replace("_", " "))})
        except Exception as e:  # noqa: BLE001 - a bug must still end the stream with a message
            log.exception("a battle turn failed on the server")
            internal = True
            for s in sides:
                if s not in results and s not in errors:
                    errors[s] = ProviderError(models[s].name, "malformed", f"server error: {type(e).__name__}: {e}"[:300])
        not_saved = False
        try:
            await asyncio.to_thread(save)
        except Exception:  # noqa: BLE001 - the database is down: say so, never a bare cut
            log.exception("could not save a battle turn")
            not_saved = True
        saved = True  # (or tried: not again in finally)
        empty = [s for s in sides if not text(s).strip()]
        failed = bool(errors) or internal or not_saved
        votable = not failed and not empty and battle.mode != "direct"
        turns_done = turns + 1
        if not_saved:
            message = NOT_SAVED_MESSAGE
        elif internal:
            message = INTERNAL_MESSAGE
        elif errors:
            message = failure_messages(battle.mode)[1]
        elif empty and battle.mode != "direct":
            message = EMPTY_MESSAGE
        else:
            message = ""
        yield sse(
            "end",
            {
                "votable": votable,
                "failed": failed,
                "turns": turns_done,
                "turns_left": max(max_turns - turns_done, 0),
                "message": message,
            },
        )
    finally:
        keeper.cancel()
        for t in tasks.values():
            t.cancel()
        if not saved:
            # cancelled (Stop, closed tab) or crashed: keep the partial answers, release the lease.
            # A thread, so the save finishes even though this task is being cancelled.
            loop = asyncio.get_running_loop()
            loop.run_in_executor(None, save)
