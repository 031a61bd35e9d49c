"""Results of code runs (the code arena's REPL), kept in the battle's ``meta`` JSON.

``meta["runs"] = {"a": [run, ...], "b": [...]}``, one entry per run of a Python block of that
side's answer, in order: ``{"turn", "block", "code_sha256", "exit_code", "timed_out",
"truncated", "message", "stdout", "stderr", "n_images", "image_sha256", "duration_s", "tstamp"}``
(stdout/stderr as the voter saw them, already cut at the run's output limit; images by hash only,
never stored). A vote is a separate row (``votes``); joining ``votes.winner`` with
``battles.meta["runs"]`` of the last turn (``turn == battles.turns``) tells a "tie (bothbad)"
where neither answer ran (``exit_code != 0`` or ``timed_out``) from one where both ran and were
judged worse (see :func:`run_outcomes`).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from sqlalchemy import select, update

from openarena.storage.db import Database
from openarena.storage.models import Battle, Vote

__all__ = ["record_run", "run_outcomes", "code_run_votes", "MAX_RUNS_PER_SIDE"]

B = Battle.__table__
V = Vote.__table__
MAX_RUNS_PER_SIDE = 50


def record_run(db: Database, battle_id: str, session_hash: str, side: str, *, turn: int, block: int, code: str,
               result: dict[str, Any], now: float | None = None) -> bool:
    """Append one run (``result``: :meth:`openarena.serving.sandbox.RunResult.to_dict`) to the
    battle's ``meta["runs"][side]`` in one write transaction. Keeps the last
    :data:`MAX_RUNS_PER_SIDE` runs of a side. Returns False when the battle is not this
    session's. Raises: ValueError for a side other than 'a'/'b'."""
    if side not in ("a", "b"):
        raise ValueError(f"side must be 'a' or 'b', not {side!r}")
    now = time.time() if now is None else now
    entry = {
        "turn": int(turn), "block": int(block), "code_sha256": hashlib.sha256(code.encode()).hexdigest(),
        "exit_code": result.get("exit_code"), "timed_out": bool(result.get("timed_out")),
        "truncated": bool(result.get("truncated")), "message": result.get("message", ""),
        "stdout": result.get("stdout", ""), "stderr": result.get("stderr", ""),
        "n_images": len(result.get("images") or []),
        "image_sha256": [hashlib.sha256(i.encode()).hexdigest() for i in result.get("images") or []],
        "duration_s": result.get("duration_s"), "tstamp": now,
    }
    with db.write() as conn:
        q = select(B.c.meta).where(B.c.id == battle_id, B.c.session_hash == session_hash)
        if db.backend != "sqlite":
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            return False
        meta = dict(row.meta or {})
        runs = {k: list(v) for k, v in (meta.get("runs") or {}).items()}
        runs[side] = (runs.get(side, []) + [entry])[-MAX_RUNS_PER_SIDE:]
        meta["runs"] = runs
        conn.execute(update(B).where(B.c.id == battle_id).values(meta=meta))
    return True


def run_outcomes(meta: dict[str, Any] | None, turn: int) -> dict[str, str]:
    """Per side, how the code of answer ``turn`` ran: 'ran' (a run exited 0 without timing
    out), 'failed' (it was run and no run succeeded) or 'not_run'. Use it to split
    "tie (bothbad)" votes into "neither runs" and "both ran, both judged bad"."""
    out = {}
    runs = (meta or {}).get("runs") or {}
    for side in ("a", "b"):
        mine = [r for r in runs.get(side, []) if r.get("turn") == turn]
        if not mine:
            out[side] = "not_run"
        elif any(r.get("exit_code") == 0 and not r.get("timed_out") for r in mine):
            out[side] = "ran"
        else:
            out[side] = "failed"
    return out


def code_run_votes(db: Database, batch: int = 1000) -> list[dict[str, Any]]:
    """Every voted battle whose last answer had code run: ``{"battle_id", "model_a", "model_b",
    "winner", "counted", "run_a", "run_b"}`` with run_* from :func:`run_outcomes` ('ran',
    'failed', 'not_run'). E.g. the "tie (bothbad)" rows with ``run_a == run_b == 'failed'`` are
    battles where neither program ran; with both 'ran', both ran and were judged bad anyway."""
    out = []
    q = (select(B.c.id, B.c.model_a, B.c.model_b, B.c.turns, B.c.meta, V.c.winner, V.c.counted)
         .join(V, V.c.battle_id == B.c.id).order_by(V.c.tstamp))
    with db.read() as conn:
        for part in conn.execute(q).partitions(batch):
            for r in part:
                if not (r.meta or {}).get("runs"):
                    continue
                o = run_outcomes(r.meta, r.turns)
                if o == {"a": "not_run", "b": "not_run"}:
                    continue
                out.append({"battle_id": r.id, "model_a": r.model_a, "model_b": r.model_b, "winner": r.winner,
                            "counted": bool(r.counted), "run_a": o["a"], "run_b": o["b"]})
    return out
